"""Malformed and hostile input to upload, login and every RPC: a clear 4xx in the JSON error shape, and nothing
changes (no row, no file, no role)."""
from __future__ import annotations

import io
import json
from pathlib import Path
import tempfile

import httpx
import psycopg
import pytest
from PIL import Image

from conftest import JWT_SECRET, start_app, stop_app
from load import tiny_png
from sqlcall import PASSWORD, make_team

import random

SQL_METACHARACTERS = ["'", "\"", "';--", "' OR '1'='1", "'); DROP TABLE core.image; --", "\\", "%_", "$$", "$1",
                      "E'\\x00'", "' || pg_sleep(5) || '", "`id`", "; SET ROLE postgres;"]


@pytest.fixture(scope="module")
def images_root():
    with tempfile.TemporaryDirectory(prefix="dl-hostile-") as d:
        yield Path(d)


@pytest.fixture(scope="module")
def server(database_url, images_root):
    app = start_app(database_url, {"DL_JWT_SECRET": JWT_SECRET, "DL_RATE_LOGIN": "off", "DL_RATE_RPC": "off",
                                   "DL_METRICS_REFRESH_SECONDS": "0", "DL_IMAGE_DIR": str(images_root)})
    yield app
    stop_app(app)


@pytest.fixture(scope="module")
def team(database_url, server):
    with psycopg.connect(database_url) as conn:
        t = make_team(conn, "hostile", annotator=["annotator"])
    for who in ("admin", "annotator"):
        r = httpx.post(f"{server.url}/auth/login", json={"email": t["emails"][who], "password": PASSWORD})
        t[f"{who}_headers"] = {"Authorization": f"Bearer {r.json()['token']}"}
    return t


