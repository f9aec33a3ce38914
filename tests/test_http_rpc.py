"""The RPC surface over HTTP: the full cycle, every error class, bad input changes nothing, runtime reload."""
from __future__ import annotations

import re
import time
import uuid

import httpx
import psycopg
import pytest

from app.server.errors import status_for
from sqlcall import join, make_project, make_user

PASSWORD = "correct horse battery"


def token(client: httpx.Client, database_url: str, user_id: int) -> dict:
    with psycopg.connect(database_url) as conn:
        email = conn.execute('SELECT email FROM auth."user" WHERE id = %s', (user_id,)).fetchone()[0]
    r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture(scope="module")
def world(database_url):
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=6, annotators=2, reviewers=1)
        w["analyst"] = make_user(conn, f"analyst-{uuid.uuid4().hex[:6]}@t.org", ["analyst"])
        join(conn, w["admin"], w["project"], w["analyst"])  # analyst of the project's organization
    return w


def snapshot(database_url: str, project: int) -> tuple:
    with psycopg.connect(database_url) as conn:
        return conn.execute("""
            SELECT (SELECT count(*) FROM audit.event),
                   (SELECT count(*) FROM core.annotation_revision r JOIN core.work_item w ON w.id = r.item_id
                     WHERE w.project_id = %(p)s),
                   (SELECT string_agg(status::text || coalesce(assignee_id::text, '-'), ',' ORDER BY id)
                      FROM core.work_item WHERE project_id = %(p)s)""", {"p": project}).fetchone()


def test_full_annotator_reviewer_cycle(app_server, world, database_url):
    with app_server.client() as c:
        ann = token(c, database_url, world["annotators"][0])
        rev = token(c, database_url, world["reviewers"][0])
        item = c.post("/rpc/next_item", json={"project_id": world["project"]}, headers=ann).json()["item"]
        assert item["status"] == "in_progress" and item["image"]["url"] == f"/images/{item['image']['id']}"
        saved = c.post("/rpc/save_draft", json={"item_id": item["id"], "content": {"description": "so far"}},
                       headers=ann)
        assert saved.status_code == 200
        sub = c.post("/rpc/submit_annotation", headers=ann,
                     json={"item_id": item["id"], "content": {"class": world["class"], "confidence": "high"}})
        assert sub.json() == {"id": item["id"], "status": "review", "revision_seq": 1}
        got = c.post("/rpc/next_review", json={"project_id": world["project"]}, headers=rev).json()["item"]
        assert got["id"] == item["id"] and got["revisions"][0]["content"]["confidence"] == "high"
        back = c.post("/rpc/request_changes", json={"item_id": item["id"], "comment": "add descriptors"}, headers=rev)
        assert back.json()["status"] == "edits_requested"
        again = c.post("/rpc/next_item", json={"project_id": world["project"]}, headers=ann).json()["item"]
        assert again["id"] == item["id"] and again["last_review"]["comment"] == "add descriptors"
        c.post("/rpc/submit_annotation", headers=ann, json={"item_id": item["id"], "content": {"class": world["class"]}})
        c.post("/rpc/next_review", json={"project_id": world["project"]}, headers=rev)
        done = c.post("/rpc/approve", json={"item_id": item["id"]}, headers=rev)
        assert done.json()["status"] == "done"
        detail = c.get(f"/rpc/item_detail?item_id={item['id']}", headers=ann).json()
        assert [r["revision_seq"] for r in detail["revisions"]] == [1, 2]


@pytest.mark.parametrize("role_key,fn,args", [
    ("annotators", "approve", {"item_id": 1}),
    ("reviewers", "next_item", {"project_id": 1}),
    ("analyst", "create_project", {"name": "x"}),
    ("annotators", "create_user", {"email": "e@x.org", "display_name": "e", "password": "0123456789"}),
])
def test_a_role_calling_what_it_may_not_is_403(app_server, world, database_url, role_key, fn, args):
    user = world[role_key][0] if isinstance(world[role_key], list) else world[role_key]
    with app_server.client() as c:
        r = c.post(f"/rpc/{fn}", json=args, headers=token(c, database_url, user))
    assert r.status_code == 403 and r.json()["code"] == "42501"


