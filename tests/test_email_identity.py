"""Identities that look alike are one identity: V21 refuses to merge lookalike accounts silently, and over HTTP the
fullwidth form of an email signs in while an invisible character is refused naming the field."""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
import pytest

from app.migrate.apply import Migrator
from app.migrate.resolve import MigrationError, load_config
from conftest import ROOT
from sqlcall import make_project

PASSWORD = "correct horse battery"
V21 = "V21__email_identity.sql"


def fullwidth(text: str) -> str:
    """ASCII to its fullwidth twin (U+FF01..U+FF5E): ａｄｍｉｎ＠…"""
    return "".join(chr(ord(c) + 0xFEE0) if 0x21 <= ord(c) <= 0x7E else c for c in text)


def project_before_v21(root: Path) -> Path:
    """This project's versioned migrations before V21: the tables V21 finds on a real deploy. (Not the
    repeatables: today's need migrations newer than V21; V21 needs none of them to refuse or normalise.)"""
    for folder in ("migrations", "functions"):
        (root / "db" / folder).mkdir(parents=True)
    for path in (ROOT / "db" / "migrations").glob("V*.sql"):
        if int(path.name[1:].split("__")[0].split("_")[0]) < 21:
            shutil.copy(path, root / "db" / "migrations" / path.name)
    shutil.copy(ROOT / "flyway.conf", root / "flyway.conf")
    return root / "flyway.conf"


def migrator(conf: Path, url: str) -> Migrator:
    return Migrator(url, load_config(conf), out=lambda _: None)


def test_v21_refuses_lookalike_accounts_naming_them_then_normalises(tmp_path: Path, scratch_db: str):
    conf = project_before_v21(tmp_path)
    migrator(conf, scratch_db).migrate()
    with psycopg.connect(scratch_db) as conn:
        def user(email: str) -> int:
            return conn.execute('INSERT INTO auth."user" (email, display_name) VALUES (%s, %s) RETURNING id',
                                (email, "x")).fetchone()[0]
        admin = user("admin@t.org")
        twin = user(fullwidth("admin") + "@t.org")  # citext's unique index saw no duplicate
        mixed = user("Mixed.Case@Clinic.ORG")
        hidden = user("ann\u200b@t.org")
        cyrillic = user("\u0430nn@t.org")
        conn.commit()
    shutil.copy(ROOT / "db" / "migrations" / V21, tmp_path / "db" / "migrations" / V21)
    with pytest.raises(MigrationError) as failed:
        migrator(conf, scratch_db).migrate()
    message = str(failed.value)
    assert f"one identity, by id: ({admin}, {twin})" in message, message
    assert f"invisible or non-ASCII characters, by id: {hidden}, {cyrillic}" in message, message
    assert "@" not in message  # ids, never the emails
    assert "rolled back" in message
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute('SELECT email FROM auth."user" WHERE id = %s', (mixed,)).fetchone()[0] == \
            "Mixed.Case@Clinic.ORG"  # nothing was normalised
        assert conn.execute("SELECT count(*) FROM flyway_schema_history WHERE version = '21'").fetchone()[0] == 0
        # the operator decides: the twin and the broken accounts get addresses of their own
        conn.execute('UPDATE auth."user" SET email = %s WHERE id = %s', ("admin2@t.org", twin))
        conn.execute('UPDATE auth."user" SET email = %s WHERE id = %s', ("ann@t.org", hidden))
        conn.execute('DELETE FROM auth."user" WHERE id = %s', (cyrillic,))
        conn.commit()
    assert migrator(conf, scratch_db).migrate() >= 1
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute('SELECT email::text FROM auth."user" WHERE id = %s', (mixed,)).fetchone()[0] == \
            "mixed.case@clinic.org"
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute('INSERT INTO auth."user" (email, display_name) VALUES (%s, %s)',
                         (fullwidth("ADMIN@T.ORG"), "again"))


@pytest.fixture(scope="module")
def world(database_url):
    with psycopg.connect(database_url) as conn:
        return make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)


def email_of(database_url: str, user_id: int) -> str:
    with psycopg.connect(database_url) as conn:
        return conn.execute('SELECT email FROM auth."user" WHERE id = %s', (user_id,)).fetchone()[0]


def test_fullwidth_email_signs_in_and_invisible_characters_are_400_naming_email(app_server, world, database_url):
    email = email_of(database_url, world["annotators"][0])
    with app_server.client() as c:
        r = c.post("/auth/login", json={"email": fullwidth(email.upper()), "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert r.json()["user"]["id"] == world["annotators"][0]
        lookalike = c.post("/auth/login", json={"email": email.replace("@", "\u200b@"), "password": PASSWORD})
        unknown = c.post("/auth/login", json={"email": "nobody@nowhere.org", "password": PASSWORD})
        assert lookalike.status_code == unknown.status_code == 401 and lookalike.json() == unknown.json()

        admin = c.post("/auth/login", json={"email": email_of(database_url, world["admin"]), "password": PASSWORD})
        headers = {"authorization": f"Bearer {admin.json()['token']}"}
        r = c.post("/rpc/create_user", headers=headers,
                   json={"email": f"new\u200b-{uuid.uuid4().hex[:6]}@t.org", "display_name": "New",
                         "password": "long enough pw"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "22023" and body["details"]["field"] == "email", body
    assert body["message"] == "email: contains an invisible character"
