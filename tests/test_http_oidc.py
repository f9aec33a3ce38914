"""OIDC sign-in against a loopback issuer: code + PKCE, ID token verified against its JWKS, email mapped in SQL."""
from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest

from conftest import JWT_SECRET, free_port, start_app, stop_app
from oidc_issuer import Issuer
from sqlcall import make_user


@pytest.fixture(scope="module")
def oidc(database_url):
    issuer = Issuer()
    port = free_port()
    env = {"DL_JWT_SECRET": JWT_SECRET, "DL_OIDC_ISSUER": issuer.url, "DL_OIDC_CLIENT_ID": "dermlabel-test",
           "DL_OIDC_REDIRECT_URL": f"http://127.0.0.1:{port}/auth/oidc/callback", "DL_PORT": str(port),
           "DL_RATE_LOGIN": "off"}
    server = start_app(database_url, env)
    with psycopg.connect(database_url) as conn:
        email = f"oidc-{uuid.uuid4().hex[:6]}@clinic.org"
        user = make_user(conn, email, ["annotator"])
    yield issuer, server, email, user
    stop_app(server)
    issuer.close()


def sign_in(server, issuer) -> tuple[httpx.Client, httpx.Response]:
    c = server.client()
    start = c.get("/auth/oidc/login")
    assert start.status_code == 302 and start.headers["location"].startswith(issuer.url + "/authorize?")
    assert "code_challenge_method=S256" in start.headers["location"]
    consent = httpx.get(start.headers["location"])
    assert consent.status_code == 302
    callback = consent.headers["location"]
    return c, c.get(callback.replace(server.url.replace("localhost", "127.0.0.1"), ""))


def test_a_verified_email_of_an_active_user_signs_in(oidc, database_url):
    issuer, server, email, user = oidc
    issuer.email, issuer.email_verified, issuer.sign_with_wrong_key, issuer.nonce_override = email, True, False, None
    c, done = sign_in(server, issuer)
    assert done.status_code == 303 and done.headers["location"] == "/"
    me = c.get("/rpc/me")
    assert me.status_code == 200 and me.json()["id"] == user
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM audit.event WHERE action = 'login' AND actor_id = %s "
                            "AND after ->> 'method' = 'oidc'", (user,)).fetchone()[0] >= 1
    c.close()


@pytest.mark.parametrize("change,status", [
    ({"sign_with_wrong_key": True}, 401),
    ({"nonce_override": "replayed-nonce"}, 401),
    ({"email_verified": False}, 401),
    ({"email": "nobody-here@clinic.org"}, 401),
])
def test_bad_tokens_and_unknown_people_do_not_sign_in(oidc, change, status):
    issuer, server, email, _ = oidc
    issuer.email, issuer.email_verified, issuer.sign_with_wrong_key, issuer.nonce_override = email, True, False, None
    for k, v in change.items():
        setattr(issuer, k, v)
    c, done = sign_in(server, issuer)
    assert done.status_code == status, done.text
    assert set(done.json()) == {"code", "message", "details", "hint"}
    assert c.get("/rpc/me").status_code == 401  # no session was created
    c.close()


def test_a_callback_without_the_matching_state_is_refused(oidc):
    issuer, server, email, _ = oidc
    issuer.email, issuer.sign_with_wrong_key, issuer.nonce_override = email, False, None
    with server.client() as c:
        start = c.get("/auth/oidc/login")
        consent = httpx.get(start.headers["location"])
        forged = consent.headers["location"].replace("state=", "state=x")
        r = c.get(forged.replace(server.url, ""))
        assert r.status_code == 400 and "state" in r.json()["message"]
    with server.client() as stranger:  # a callback with no sign-in started in this browser
        assert stranger.get("/auth/oidc/callback?code=abc&state=def").status_code == 400