def test_anonymous_calls_are_401_not_a_type_error(app_server):
    with app_server.client() as c:
        r = c.post("/rpc/next_item", json={"project_id": "not even a number"})
    assert r.status_code == 401


@pytest.mark.parametrize("body,status,needle", [
    ("{not json", 400, "not valid JSON"),
    ("[1, 2]", 400, "JSON object"),
    ('{"project_id": "7"}', 400, "argument project_id must be an integer"),
    ('{"project_id": true}', 400, "argument project_id must be an integer"),
    ('{"project_id": 1, "extra": 2}', 400, "unknown argument extra"),
    ("{}", 400, "missing argument project_id"),
    ('{"project_id": 987654321}', 404, "project 987654321 not found"),
])
def test_bad_input_is_a_clear_4xx_and_changes_nothing(app_server, world, database_url, body, status, needle):
    before = snapshot(database_url, world["project"])
    with app_server.client() as c:
        r = c.post("/rpc/next_item", content=body, headers={**token(c, database_url, world["annotators"][1]),
                                                            "content-type": "application/json"})
    assert r.status_code == status and needle in r.json()["message"], r.text
    assert set(r.json()) == {"code", "message", "details", "hint"}
    after = snapshot(database_url, world["project"])
    assert after[1:] == before[1:]  # no revision, no item moved (a login adds audit rows, items do not)


def test_invalid_content_names_the_field_and_changes_nothing(app_server, world, database_url):
    with app_server.client() as c:
        ann = token(c, database_url, world["annotators"][1])
        item = c.post("/rpc/next_item", json={"project_id": world["project"]}, headers=ann).json()["item"]
        before = snapshot(database_url, world["project"])
        r = c.post("/rpc/submit_annotation", headers=ann,
                   json={"item_id": item["id"], "content": {"class": world["class"], "regions": [{"type": "circle"}]}})
        assert r.status_code == 400
        assert r.json()["code"] == "22023" and r.json()["details"]["field"] == "regions[0].type"
        assert snapshot(database_url, world["project"]) == before
        # a lost lock is 409; an item given back to the pool is nobody's, so for its former holder it is a
        # missing item (404) like any other they may not see; a GET of a function that writes 405
        with psycopg.connect(database_url, autocommit=True) as db:
            db.execute("UPDATE core.work_item SET lock_expires_at = now() - interval '1 second' WHERE id = %s",
                       (item["id"],))
        lost = c.post("/rpc/submit_annotation", headers=ann,
                      json={"item_id": item["id"], "content": {"class": world["class"]}})
        assert lost.status_code == 409 and lost.json()["code"] == "PT409" and lost.json()["hint"]
        c.post("/rpc/next_item", json={"project_id": world["project"]}, headers=ann)  # handed back to its holder
        assert c.post("/rpc/release_item", json={"item_id": item["id"]}, headers=ann).status_code == 200
        gone = c.post("/rpc/submit_annotation", headers=ann,
                      json={"item_id": item["id"], "content": {"class": world["class"]}})
        assert gone.status_code == 404 and gone.json()["message"] == f"work item {item['id']} not found"
        assert c.get("/rpc/item_detail?item_id=987654321", headers=ann).status_code == 404
        assert c.get("/rpc/next_item?project_id=1", headers=ann).status_code == 405
        assert c.get("/rpc/item_detail?item_id=abc", headers=ann).status_code == 400
    with app_server.client() as anonymous:
        assert anonymous.post("/rpc/no_such_function", json={}).status_code == 404


def test_the_status_table_of_design_md():
    table = {"PT409": 409, "PT404": 404, "P0001": 400, "P0002": 404, "28000": 403, "28P01": 403, "23503": 409,
             "23505": 409, "22023": 400, "22P02": 400, "23502": 400, "23514": 400, "25006": 405, "40001": 503,
             "40P01": 503, "08006": 503, "53300": 503, "57P01": 503, "XX000": 500, "42P01": 500}
    assert {s: status_for(s, anonymous=False) for s in table} == table
    assert status_for("42501", anonymous=True) == 401 and status_for("42501", anonymous=False) == 403


