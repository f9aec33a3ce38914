"""Security checks over HTTP, route by route: guessing ids, sessions, CSRF, escalation, the analyst's read-only role.
Every case also checks that nothing changed in the database."""
from __future__ import annotations

import re
import time
import uuid

import httpx
import jwt
import psycopg
import pytest

from conftest import JWT_SECRET
from sqlcall import PASSWORD, call, make_team

# Placeholder values by JSON schema type, for the arguments a probe does not care about.
FILLER = {"integer": 1, "number": 1, "boolean": False, "string": "x", "array": [], None: {"class": 1}}
ID_ROUTES = ("/images/{id}", "/images/{id}/thumb", "/images/{id}/standardised")


@pytest.fixture(scope="module")
def world(database_url, app_server):
    """Two projects. Bob (project 1) holds an item with a draft; Alice is in project 1 too, Eve only in project 2.
    Their tokens, the ids, and ids that do not exist at all."""
    with psycopg.connect(database_url) as conn:
        t = make_team(conn, "sec", alice=["annotator"], bob=["annotator"], ann=["analyst"])
        other = make_team(conn, "sec2", eve=["annotator"])
        cls = call(conn, t["admin"], "admin", "upsert_taxonomy_node", project_id=t["project"], code="MEL",
                   name="Melanoma")["id"]
        with conn.transaction():
            conn.execute("SELECT set_config('role', 'dl_admin', true), set_config('request.jwt.claims', %s, true)",
                         (f'{{"sub": {t["admin"]}}}',))
            conn.execute("SELECT api.register_image(%s, 'sec/' || i, md5(%s || i) || md5(i::text), 10, 10, "
                         "'image/png') FROM generate_series(1, 3) i", (t["project"], uuid.uuid4().hex))
        rule = call(conn, t["admin"], "admin", "create_work_rule", project_id=t["project"], name="r", max_items=3)
        call(conn, t["admin"], "admin", "generate_work_items", rule_id=rule["id"])
        item = call(conn, t["bob"], "annotator", "next_item", project_id=t["project"])["item"]
        call(conn, t["bob"], "annotator", "save_draft", item_id=item["id"], content={"class": cls,
                                                                                     "description": "bob's draft"})
        missing_item = conn.execute("SELECT coalesce(max(id), 0) + 100000 FROM core.work_item").fetchone()[0]
        missing_image = conn.execute("SELECT coalesce(max(id), 0) + 100000 FROM core.image").fetchone()[0]
    tokens = {}
    for who, team in (("alice", t), ("bob", t), ("ann", t), ("eve", other), ("admin", t)):
        r = httpx.post(f"{app_server.url}/auth/login", json={"email": team["emails"][who], "password": PASSWORD})
        tokens[who] = r.json()["token"]
    return {**t, "item": item["id"], "image": item["image"]["id"], "missing_item": missing_item,
            "missing_image": missing_image, "tokens": tokens, "cls": cls}


def fingerprint(database_url: str) -> tuple:
    """What must not move when a request is refused: rows of every table that holds work or people."""
    with psycopg.connect(database_url) as conn:
        return conn.execute("""
            SELECT (SELECT count(*) FROM core.work_item), (SELECT md5(string_agg(d.content::text, ',' ORDER BY
                    d.item_id, d.author_id)) FROM core.annotation_draft d),
                   (SELECT count(*) FROM core.annotation_revision), (SELECT count(*) FROM core.review),
                   (SELECT md5(string_agg(w.status || ':' || coalesce(w.assignee_id, 0), ',' ORDER BY w.id))
                      FROM core.work_item w),
                   (SELECT count(*) FROM core.image), (SELECT count(*) FROM core.project),
                   (SELECT md5(string_agg(u.active::text || u.operator::text, ',' ORDER BY u.id)) FROM auth."user" u)
                   || (SELECT md5(string_agg(m::text, ',' ORDER BY m.project_id, m.user_id)) FROM core.project_member m)
                   || (SELECT md5(string_agg(o::text, ',' ORDER BY o.organization_id, o.user_id)) FROM core.org_member o),
                   (SELECT count(*) FROM core.taxonomy_node), (SELECT count(*) FROM core.work_item_flag)""").fetchone()


def normalised(r: httpx.Response, *ids: int) -> tuple:
    """Status and error body with the probed id taken out, so 'item 17 not found' equals 'item 100017 not found'."""
    text = r.text
    for i in ids:
        text = re.sub(rf"\b{i}\b", "<id>", text)
    return r.status_code, text


