"""Metrics over HTTP and in PostgreSQL: who may read them, refreshing while others read, one refresher at a time,
the app's refresh schedule, the dashboard page and its CSV downloads."""
from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
import uuid

import psycopg
import pytest

from conftest import start_app, stop_app

# every view the README documents for analysts (the dashboard and the scheduler must cover each)
VIEWS = {"queue_by_status", "annotator_daily", "review_outcome", "class_distribution", "flags_by_reason",
         "throughput", "agreement_pair", "agreement_project", "agreement_alpha", "quality_by_stratum", "region_agreement_pair", "region_agreement_project", "ai_model_quality", "gold_accuracy", "review_hints", "ai_agreement"}
from sqlcall import call, join, make_project, make_user, new_project

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def world(database_url):
    tag = uuid.uuid4().hex[:8]
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, tag, n_images=3, annotators=1, reviewers=1)
        a, r = w["annotators"][0], w["reviewers"][0]
        for _ in range(3):  # three items annotated and approved
            item = call(conn, a, "annotator", "next_item", project_id=w["project"])["item"]["id"]
            call(conn, a, "annotator", "submit_annotation", item_id=item, content={"class": w["class"]})
            got = call(conn, r, "reviewer", "next_review", project_id=w["project"])["item"]["id"]
            call(conn, r, "reviewer", "approve", item_id=got)
        w["analyst"] = make_user(conn, f"analyst-{tag}@t.org", ["analyst"])
        join(conn, w["admin"], w["project"], w["analyst"])  # analyst of the project's organization
        w["emails"] = {k: conn.execute('SELECT email FROM auth."user" WHERE id = %s', (w[k] if k != "annotator"
                                        else a,)).fetchone()[0] for k in ("admin", "analyst", "annotator")}
    return w


def token(app_server, email: str) -> dict:
    with app_server.client() as c:
        r = c.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}


def test_admin_refreshes_and_analyst_reads(app_server, world):
    admin, analyst = token(app_server, world["emails"]["admin"]), token(app_server, world["emails"]["analyst"])
    with app_server.client() as c:
        r = c.post("/rpc/refresh_metrics", headers=admin)
        assert r.status_code == 200 and r.json()["refreshed"] is True
        assert set(r.json()["views_ms"]) >= {"queue_by_status", "agreement_pair", "throughput"}
        r = c.get("/rpc/metrics", params={"project_id": world["project"], "view": "queue_by_status"}, headers=analyst)
        assert r.status_code == 200
        assert {row["status"]: row["items"] for row in r.json()["rows"]}["done"] == 3
        assert r.json()["refreshed_at"]
        r = c.get("/rpc/metrics", params={"project_id": world["project"]}, headers=analyst)  # every view at once
        assert r.status_code == 200 and set(r.json()) == VIEWS
        assert r.json()["queue_by_status"]["rows"] and r.json()["agreement_pair"]["rows"] == []


def test_who_may_not_read_metrics(app_server, world, database_url):
    annotator, analyst = token(app_server, world["emails"]["annotator"]), token(app_server, world["emails"]["analyst"])
    with app_server.client() as c:
        assert c.get("/rpc/metrics", params={"project_id": world["project"], "view": "throughput"},
                     headers=annotator).status_code == 403
        assert c.post("/rpc/refresh_metrics", headers=analyst).status_code == 403
        r = c.get("/rpc/metrics", params={"project_id": world["project"], "view": "pg_authid"}, headers=analyst)
        assert r.status_code == 400 and r.json()["details"]["field"] == "view"
    other_admin = None
    with psycopg.connect(database_url) as conn:
        other_admin = make_user(conn, f"admin2-{uuid.uuid4().hex[:6]}@t.org", ["admin"])
        new_project(conn, other_admin, f"other-{uuid.uuid4().hex[:6]}")  # admin of a project elsewhere
        email = conn.execute('SELECT email FROM auth."user" WHERE id = %s', (other_admin,)).fetchone()[0]
    with app_server.client() as c:  # an admin of other projects: this one does not exist for them
        r = c.get("/rpc/metrics", params={"project_id": world["project"], "view": "throughput"},
                  headers=token(app_server, email))
        assert r.status_code == 404


