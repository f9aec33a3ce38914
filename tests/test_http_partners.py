"""Partners over HTTP: an API key sends cases (idempotent on its external id) and reads results, stays inside its
scopes and projects, stops at once when revoked, hits its quota; the rate limit holds across two app processes;
webhooks reach a loopback receiver signed, and a failed delivery is retried."""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from PIL import Image

from ai_services import start_worker, stop
from conftest import JWT_SECRET, start_app, stop_app
from sqlcall import call, make_project, make_user, new_project
from test_http_rpc import token


def png(seed: int) -> bytes:
    img = Image.new("RGB", (64, 48), (seed % 256, 120, 90))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def make_key(c, admin_headers, project: int, scopes: list[str], **extra) -> dict:
    r = c.post("/rpc/create_api_key", headers=admin_headers,
               json={"organization_id": None, "name": "partner", "project_ids": [project], "scopes": scopes, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def send_case(c, key: str, project: int, external_id: str, data: bytes, metadata: dict | None = None):
    return c.post(f"/projects/{project}/images", headers={"Authorization": f"Bearer {key}"},
                  files=[("files", ("case.png", data, "image/png"))],
                  data={"external_id": external_id, "metadata": json.dumps(metadata or {}), "source_class": "teledermoscopy"})


def test_a_partner_sends_a_case_and_reads_its_result(app_server, database_url):
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=1)
        elsewhere = new_project(conn, make_user(conn, f"o-{uuid.uuid4().hex[:6]}@t.org", ["admin"]),
                                f"o-{uuid.uuid4().hex[:6]}")
    with app_server.client() as c:
        admin = token(c, database_url, w["admin"])
        made = make_key(c, admin, w["project"], ["images:write", "results:read"])
        key, bearer = made["key"], {"Authorization": f"Bearer {made['key']}"}
        first = send_case(c, key, w["project"], "CASE-42", png(1), {"site": "back"})
        assert first.status_code == 200, first.text
        case = first.json()["files"][0]
        assert case["external_id"] == "CASE-42" and case["duplicate"] is False
        again = send_case(c, key, w["project"], "CASE-42", png(1))
        assert again.status_code == 200 and again.json()["files"][0]["duplicate"] is True
        assert again.json()["files"][0]["id"] == case["id"]
        conflict = send_case(c, key, w["project"], "CASE-42", png(2))
        assert conflict.status_code == 409 and conflict.json()["code"] == "PT409"
        with psycopg.connect(database_url) as conn:  # what the project's rules select on, and the key's batch
            assert conn.execute("SELECT source_class, upload_batch FROM core.image WHERE id = %s",
                                (case["id"],)).fetchone() == ("teledermoscopy", f"partner:{key[:11]}")
        pending = c.get("/rpc/partner_case", params={"external_id": "CASE-42"}, headers=bearer)
        assert pending.status_code == 200 and pending.json()["status"] == "pending"

        # the project's rule made an item of it; a dermatologist reads it, a reviewer approves: the result is there
        with psycopg.connect(database_url) as conn:
            ann, rev = w["annotators"][0], w["reviewers"][0]
            item = call(conn, ann, "annotator", "next_item", project_id=w["project"])["item"]
            call(conn, ann, "annotator", "submit_annotation", item_id=item["id"], content={"class": w["class"]})
            call(conn, rev, "reviewer", "next_review", project_id=w["project"])
            call(conn, rev, "reviewer", "approve", item_id=item["id"])
        done = c.get("/rpc/partner_case", params={"external_id": "CASE-42"}, headers=bearer).json()
        assert done["status"] == "done" and done["results"][0]["class"]["code"] == "MEL"

        # outside its scopes and projects
        assert c.get(f"/projects/{w['project']}/export", params={"format": "jsonl"}, headers=bearer).status_code == 403
        outside = send_case(c, key, elsewhere, "CASE-43", png(3))
        assert outside.status_code == 404
        assert c.post("/rpc/next_item", json={"project_id": w["project"]}, headers=bearer).status_code == 403
        assert c.get("/rpc/partner_case", params={"external_id": "NOT-MINE"}, headers=bearer).status_code == 404

        # revoked: the very next request is refused
        assert c.post("/rpc/revoke_api_key", json={"key_id": made["id"]}, headers=admin).status_code == 200
        r = c.get("/rpc/key_info", headers=bearer)
        assert r.status_code == 401 and r.json()["code"] == "PT401"
        listed = c.post("/rpc/list_api_keys", json={}, headers=admin).json()
        assert listed[0]["revoked_at"] and listed[0]["use_count"] >= 5 and key not in json.dumps(listed)
    with psycopg.connect(database_url) as conn:  # every use audited, refused ones too; the secret in no row or log
        uses = conn.execute("SELECT after ->> 'call', request_id IS NOT NULL FROM audit.event "
                            "WHERE action = 'api_key_use' AND entity_id = %s ORDER BY id", (made["id"],)).fetchall()
        assert ("export_manifest", True) in uses  # refused for its scope, still recorded
        assert len(uses) >= 8 and all(has_request for _, has_request in uses)
        assert key not in (conn.execute("SELECT string_agg(e::text, '') FROM audit.event e").fetchone()[0] or "")
    assert key not in app_server.read_log()


def test_a_key_stops_at_its_daily_quota(app_server, database_url):
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=0, reviewers=0)
    with app_server.client() as c:
        made = make_key(c, token(c, database_url, w["admin"]), w["project"], ["results:read"], daily_quota=2)
        bearer = {"Authorization": f"Bearer {made['key']}"}
        codes = [c.get("/rpc/key_info", headers=bearer).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = c.get("/rpc/key_info", headers=bearer)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and r.json()["code"] == "PT429"


def test_the_rate_limit_holds_across_two_app_processes(database_url):
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)
    env = {"DL_JWT_SECRET": JWT_SECRET, "DL_RATE_RPC": "6/600", "DL_METRICS_REFRESH_SECONDS": "0"}
    apps = [start_app(database_url, env), start_app(database_url, env)]
    try:
        clients = [a.client() for a in apps]
        headers = token(clients[0], database_url, w["annotators"][0])
        codes = [clients[i % 2].get("/rpc/me", headers=headers).status_code for i in range(8)]
        # one budget of 6 for the person, whichever process answers
        assert codes == [200] * 6 + [429, 429]
        # a refused request counts too: 404s do not let a caller probe ids without limit
        other = token(clients[1], database_url, w["admin"])
        probes = [clients[i % 2].post("/rpc/project_overview", json={"project_id": 987654321 + i},
                                      headers=other).status_code for i in range(8)]
        assert probes == [404] * 6 + [429, 429]
    finally:
        for a in apps:
            stop_app(a)


