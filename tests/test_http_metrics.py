"""/metrics: Prometheus text with request counts by route, pool usage and queue sizes from SQL; and the metrics
dashboard's HTTP behaviour (/dashboard): its period, its project, who may see it."""
import csv
import io
import re
import uuid
from datetime import date, datetime, timezone

import psycopg
import pytest

from app.pages import period as periods
from sqlcall import PASSWORD, call, make_project, make_team


def test_metrics_counts_requests_and_reads_queues(app_server, database_url):
    with psycopg.connect(database_url) as conn:
        project = make_project(conn, uuid.uuid4().hex[:8], n_images=3, annotators=0, reviewers=0)["project"]
    with app_server.client() as c:
        for _ in range(3):
            c.get("/healthz")
        c.post("/rpc/no_such_function", json={})
        text = c.get("/metrics").text
    assert "# TYPE dermlabel_requests_total counter" in text
    healthz = re.search(r'dermlabel_requests_total\{[^}]*path="/healthz"[^}]*status_code="200"[^}]*\} (\d+)', text)
    assert healthz and float(healthz.group(1)) >= 3
    assert re.search(r'dermlabel_requests_total\{[^}]*path="/rpc/\{fn\}"[^}]*status_code="404"', text)
    assert "dermlabel_request_duration_seconds_bucket" in text
    assert re.search(r'dermlabel_db_pool_connections\{state="size"\} [1-9]', text)
    assert f'dermlabel_work_items{{project_id="{project}",status="new"}} 3.0' in text


# --- the dashboard's period, project and people over HTTP -----------------------------------------------------


@pytest.fixture(scope="module")
def team(database_url):
    with psycopg.connect(database_url) as conn:
        t = make_team(conn, "dashhttp", ann=["annotator"], rev=["reviewer"], ana=["analyst"])
        t["class"] = call(conn, t["admin"], "admin", "upsert_taxonomy_node", project_id=t["project"], code="MEL",
                          name="Melanoma")["id"]
        other = make_team(conn, "dashother")
        t["stranger"], t["emails"]["stranger"] = other["admin"], other["emails"]["admin"]
        conn.execute("UPDATE auth.\"user\" SET display_name = 'Dr. Ines Ito' WHERE id = %s", (t["ann"],))
        conn.commit()
        call(conn, t["admin"], "admin", "register_image", project_id=t["project"], storage_key="k/x",
             sha256=uuid.uuid4().hex * 2, width=10, height=10, media_type="image/png")
        rule = call(conn, t["admin"], "admin", "create_work_rule", project_id=t["project"], name="all", max_items=10)
        call(conn, t["admin"], "admin", "generate_work_items", rule_id=rule["id"])
        item = call(conn, t["ann"], "annotator", "next_item", project_id=t["project"])["item"]["id"]
        call(conn, t["ann"], "annotator", "submit_annotation", item_id=item, content={"class": t["class"]})
        call(conn, t["rev"], "reviewer", "approve",
             item_id=call(conn, t["rev"], "reviewer", "next_review", project_id=t["project"])["item"]["id"])
        conn.execute("SELECT metrics.refresh_all('test')")
        conn.commit()
    return t


def bearer(c, email: str) -> dict:
    r = c.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.mark.parametrize("query,message", [
    ("period=fortnight", "Unknown period 'fortnight'"),
    ("period=custom&from=2024-02-30&to=2024-03-01", "'2024-02-30' is not a day of the calendar"),
    ("period=custom&from=01/02/2024&to=2024-03-01", "'01/02/2024' is not a date: 'from' must be written YYYY-MM-DD"),
    ("period=custom&from=2024-03-01", "A custom period needs a 'to' date"),
    ("from=2024-03-02&to=2024-03-01", "The period ends (2024-03-01) before it starts (2024-03-02)"),
    ("period=custom&from=1990-01-01&to=2024-03-01", "twenty years at most"),
    ("period=custom&from=9999-12-31&to=9999-12-31", "must end before 9999-12-31"),  # was a 500 (date overflow)
])
def test_a_bad_period_is_a_400_page_that_says_why(app_server, team, query, message):
    with app_server.client() as c:
        r = c.get(f"/dashboard?project={team['project']}&{query}", headers=bearer(c, team["emails"]["admin"]))
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in r.text and message.replace("'", "&#39;") in r.text
        assert 'aria-label="Period"' in r.text and "Sign out" in r.text  # the controls to fix it, the top bar
        csv_r = c.get(f"/dashboard/throughput.csv?project={team['project']}&{query}",
                      headers=bearer(c, team["emails"]["admin"]))
        assert csv_r.status_code == 400 and message in csv_r.json()["message"]