def test_refresh_runs_while_readers_read_and_only_one_at_a_time(world, database_url):
    with psycopg.connect(database_url) as reader, psycopg.connect(database_url) as first, \
            psycopg.connect(database_url, autocommit=True) as second:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        before = reader.execute("SELECT count(*) FROM metrics.throughput").fetchone()[0]
        # the reader holds its lock on the view until it commits; a CONCURRENTLY refresh does not wait for it
        first.execute("SET lock_timeout = '5s'")
        out = first.execute("SELECT metrics.refresh_all('test')").fetchone()[0]
        assert out["refreshed"] is True
        # while the first refresh's transaction is open, a second refresher returns at once
        t = time.monotonic()
        assert second.execute("SELECT metrics.refresh_all('test')").fetchone()[0] == \
            {"refreshed": False, "reason": "already_running"}
        assert time.monotonic() - t < 2
        first.commit()
        assert reader.execute("SELECT count(*) FROM metrics.throughput").fetchone()[0] == before
        reader.commit()


def test_refresh_while_many_sessions_read(world, database_url):
    """Readers hammer the views during five refreshes: none fails, none waits for a refresh to finish."""
    stop = threading.Event()
    errors: list[str] = []
    reads = [0]

    def read() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '2s'")
            while not stop.is_set():
                try:
                    conn.execute("SELECT count(*) FROM metrics.annotator_daily, metrics.queue_by_status").fetchone()
                    reads[0] += 1
                except psycopg.Error as exc:
                    errors.append(str(exc))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for th in threads:
        th.start()
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for _ in range(5):
                assert conn.execute("SELECT metrics.refresh_all('test')").fetchone()[0]["refreshed"] is True
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert errors == [] and reads[0] > 0


def test_the_app_refreshes_on_a_schedule(database_url, world):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM metrics.refreshed_at WHERE trigger = 'schedule'")
    server = start_app(database_url, {"DL_METRICS_REFRESH_SECONDS": "0.5"})
    try:
        deadline = time.monotonic() + 20
        with psycopg.connect(database_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                if conn.execute("SELECT count(*) FROM metrics.refreshed_at WHERE trigger = 'schedule'").fetchone()[0]:
                    break
                time.sleep(0.2)
            assert {v for (v,) in conn.execute("SELECT view_name FROM metrics.refreshed_at "
                                                "WHERE trigger = 'schedule'")} == VIEWS
    finally:
        stop_app(server)


def test_dashboard_page_and_csv(app_server, world):
    admin = token(app_server, world["emails"]["admin"])
    with app_server.client() as c:
        c.post("/rpc/refresh_metrics", headers=admin)
        r = c.get("/dashboard", params={"project": world["project"]}, headers=admin)
        assert r.status_code == 200 and "<svg" in r.text and "Queue by status" in r.text
        # charts are drawn on the server; the page's only scripts are the app's own modules (sign-out, times in the
        # viewer's locale, Refresh now)
        assert set(re.findall(r"<script[^>]*>", r.text)) == {
            '<script type="module" src="/static/js/chrome.js">', '<script type="module" src="/static/js/dashboard.js">'}
        r = c.get("/dashboard/queue_by_status.csv", params={"project": world["project"]}, headers=admin)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert {row["status"]: row["items"] for row in rows}["done"] == "3"
        r = c.get("/dashboard/pg_authid.csv", params={"project": world["project"]}, headers=admin)
        assert r.status_code == 400 and r.json()["details"]["field"] == "view"  # SQL knows the views
    with app_server.client() as c:
        anon = c.get("/dashboard", params={"project": world["project"]})  # a page: sign in first
        assert anon.status_code == 302 and anon.headers["location"].startswith("/login?next=/dashboard")
        anon = c.get("/dashboard/queue_by_status.csv", params={"project": world["project"]})
        assert anon.status_code == 401 and json.loads(anon.text)["code"]
