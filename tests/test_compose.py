"""docker-compose.yml cannot run here (no Docker engine): check it is in step with the code."""
import yaml

from app.migrate.resolve import load_config
from conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_services_present():
    assert {"postgres", "flyway", "minio", "minio-bucket", "app"} <= set(SERVICES)
    assert SERVICES["postgres"]["image"] == "postgres:16"
    assert SERVICES["flyway"]["image"].startswith("flyway/flyway:10")


def test_flyway_mounts_the_conf_and_every_location_it_names():
    fw = SERVICES["flyway"]
    assert "migrate" in fw["command"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in fw["volumes"]}
    assert mounts["/flyway/conf/flyway.conf"] == "./flyway.conf"
    for location in load_config(ROOT / "flyway.conf").locations:
        rel = location.relative_to(ROOT).as_posix()
        assert mounts[f"{fw['working_dir']}/{rel}"] == f"./{rel}", rel
    assert fw["environment"]["FLYWAY_URL"].startswith("jdbc:postgresql://postgres:5432/")


def test_app_waits_for_flyway_and_the_bucket_and_has_its_environment():
    app = SERVICES["app"]
    assert (ROOT / "Dockerfile").exists() and app["build"] == "."
    assert app["depends_on"]["flyway"]["condition"] == "service_completed_successfully"
    assert app["depends_on"]["minio-bucket"]["condition"] == "service_completed_successfully"
    env = app["environment"]
    for name in ("DATABASE_URL", "DL_APP_DB_USER", "DL_APP_DB_PASSWORD", "DL_HOST", "DL_PORT", "DL_JWT_SECRET",
                 "DL_STORAGE", "DL_S3_BUCKET", "DL_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert name in env, name
    assert "@postgres:5432/dermlabel" in env["DATABASE_URL"]
    assert env["DL_STORAGE"] == "s3" and env["DL_S3_ENDPOINT_URL"] == "http://minio:9000"
    # the bucket the app uses is the one created at start
    assert env["DL_S3_BUCKET"] == SERVICES["minio-bucket"]["environment"]["DL_S3_BUCKET"]


def test_bucket_is_created_at_start():
    entry = SERVICES["minio-bucket"]["entrypoint"]
    assert "mc mb --ignore-existing" in entry
    assert SERVICES["minio-bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"


def test_postgres_init_creates_the_authenticator_with_its_password():
    pg = SERVICES["postgres"]
    init = [v for v in pg["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and (ROOT / init[0].split(":")[0]).exists()
    assert "dl_authenticator" in (ROOT / "deploy" / "postgres-init.sh").read_text()


def test_ai_worker_and_reference_service_are_wired():
    ref, worker = SERVICES["ai-reference"], SERVICES["ai-worker"]
    assert ref["command"] == ["python", "-m", "app", "ai-reference"]
    assert worker["command"] == ["python", "-m", "app", "worker"]
    env = worker["environment"]
    assert env["DL_AI_REFERENCE_URL"] == "http://ai-reference:8001"
    assert SERVICES["app"]["environment"]["DL_AI_REFERENCE_URL"] == env["DL_AI_REFERENCE_URL"], \
        "the app asks the same service for click-to-segment"
    assert env["DL_STORAGE"] == SERVICES["app"]["environment"]["DL_STORAGE"] == "s3", "one storage for both"
    assert worker["depends_on"]["flyway"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["ai-reference"]["condition"] == "service_healthy"
