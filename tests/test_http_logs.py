"""Logs are JSON lines; every request has an id, echoed in X-Request-Id and written on its access line."""
import json

from conftest import JWT_SECRET, start_app, stop_app


def test_access_lines_are_json_with_the_request_id(database_url):
    server = start_app(database_url, {"DL_JWT_SECRET": JWT_SECRET, "DL_LOG_FORMAT": "json"})
    try:
        with server.client() as c:
            given = c.get("/healthz", headers={"x-request-id": "trace-42"})
            made = c.post("/rpc/nope", json={})
            hostile = c.get("/healthz", headers={"x-request-id": "bad id; DROP TABLE"})
            huge = c.get("/healthz", headers={"x-request-id": "x" * 500})
    finally:
        stop_app(server)
    assert given.headers["x-request-id"] == "trace-42"
    assert len(made.headers["x-request-id"]) == 32
    assert hostile.headers["x-request-id"] != "bad id; DROP TABLE" and len(huge.headers["x-request-id"]) == 32
    lines = [json.loads(line) for line in server.read_log().splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry["logger"] == "dermlabel.access"]
    assert {"request_id": "trace-42", "path": "/healthz", "status": 200}.items() <= access[0].items()
    assert any(e["request_id"] == made.headers["x-request-id"] and e["status"] == 404 for e in access)