def state(database_url: str, images_root: Path) -> tuple:
    """Rows that a refused request must not add, roles it must not grant, files it must not write."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("""
            SELECT (SELECT count(*) FROM core.image), (SELECT count(*) FROM auth.session),
                   (SELECT count(*) FROM core.annotation_draft), (SELECT count(*) FROM core.project),
                   (SELECT md5(string_agg(u.id || u.active::text || u.operator::text, ',' ORDER BY u.id)) FROM auth."user" u)
                   || (SELECT md5(string_agg(m::text, ',' ORDER BY m.project_id, m.user_id)) FROM core.project_member m)
                   || (SELECT md5(string_agg(o::text, ',' ORDER BY o.organization_id, o.user_id)) FROM core.org_member o),
                   (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname IN ('core', 'auth', 'audit', 'metrics', 'api'))""").fetchone()
    files = sorted(str(p.relative_to(images_root)) for p in images_root.rglob("*") if p.is_file())
    return rows, files


def error_shaped(r: httpx.Response) -> bool:
    try:
        body = r.json()
    except ValueError:
        return False
    return isinstance(body, dict) and {"code", "message", "details", "hint"} <= body.keys()


def test_path_traversal_in_upload_names_stays_inside_storage(server, team, images_root, database_url):
    names = ["../../../../tmp/dl-evil.png", "..\\..\\dl-evil.png", "/etc/passwd", "images/../../x.png",
             "a" * 2000 + ".png", "lesion\r\nX-Injected: 1.png", "%2e%2e%2fdl-evil.png"]
    rng = random.Random(7)
    files = [("files", (name, tiny_png(rng), "image/png")) for name in names]
    r = httpx.post(f"{server.url}/projects/{team['project']}/images", files=files, headers=team["admin_headers"])
    assert r.status_code == 200, r.text
    stored = r.json()["files"]
    assert all(f["status"] == 200 for f in stored)
    # the name is echoed to the uploader (its base name, at most 200 characters) and kept nowhere
    assert all("/" not in f["filename"] and len(f["filename"]) <= 200 for f in stored)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT storage_key, metadata FROM core.image WHERE id = ANY(%s)",
                            ([f["id"] for f in stored],)).fetchall()
    for key, metadata in rows:
        assert ".." not in key.split("/") and not key.startswith("/")
        assert "original_filename" not in metadata and "evil" not in str(metadata) and "passwd" not in str(metadata)
        assert (images_root / key).resolve().is_relative_to(images_root.resolve())
    assert not Path("/tmp/dl-evil.png").exists() and not (images_root.parent / "dl-evil.png").exists()
    # a part header beyond the multipart parser's limit is refused whole, and stores nothing
    before = state(database_url, images_root)
    r = httpx.post(f"{server.url}/projects/{team['project']}/images", headers=team["admin_headers"],
                   files=[("files", ("a" * 20_000 + ".png", tiny_png(rng), "image/png"))])
    assert 400 <= r.status_code < 500 and error_shaped(r), r.text
    assert state(database_url, images_root) == before


def bomb_png() -> bytes:
    """A few KB that decode to 900 megapixels."""
    buf = io.BytesIO()
    Image.new("1", (30_000, 30_000)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


@pytest.mark.parametrize("name,data,status", [
    ("notes.png", b"just text pretending", 415),
    ("empty.png", b"", 415),
    ("truncated.png", tiny_png(random.Random(1))[:60], 415),
    ("script.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", 415),
    ("bomb.png", bomb_png(), 413),
])
def test_non_images_and_bombs_are_refused_and_store_nothing(server, team, images_root, database_url, name, data,
                                                            status):
    before = state(database_url, images_root)
    r = httpx.post(f"{server.url}/projects/{team['project']}/images", files=[("files", (name, data, "image/png"))],
                   headers=team["admin_headers"], timeout=60)
    assert r.status_code == status and error_shaped(r), r.text
    assert state(database_url, images_root) == before


def test_huge_headers_are_refused_and_the_app_lives_on(server):
    for headers in ({"X-Big": "a" * 1_000_000}, {f"X-H{i}": "v" * 100 for i in range(2000)},
                    {"Authorization": "Bearer " + "A" * 200_000}):
        try:
            r = httpx.get(f"{server.url}/healthz", headers=headers, timeout=10)
            assert 400 <= r.status_code < 500, r.status_code
        except httpx.RemoteProtocolError:
            pass  # the server closed the connection on an oversized head: refused too
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_json_bombs_and_junk_bodies_get_400_or_413_and_change_nothing(server, team, images_root, database_url):
    before = state(database_url, images_root)
    deep = "[" * 200_000 + "]" * 200_000
    bodies = [deep, '{"content": ' + deep + "}", "{" * 100_000, '{"a": 1, ' * 10, "\x00\x01\x02",
              json.dumps({"project_id": 1, "pad": "x" * (30 * 1024 * 1024)}),
              json.dumps({"project_id": 1, **{f"k{i}": i for i in range(200_000)}}), "1e999999", "NaN"]
    for body in bodies:
        for fn in ("save_draft", "create_project", "next_item"):
            r = httpx.post(f"{server.url}/rpc/{fn}", content=body, timeout=60,
                           headers={**team["admin_headers"], "Content-Type": "application/json"})
            assert r.status_code in (400, 403, 413) and error_shaped(r), (fn, body[:40], r.status_code, r.text[:200])
    assert state(database_url, images_root) == before


def test_big_arguments_under_concurrency_are_always_answered(server, team):
    """1 MB arguments from four clients at once: every request answered (pipelining such a call could deadlock
    the connection, and the request would hang for ever)."""
    from concurrent.futures import ThreadPoolExecutor

    def sign_in(i: int) -> int:
        return httpx.post(f"{server.url}/auth/login", timeout=30,
                          json={"email": f"big{i}@nowhere.test", "password": "p" * 1_000_000}).status_code

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(sign_in, range(400))) == {401}


def test_hostile_sign_ins_open_no_session(server, team, images_root, database_url):
    before = state(database_url, images_root)
    for email in SQL_METACHARACTERS + [team["emails"]["admin"] + "' --", "a" * 100_000]:
        for password in (PASSWORD + "' OR '1'='1", "' OR 1=1 --", "x\x00y", "p" * 1_000_000):
            r = httpx.post(f"{server.url}/auth/login", json={"email": email, "password": password}, timeout=30)
            assert r.status_code in (400, 401, 413) and error_shaped(r), (email[:30], r.status_code, r.text[:200])
    after = state(database_url, images_root)
    assert after == before


def test_sql_metacharacters_in_every_string_argument_are_only_data(server, team, images_root, database_url):
    """Every RPC with a string argument, called as an admin with each hostile string in each string argument:
    never a 500, never a syntax error surfacing (which would mean the text reached the SQL parser), nobody's
    roles changed and no table gone."""
    doc = httpx.get(f"{server.url}/schema/openapi.json").json()
    before_rows, _ = state(database_url, images_root)
    bad = []
    calls = 0
    for path, ops in doc["paths"].items():
        schema = ops.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json", {})
        props = schema.get("schema", {}).get("properties", {})
        strings = [n for n, p in props.items() if p.get("type") == "string"]
        if not path.startswith("/rpc/") or not strings or path in ("/rpc/logout", "/rpc/change_password"):
            continue
        base = {n: {"integer": 1, "number": 1, "boolean": False, "array": []}.get(p.get("type"), {})
                for n, p in props.items()}
        for arg in strings:
            for text in SQL_METACHARACTERS:
                calls += 1
                r = httpx.post(f"{server.url}{path}", json={**base, **{s: "x" for s in strings}, arg: text},
                               headers=team["admin_headers"], timeout=30)
                code = r.json().get("code") if error_shaped(r) else None
                if r.status_code >= 500 or code in ("42601", "42P01", "42883") or \
                        (r.status_code >= 400 and not error_shaped(r)):
                    bad.append((path, arg, text, r.status_code, r.text[:160]))
    after_rows, _ = state(database_url, images_root)
    print(f"\n{calls} calls with SQL metacharacters")
    assert bad == []
    assert after_rows[4:] == before_rows[4:]  # roles and active flags of everyone; the set of tables