class Receiver:
    """A webhook receiver on loopback: answers 500 to the first delivery, then 200; keeps what it got."""

    def __init__(self):
        self.got: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(500 if len(outer.got) == 1 else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def verify(secret: str, headers: dict, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in headers["x-dermlabel-signature"].split(","))
    want = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts["v1"])


def test_webhooks_are_delivered_signed_and_retried(app_server, database_url, tmp_path):
    receiver = Receiver()
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=1, annotators=1, reviewers=1)
    with app_server.client() as c:
        admin = token(c, database_url, w["admin"])
        hook = c.post("/rpc/create_webhook", headers=admin,
                      json={"organization_id": None, "url": receiver.url, "events": ["item.done"]}).json()
        assert len(hook["secret"]) == 64
        bad = c.post("/rpc/create_webhook", headers=admin,
                     json={"organization_id": None, "url": "http://10.1.2.3/hook", "events": ["item.done"]})
        assert bad.status_code == 400 and bad.json()["details"]["field"] == "url"
    worker = start_worker(database_url, str(tmp_path), {"DL_AI_CROP": "off", "DL_AI_SEGMENT": "off",
                                                        "DL_AI_CLASSIFY": "off", "DL_AI_RECOMMEND": "off"})
    try:
        with psycopg.connect(database_url) as conn:
            ann, rev = w["annotators"][0], w["reviewers"][0]
            item = call(conn, ann, "annotator", "next_item", project_id=w["project"])["item"]
            call(conn, ann, "annotator", "submit_annotation", item_id=item["id"], content={"class": w["class"]})
            call(conn, rev, "reviewer", "next_review", project_id=w["project"])
            call(conn, rev, "reviewer", "approve", item_id=item["id"])  # the request does not wait for the hook
        deadline = time.monotonic() + 40  # the first attempt gets a 500; the retry comes 10 s later
        while len(receiver.got) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(receiver.got) == 2, stop(worker)
    finally:
        log = stop(worker)
        receiver.server.shutdown()
    (h1, b1), (h2, b2) = receiver.got
    assert b1 == b2 and h1["x-dermlabel-delivery"] == h2["x-dermlabel-delivery"]  # the same delivery, again
    event = json.loads(b2)
    assert event["event"] == "item.done" and event["item_id"] == item["id"] and h2["x-dermlabel-event"] == "item.done"
    assert verify(hook["secret"], h2, b2), log
    assert not verify("a wrong secret", h2, b2)
    assert not verify(hook["secret"], h2, b2.replace(b"item.done", b"item.gone"))  # tampering shows
    with app_server.client() as c:
        listed = c.post("/rpc/list_webhooks", json={}, headers=token(c, database_url, w["admin"])).json()
    delivery = listed[0]["deliveries"][0]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2 and delivery["last_status"] == 200
