"""/healthz over HTTP from a real app process."""
import psycopg

from conftest import start_app, stop_app, url_for


def test_healthz_reports_ok_and_schema_version(app_server, database_url):
    r = app_server.client().get("/healthz")
    assert r.status_code == 200
    with psycopg.connect(database_url) as conn:
        latest = conn.execute("SELECT version FROM flyway_schema_history WHERE version IS NOT NULL "
                              "ORDER BY installed_rank DESC LIMIT 1").fetchone()[0]
    assert r.json() == {"status": "ok", "database": "ok", "schema_version": latest, "storage": "ok"}


def test_healthz_is_503_when_the_database_is_unreachable(database_url):
    server = start_app(url_for("no_such_database"))
    try:
        r = server.client().get("/healthz")
        assert r.status_code == 503
        assert r.json()["database"] == "unreachable"
    finally:
        stop_app(server)


def test_healthz_is_503_when_storage_is_unavailable(database_url, tmp_path):
    (tmp_path / "blocker").write_text("a file where the image folder's parent should be")
    server = start_app(database_url, {"DL_IMAGE_DIR": str(tmp_path / "blocker" / "images")})
    try:
        r = server.client().get("/healthz")
        assert r.status_code == 503 and r.json()["storage"] == "unavailable" and r.json()["database"] == "ok"
    finally:
        stop_app(server)


def test_app_connects_as_the_authenticator_not_a_superuser(app_server, database_url):
    app_server.client().get("/healthz")
    with psycopg.connect(database_url) as conn:
        users = {r[0] for r in conn.execute(
            "SELECT usename FROM pg_stat_activity WHERE application_name = 'dermlabel'")}
    assert users == {"dl_authenticator"}
