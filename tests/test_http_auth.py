"""Sign-in over HTTP: tokens, cookies, CSRF, forgery and expiry, lockout."""
from __future__ import annotations

import time
import uuid

import jwt
import psycopg
import pytest

from conftest import JWT_SECRET
from sqlcall import make_project

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def world(database_url):
    with psycopg.connect(database_url) as conn:
        return make_project(conn, uuid.uuid4().hex[:8], n_images=4, annotators=2, reviewers=1)


def email_of(database_url, user_id: int) -> str:
    with psycopg.connect(database_url) as conn:
        return conn.execute('SELECT email FROM auth."user" WHERE id = %s', (user_id,)).fetchone()[0]


def test_login_returns_a_token_and_sets_safe_cookies(app_server, world, database_url):
    with app_server.client() as c:
        r = c.post("/auth/login", json={"email": email_of(database_url, world["annotators"][0]), "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["user"]["id"] == world["annotators"][0] and body["user"]["roles"] == ["annotator"]
    claims = jwt.decode(body["token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == str(world["annotators"][0]) and claims["exp"] - claims["iat"] == 8 * 3600
    cookies = {h.split("=", 1)[0]: h.lower() for h in r.headers.get_list("set-cookie")}
    assert "httponly" in cookies["dl_session"] and "samesite=lax" in cookies["dl_session"]
    assert "httponly" not in cookies["dl_csrf"]


def test_wrong_password_and_unknown_user_answer_the_same(app_server, world, database_url):
    with app_server.client() as c:
        wrong = c.post("/auth/login", json={"email": email_of(database_url, world["annotators"][1]), "password": "nope"})
        unknown = c.post("/auth/login", json={"email": "nobody@nowhere.org", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert set(wrong.json()) == {"code", "message", "details", "hint"}


def test_lockout_after_five_failures(app_server, database_url):
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)
    email = email_of(database_url, w["annotators"][0])
    with app_server.client() as c:
        for _ in range(5):
            assert c.post("/auth/login", json={"email": email, "password": "bad"}).status_code == 401
        assert c.post("/auth/login", json={"email": email, "password": PASSWORD}).status_code == 401


@pytest.mark.parametrize("body", ['{"email": "a@b.c"}', '{"email": 1, "password": "x"}', 'not json', '[]',
                                  '{"email": "a@b.c", "password": "x", "admin": true}'])
def test_malformed_login_bodies_are_400(app_server, body):
    with app_server.client() as c:
        r = c.post("/auth/login", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and set(r.json()) == {"code", "message", "details", "hint"}


def test_forged_expired_and_unsigned_tokens_are_401(app_server, world):
    now = int(time.time())
    bad = [
        jwt.encode({"sub": str(world["admin"]), "roles": ["admin"], "iat": now, "exp": now + 600},
                   "another-secret-another-secret-another", algorithm="HS256"),
        jwt.encode({"sub": str(world["admin"]), "roles": ["admin"], "iat": now - 7200, "exp": now - 3600},
                   JWT_SECRET, algorithm="HS256"),
        jwt.encode({"sub": str(world["admin"]), "roles": ["admin"], "iat": now, "exp": now + 600}, None,
                   algorithm="none"),
        "not-a-token",
    ]
    with app_server.client() as c:
        for token in bad:
            r = c.post("/rpc/me", json={}, headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 401, token
            assert r.json()["code"] == "PT401"
        assert c.post("/rpc/me", json={}, headers={"authorization": "Basic abc"}).status_code == 401


def test_cookie_writes_need_the_csrf_header_bearer_writes_do_not(app_server, world, database_url):
    email = email_of(database_url, world["annotators"][0])
    with app_server.client() as c:
        login = c.post("/auth/login", json={"email": email, "password": PASSWORD}).json()
        assert c.get("/rpc/me").status_code == 200  # reads with the cookie need no CSRF token
        no_csrf = c.post("/rpc/my_queue", json={"project_id": world["project"]})
        assert no_csrf.status_code == 403 and no_csrf.json()["code"] == "PT403"
        ok = c.post("/rpc/my_queue", json={"project_id": world["project"]},
                    headers={"x-csrf-token": login["csrf_token"]})
        assert ok.status_code == 200
        wrong = c.post("/rpc/my_queue", json={"project_id": world["project"]}, headers={"x-csrf-token": "guess"})
        assert wrong.status_code == 403
    with app_server.client() as fresh:  # no cookies at all
        r = fresh.post("/rpc/my_queue", json={"project_id": world["project"]},
                       headers={"authorization": f"Bearer {login['token']}"})
        assert r.status_code == 200


def test_logout_clears_the_cookies_and_ends_the_session(app_server, world, database_url):
    email = email_of(database_url, world["annotators"][0])
    with app_server.client() as c:
        r = c.post("/auth/login", json={"email": email, "password": PASSWORD})
        token, csrf = r.json()["token"], r.json()["csrf_token"]
        assert c.get("/rpc/me").status_code == 200
        # a cookie sign-out is a write like any other: without the CSRF header it is refused and changes nothing
        assert c.post("/auth/logout").status_code == 403
        assert c.get("/rpc/me").status_code == 200
        assert c.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert c.get("/rpc/me").status_code == 401
    with app_server.client() as c:  # a copy of the token taken before sign-out no longer works either
        r = c.get("/rpc/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["code"] == "PT401"
        assert c.post("/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 204


def login(app_server, email: str, password: str = PASSWORD) -> str:
    with app_server.client() as c:
        r = c.post("/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["token"]


def test_a_password_change_ends_every_session(app_server, world, database_url):
    email = email_of(database_url, world["annotators"][1])
    laptop, phone = login(app_server, email), login(app_server, email)
    with app_server.client() as c:
        r = c.post("/rpc/change_password", json={"current_password": "wrong", "new_password": "x" * 12},
                   headers={"Authorization": f"Bearer {laptop}"})
        assert r.status_code == 400 and r.json()["details"]["field"] == "current_password"
        assert c.get("/rpc/me", headers={"Authorization": f"Bearer {phone}"}).status_code == 200
        r = c.post("/rpc/change_password", json={"current_password": PASSWORD, "new_password": "a new long password"},
                   headers={"Authorization": f"Bearer {laptop}"})
        assert r.status_code == 200 and r.json()["sessions_ended"] == 2
        for token in (laptop, phone):
            assert c.get("/rpc/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert c.post("/auth/login", json={"email": email, "password": PASSWORD}).status_code == 401
    fresh = login(app_server, email, "a new long password")
    with app_server.client() as c:
        assert c.get("/rpc/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_deactivating_an_account_ends_its_sessions(app_server, world, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        uid = conn.execute("INSERT INTO auth.\"user\" (email, display_name, password_hash) "
                           "VALUES (%s, 'leaver', crypt(%s, gen_salt('bf', 4))) RETURNING id",
                           (f"leaver-{uuid.uuid4().hex[:6]}@t.org", PASSWORD)).fetchone()[0]
    token = login(app_server, email_of(database_url, uid))
    with app_server.client() as c:
        assert c.get("/rpc/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute('UPDATE auth."user" SET active = false WHERE id = %s', (uid,))
        assert c.get("/rpc/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
