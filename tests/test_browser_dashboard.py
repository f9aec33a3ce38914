"""The metrics dashboard in a real browser: it renders with data, charts included, for a signed-in admin."""
from __future__ import annotations

import uuid

import psycopg

from browser import signed_in_page
from sqlcall import call, make_project


def test_dashboard_renders_with_data(app_server, database_url):
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=2, annotators=1, reviewers=1)
        a, r = w["annotators"][0], w["reviewers"][0]
        for _ in range(2):
            item = call(conn, a, "annotator", "next_item", project_id=w["project"])["item"]["id"]
            call(conn, a, "annotator", "submit_annotation", item_id=item, content={"class": w["class"]})
            call(conn, r, "reviewer", "approve",
                 item_id=call(conn, r, "reviewer", "next_review", project_id=w["project"])["item"]["id"])
        conn.execute("SELECT metrics.refresh_all('test')")
        conn.commit()
        email = conn.execute('SELECT email FROM auth."user" WHERE id = %s', (w["admin"],)).fetchone()[0]
    with signed_in_page(app_server.url, email, "correct horse battery") as page:
        page.goto(f"/dashboard?project={w['project']}")
        assert page.locator("h1").inner_text() == f"Metrics · project {w['project']}"
        assert page.locator("figure svg").count() == 4
        assert page.locator("figure").first.locator("svg rect").count() >= 1  # the queue has a bar
        queue = page.locator("#queue_by_status table tbody tr")
        assert queue.count() == 1 and "done" in queue.first.inner_text() and "2" in queue.first.inner_text()
        assert "MEL" in page.locator("#class_distribution").inner_text()
        with page.expect_download() as download:
            page.locator("#throughput a.csv").click()
        assert download.value.suggested_filename == f"throughput-project-{w['project']}.csv"