def test_the_period_filters_the_page_and_the_csv(app_server, team):
    today = datetime.now(timezone.utc).date().isoformat()
    with app_server.client() as c:
        admin = bearer(c, team["emails"]["admin"])
        r = c.get(f"/dashboard?project={team['project']}&period=today", headers=admin)
        assert r.status_code == 200 and "Activity · today" in r.text
        assert re.search(r'data-total="submitted"><strong>1</strong>', r.text)
        r = c.get(f"/dashboard?project={team['project']}&period=custom&from=2020-01-01&to=2020-01-02", headers=admin)
        assert r.status_code == 200 and re.search(r'data-total="submitted"><strong>0</strong>', r.text)
        assert "/dashboard/throughput.csv?project=%d&amp;period=custom&amp;from=2020-01-01&amp;to=2020-01-02" % \
            team["project"] in r.text
        old = c.get(f"/dashboard/throughput.csv?project={team['project']}&period=custom&from=2020-01-01"
                    "&to=2020-01-02", headers=admin)
        assert old.status_code == 200 and old.text == ""
        now = c.get(f"/dashboard/throughput.csv?project={team['project']}&period=today", headers=admin)
        assert {row["bucket"][:10] for row in csv.DictReader(io.StringIO(now.text))} == {today}
        whole = c.get(f"/dashboard/annotator_daily.csv?project={team['project']}", headers=admin)
        assert [row["annotator_id"] for row in csv.DictReader(io.StringIO(whole.text))] == [str(team["ann"])]


def test_the_dashboard_finds_the_project_names_people_and_refuses_strangers(app_server, team):
    with app_server.client() as c:
        # an analyst's start page: the dashboard of their first project, no JSON error
        ana = bearer(c, team["emails"]["ana"])
        landing = c.get("/", headers=ana)
        assert landing.status_code in (302, 303) and landing.headers["location"] == "/dashboard"
        r = c.get("/dashboard", headers=ana)
        assert r.status_code == 200 and "<h1>Metrics · dashhttp-" in r.text
        assert "Dr. Ines Ito" in r.text and 'id="refresh-now"' not in r.text
        assert 'aria-label="Main"' in r.text and 'href="/dashboard?project=%d"' % team["project"] in r.text
        admin = c.get(f"/dashboard?project={team['project']}", headers=bearer(c, team["emails"]["admin"]))
        assert admin.status_code == 200 and 'id="refresh-now"' in admin.text
        assert '<script type="module" src="/static/js/dashboard.js">' in admin.text
        stranger = c.get(f"/dashboard?project={team['project']}", headers=bearer(c, team["emails"]["stranger"]))
        assert stranger.status_code == 404 and "Not your project" in stranger.text
        assert "dashhttp-" not in stranger.text and "Dr. Ines Ito" not in stranger.text
        annotator = c.get(f"/dashboard?project={team['project']}", headers=bearer(c, team["emails"]["ann"]))
        assert annotator.status_code == 403 and "Not for your role" in annotator.text
        bad = c.get("/dashboard?project=seven", headers=ana)
        assert bad.status_code == 400 and "is not a project id" in bad.text
    with app_server.client() as c:  # no cookies of the sign-ins above
        anon = c.get(f"/dashboard?project={team['project']}")
        assert anon.status_code in (302, 303) and anon.headers["location"].startswith("/login?next=/dashboard")


def test_period_buckets():
    d = date(2024, 3, 10)
    assert periods.parse({}, d) == periods.Period("30d", date(2024, 2, 10), date(2024, 3, 11))
    assert periods.parse({"period": "7d", "from": "2020-01-01"}, d).start == date(2024, 3, 4)  # dates ignored
    assert periods.parse({"from": "2024-01-01", "to": "2024-01-01"}, d).label == "2024-01-01"
    one_day = periods.span(periods.parse({"period": "today"}, d), None, d)
    assert one_day.granularity == "hour" and len(one_day.starts) == 24
    assert periods.span(periods.parse({"period": "30d"}, d), None, d).granularity == "day"
    year = periods.span(periods.parse({"period": "custom", "from": "2023-01-01", "to": "2023-12-31"}, d), None, d)
    assert year.granularity == "week" and year.starts[0].weekday() == 0 and len(year.starts) == 53
    assert periods.span(periods.parse({"period": "all"}, d), None, d) is None  # no data at all
    assert periods.span(periods.parse({"period": "all"}, d), date(2020, 1, 15), d).granularity == "month"
