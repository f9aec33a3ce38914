"""/metrics: Prometheus text with request counts by route, pool usage and queue sizes from SQL."""
import re
import uuid

import psycopg

from sqlcall import make_project


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