def id_probes(app_server) -> list[tuple[str, dict, str]]:
    """Every RPC that takes an item_id or image_id, with placeholder values for its other arguments."""
    doc = httpx.get(f"{app_server.url}/schema/openapi.json").json()
    probes = []
    for path, ops in doc["paths"].items():
        body = ops.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json", {})
        props = body.get("schema", {}).get("properties", {})
        for key in ("item_id", "image_id"):
            if key in props:
                args = {name: FILLER.get(p.get("type")) for name, p in props.items() if name != key}
                probes.append((path, args, key))
    return probes


def test_ids_you_may_not_see_answer_exactly_like_ids_that_do_not_exist(app_server, world, database_url):
    """Alice guesses Bob's item (same project, held by Bob, with a draft) and Eve guesses it from another project;
    on every route that takes an id the answer is the one a missing id gets, and nothing changes."""
    probes = id_probes(app_server)
    assert len(probes) >= 10, probes
    before = fingerprint(database_url)
    mismatches = []
    for who in ("alice", "eve"):
        headers = {"Authorization": f"Bearer {world['tokens'][who]}"}
        for path, args, key in probes:
            real, missing = (world["item"], world["missing_item"]) if key == "item_id" else \
                (world["image"], world["missing_image"])
            if who == "alice" and key == "image_id":
                continue  # Alice may see images of her own project: that is not a guess
            a = httpx.post(f"{app_server.url}{path}", json={**args, key: real}, headers=headers)
            b = httpx.post(f"{app_server.url}{path}", json={**args, key: missing}, headers=headers)
            if a.status_code < 400 or normalised(a, real) != normalised(b, missing):
                mismatches.append((who, path, a.status_code, a.text[:150], b.status_code, b.text[:150]))
        for route in ID_ROUTES:
            a = httpx.get(app_server.url + route.format(id=world["image"]), headers=headers)
            b = httpx.get(app_server.url + route.format(id=world["missing_image"]), headers=headers)
            if who == "eve" and normalised(a, world["image"]) != normalised(b, world["missing_image"]):
                mismatches.append((who, route, a.status_code, a.text[:150], b.status_code, b.text[:150]))
    assert mismatches == [], "\n".join(map(str, mismatches))
    assert fingerprint(database_url) == before
    # and Bob's draft is not in anything Alice can read
    r = httpx.post(f"{app_server.url}/rpc/my_queue", json={"project_id": world["project"]},
                   headers={"Authorization": f"Bearer {world['tokens']['alice']}"})
    assert "bob's draft" not in r.text