def test_a_function_added_by_a_migration_becomes_an_endpoint_after_notify(app_server, database_url):
    with app_server.client() as c:
        assert c.post("/rpc/hello_probe", json={"name": "x"}).status_code == 404
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("""
                CREATE FUNCTION api.hello_probe(name text) RETURNS jsonb LANGUAGE sql STABLE SET search_path = ''
                AS $$ SELECT jsonb_build_object('hello', name) $$;
                COMMENT ON FUNCTION api.hello_probe(text) IS 'test probe';
                GRANT EXECUTE ON FUNCTION api.hello_probe(text) TO dl_anon;
                NOTIFY dl_reload;""")
        try:
            deadline = time.monotonic() + 10
            while (r := c.post("/rpc/hello_probe", json={"name": "x"})).status_code == 404:
                assert time.monotonic() < deadline, "the route table was not reloaded"
                time.sleep(0.05)
            assert r.json() == {"hello": "x"}
            assert c.get("/rpc/hello_probe?name=y").json() == {"hello": "y"}
            assert "/rpc/hello_probe" in c.get("/schema/openapi.json").json()["paths"]
        finally:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("DROP FUNCTION api.hello_probe(text); NOTIFY dl_reload;")


def test_openapi_describes_every_function_with_arguments_and_comment(app_server, database_url):
    with app_server.client() as c:
        doc = c.get("/schema/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    with psycopg.connect(database_url) as conn:
        names = {r[0] for r in conn.execute("SELECT proname FROM pg_proc WHERE pronamespace = 'api'::regnamespace")}
    assert {p.removeprefix("/rpc/") for p in doc["paths"] if p.startswith("/rpc/")} == names
    submit = doc["paths"]["/rpc/submit_annotation"]["post"]
    schema = submit["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["item_id", "content"]
    assert schema["properties"]["item_id"]["type"] == "integer"
    assert "immutable revision" in submit["description"] and "Roles: annotator" in submit["description"]
    assert "get" in doc["paths"]["/rpc/search_taxonomy"] and "get" not in doc["paths"]["/rpc/next_item"]


def test_the_schema_page_lists_every_endpoint_for_people(app_server):
    with app_server.client() as c:
        page = c.get("/schema")
        css = c.get("/static/schema.css")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<code>POST | GET /rpc/search_taxonomy</code>" in page.text
    assert "<code>POST /rpc/next_item</code>" in page.text
    assert "Type-ahead over the project" in page.text
    # under the app's top bar (a sign-in link for someone not signed in); no script but the app's own sign-out module
    assert 'href="/login?next=/schema"' in page.text
    assert re.findall(r"<script[^>]*>", page.text) == ['<script type="module" src="/static/js/chrome.js">']
    assert css.status_code == 200


def test_get_takes_json_arguments_in_the_query_string(app_server, world, database_url):
    """A jsonb argument of a read-only function over GET: decoded once and bound like a POST body's."""
    with app_server.client() as c:
        admin = token(c, database_url, world["admin"])
        ok = c.get("/rpc/export_page", headers=admin,
                   params={"project_id": world["project"], "filters": '{"gold": "exclude"}', "max_rows": 5})
        assert ok.status_code == 200, ok.text
        for bad in ("{not json", "[" * 100 + "]" * 100, "[1, 2"):
            r = c.get("/rpc/export_page", headers=admin, params={"project_id": world["project"], "filters": bad})
            assert r.status_code == 400 and r.json()["code"].startswith("PGRST"), (bad[:10], r.text)


def draft_of(database_url: str, item_id: int) -> list:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT author_id, content, updated_at FROM core.annotation_draft WHERE item_id = %s",
                            (item_id,)).fetchall()


def test_a_key_named_twice_is_400_naming_it_and_changes_nothing(app_server, world, database_url):
    """JSON parsers (and jsonb) keep the last of two equal keys: which one counts would be the parser's choice, not
    the sender's. Refused at any depth, before anything is called."""
    with app_server.client() as c:
        ann = {**token(c, database_url, world["annotators"][1]), "content-type": "application/json"}
        item = c.post("/rpc/next_item", json={"project_id": world["project"]}, headers=ann).json()["item"]
        assert c.post("/rpc/save_draft", json={"item_id": item["id"], "content": {"description": "first"}},
                      headers=ann).status_code == 200
        before, draft = snapshot(database_url, world["project"]), draft_of(database_url, item["id"])
        i = item["id"]
        for body, key in [
            (f'{{"item_id": {i}, "item_id": {i}, "content": {{"description": "second"}}}}', "item_id"),
            (f'{{"item_id": {i}, "content": {{"description": "second", "description": "third"}}}}', "description"),
            # blanks before the colon, and colons inside strings: the quick count cannot decide, the exact one does
            (f'{{"item_id" : {i}, "content": {{"regions": [{{"type": "point", "at": "12:30", "type" : "box"}}]}}}}',
             "type"),
            (f'{{"item_id": {i}, "content": {{"description": "a", "\\u0064escription": "b"}}}}', "description"),
        ]:
            r = c.post("/rpc/save_draft", content=body, headers=ann)
            assert r.status_code == 400, (body, r.text)
            err = r.json()
            assert set(err) == {"code", "message", "details", "hint"}
            assert err["code"] == "PGRST102" and f'duplicate key "{key}"' in err["message"]
            assert err["details"] == {"key": key}
        assert draft_of(database_url, i) == draft and snapshot(database_url, world["project"])[1:] == before[1:]
        # without a repetition, blanks before colons and colons in strings go through
        ok = c.post("/rpc/save_draft", headers=ann,
                    content=f'{{"item_id" : {i}, "content": {{"description": "seen at 12:30, \\"a\\": b"}}}}')
        assert ok.status_code == 200, ok.text
        assert draft_of(database_url, i)[0][1] == {"description": 'seen at 12:30, "a": b'}
        # and over GET, a JSON argument in the query string
        admin = token(c, database_url, world["admin"])
        r = c.get("/rpc/export_page", headers=admin, params={"project_id": world["project"], "max_rows": 5,
                                                             "filters": '{"gold": "exclude", "gold": "only"}'})
        assert r.status_code == 400 and r.json()["details"] == {"argument": "filters", "key": "gold"}, r.text
        c.post("/rpc/release_item", json={"item_id": i}, headers=ann)


def test_a_draft_is_not_replaced_by_a_body_with_a_key_named_twice(app_server, world, database_url):
    with app_server.client() as c:
        ann = {**token(c, database_url, world["annotators"][0]), "content-type": "application/json"}
        item = c.post("/rpc/next_item", json={"project_id": world["project"]}, headers=ann).json()["item"]
        c.post("/rpc/save_draft", json={"item_id": item["id"], "content": {"description": "kept"}}, headers=ann)
        kept = draft_of(database_url, item["id"])
        r = c.post("/rpc/save_draft", headers=ann,
                   content=f'{{"item_id": {item["id"]}, "content": {{"description": "lost"}}, '
                           f'"content": {{"description": "replaced"}}}}')
        assert r.status_code == 400 and r.json()["details"] == {"key": "content"}
        assert draft_of(database_url, item["id"]) == kept
        c.post("/rpc/release_item", json={"item_id": item["id"]}, headers=ann)


def test_a_login_with_a_key_named_twice_is_400_and_opens_no_session(app_server, world, database_url):
    user = world["annotators"][0]
    with psycopg.connect(database_url) as conn:
        email = conn.execute('SELECT email FROM auth."user" WHERE id = %s', (user,)).fetchone()[0]

    def sessions() -> int:
        with psycopg.connect(database_url) as conn:
            return conn.execute("SELECT count(*) FROM auth.session WHERE user_id = %s", (user,)).fetchone()[0]

    before = sessions()
    with app_server.client() as c:
        for body, key in [(f'{{"email": "nobody@x.org", "email": "{email}", "password": "{PASSWORD}"}}', "email"),
                          (f'{{"email": "{email}", "password": "wrong", "password": "{PASSWORD}"}}', "password")]:
            r = c.post("/auth/login", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400 and r.json()["details"] == {"key": key}, r.text
            assert set(r.json()) == {"code", "message", "details", "hint"} and "token" not in r.cookies
    assert sessions() == before