def test_a_session_is_the_servers_not_the_clients(app_server, world, database_url):
    """Session fixation: each sign-in opens a new session whatever cookie the browser brought, and a token naming
    someone else's session (even correctly signed) is refused."""
    with httpx.Client(base_url=app_server.url) as c:
        c.cookies.set("dl_session", world["tokens"]["alice"])
        r = c.post("/auth/login", json={"email": world["emails"]["bob"], "password": PASSWORD})
        new = jwt.decode(r.json()["token"], JWT_SECRET, algorithms=["HS256"])
        planted = jwt.decode(world["tokens"]["alice"], JWT_SECRET, algorithms=["HS256"])
        set_cookie = [h for h in r.headers.get_list("set-cookie") if h.startswith("dl_session=")]
        assert new["sid"] != planted["sid"] and set_cookie[0].startswith(f"dl_session={r.json()['token']};")
    bob = jwt.decode(world["tokens"]["bob"], JWT_SECRET, algorithms=["HS256"])
    forged = jwt.encode({**bob, "sid": planted["sid"]}, JWT_SECRET, algorithm="HS256")
    r = httpx.post(f"{app_server.url}/rpc/my_queue", json={"project_id": world["project"]},
                   headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_cookie_writes_need_the_csrf_header(app_server, world, database_url):
    before = fingerprint(database_url)
    with httpx.Client(base_url=app_server.url) as c:
        c.post("/auth/login", json={"email": world["emails"]["bob"], "password": PASSWORD})
        args = {"item_id": world["item"], "content": {"class": world["cls"], "description": "forged by a page"}}
        assert c.post("/rpc/save_draft", json=args).status_code == 403
        assert c.post("/rpc/save_draft", json=args, headers={"X-CSRF-Token": "guess"}).status_code == 403
        ok = c.post("/rpc/item_detail", json={"item_id": world["item"]},
                    headers={"X-CSRF-Token": c.cookies.get("dl_csrf")})
        assert ok.status_code == 200
    assert fingerprint(database_url) == before


def test_tokens_die_with_logout_and_password_change(app_server, world, database_url):
    with psycopg.connect(database_url) as conn:
        t = make_team(conn, "secpw", carol=["annotator"])
    login = lambda: httpx.post(f"{app_server.url}/auth/login",  # noqa: E731
                               json={"email": t["emails"]["carol"], "password": PASSWORD}).json()["token"]
    first, second = login(), login()
    auth = lambda tok: {"Authorization": f"Bearer {tok}"}  # noqa: E731
    assert httpx.post(f"{app_server.url}/auth/logout", headers=auth(first)).status_code == 204
    assert httpx.post(f"{app_server.url}/rpc/me", json={}, headers=auth(first)).status_code == 401
    assert httpx.post(f"{app_server.url}/rpc/me", json={}, headers=auth(second)).status_code == 200
    r = httpx.post(f"{app_server.url}/rpc/change_password", headers=auth(second),
                   json={"current_password": PASSWORD, "new_password": "another long passphrase"})
    assert r.status_code == 200
    assert httpx.post(f"{app_server.url}/rpc/me", json={}, headers=auth(second)).status_code == 401
    expired = jwt.encode({**jwt.decode(login_as(app_server, world["emails"]["bob"]), JWT_SECRET, algorithms=["HS256"]),
                          "exp": int(time.time()) - 5}, JWT_SECRET, algorithm="HS256")
    assert httpx.post(f"{app_server.url}/rpc/me", json={}, headers=auth(expired)).status_code == 401


def login_as(app_server, email: str) -> str:
    return httpx.post(f"{app_server.url}/auth/login", json={"email": email, "password": PASSWORD}).json()["token"]


HOSTILE = ["x', true); SELECT set_config('role', 'dl_admin', false); --",
           "'; DROP TABLE core.work_item; --", "dl_admin\"; RESET ROLE; --", "$$; SET ROLE postgres; $$"]


def test_set_config_and_role_in_arguments_escalate_nothing(app_server, world, database_url):
    """Strings are data: set_config, SET ROLE and quotes in any argument stay text; there is no /rpc/set_config;
    a smuggled 'role' argument is refused."""
    headers = {"Authorization": f"Bearer {world['tokens']['bob']}"}
    before = fingerprint(database_url)
    for text in HOSTILE:
        r = httpx.post(f"{app_server.url}/rpc/save_draft", headers=headers,
                       json={"item_id": world["item"], "content": {"class": world["cls"], "description": text}})
        assert r.status_code == 200
        # still an annotator: an admin-only call is refused in the very next request
        r = httpx.post(f"{app_server.url}/rpc/create_project", headers=headers, json={"name": text})
        assert r.status_code == 403, r.text
    assert httpx.post(f"{app_server.url}/rpc/set_config", headers=headers,
                      json={"setting_name": "role", "new_value": "dl_admin", "is_local": False}).status_code == 404
    r = httpx.post(f"{app_server.url}/rpc/item_detail", headers=headers, json={"item_id": world["item"], "role": "x"})
    assert r.status_code == 400
    after = fingerprint(database_url)
    assert after[0] == before[0] and after[2:] == before[2:]  # only Bob's own draft text changed


def test_the_analyst_can_write_nothing(app_server, world, database_url):
    """Every function that writes (the POST-only ones) refuses the analyst, except what touches their own account
    (sign out, change password, go on vacation)."""
    doc = httpx.get(f"{app_server.url}/schema/openapi.json").json()
    writers = [p for p, ops in doc["paths"].items() if p.startswith("/rpc/") and "get" not in ops]
    own_session = {"/rpc/logout", "/rpc/change_password", "/rpc/set_vacation"}  # their own account
    headers = {"Authorization": f"Bearer {world['tokens']['ann']}"}
    before = fingerprint(database_url)
    allowed = []
    for path in writers:
        if path in own_session:
            continue
        r = httpx.post(f"{app_server.url}{path}", json={}, headers=headers)
        if r.status_code not in (403,):
            allowed.append((path, r.status_code, r.text[:120]))
    assert allowed == []
    assert fingerprint(database_url) == before
