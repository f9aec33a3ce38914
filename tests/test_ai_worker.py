"""The AI worker end to end, in its own migrated database: against the reference service over HTTP, against
loopback endpoints that fail, hang or speak chat-completions, and against SageMaker (moto's server)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from PIL import Image
from psycopg.types.json import Jsonb

from ai_services import Loopback, irregular_lesion, round_lesion, start_reference, start_worker, stop, wait_port
from conftest import JWT_SECRET, free_port, run_cli, start_app, stop_app, url_for
from sqlcall import call, join, make_user, new_project
from test_http_rpc import token


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    name = f"ai_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url_for("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = url_for(name)
    out = run_cli("migrate", env={"DATABASE_URL": url})
    assert out.returncode == 0, out.stderr
    data_dir = tmp_path_factory.mktemp("ai-data")
    with psycopg.connect(url) as conn:
        admin = make_user(conn, "admin@ai.test", ["admin"])
        ann = make_user(conn, "ann@ai.test", ["annotator"])
        project = new_project(conn, admin, "ai")
        join(conn, admin, project, ann)
        for code, name_, parent, steps in (("NEO", "Neoplasms", None, ""), ("NEO_MAL", "Malignant", "NEO", ""),
                                           ("MEL", "Melanoma", "NEO_MAL", "Urgent excision biopsy."),
                                           ("NV", "Melanocytic nevus", "NEO", "Reassure; monitor.")):
            call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code=code, name=name_,
                 parent_code=parent, next_steps=steps)
        with conn.transaction():
            from sqlcall import act
            act(conn, admin, "admin")
            conn.execute("SELECT api.configure_red_flags(%s, '{NEO_MAL}', 0.5, 100)", (project,))
        call(conn, admin, "admin", "create_work_rule", project_id=project, name="all", max_items=1000)
    app = start_app(url, {"DL_JWT_SECRET": JWT_SECRET, "DL_RATE_LOGIN": "off", "DL_RATE_RPC": "off",
                          "DL_METRICS_REFRESH_SECONDS": "0", "DL_DATA_DIR": str(data_dir)})
    yield {"url": url, "data_dir": data_dir, "admin": admin, "ann": ann, "project": project, "app": app}
    stop_app(app)
    with psycopg.connect(url_for("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(world):
    """A connection as the owner; jobs left open by an earlier test are closed so that each worker sees only its own."""
    with psycopg.connect(world["url"], autocommit=True) as conn:
        conn.execute("UPDATE core.ai_job SET status = 'failed', lease_expires_at = NULL, finished_at = now() "
                     "WHERE status IN ('queued', 'running')")
        yield conn


def add_image(world, db, png: bytes, metadata: dict | None = None) -> int:
    """Bytes into the storage the app and worker share, then the row (which creates the item and the job)."""
    sha = hashlib.sha256(png).hexdigest()
    key = f"images/{world['project']}/{sha}.png"
    path = Path(world["data_dir"]) / "images" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    w, h = Image.open(io.BytesIO(png)).size
    with db.transaction():
        from sqlcall import act
        act(db, world["admin"], "admin")
        return db.execute("SELECT (api.register_image(%s, %s, %s, %s, %s, 'image/png', 'clinic', 'b', %s) ->> 'id')"
                          "::bigint", (world["project"], key, sha, w, h, Jsonb(metadata or {}))).fetchone()[0]


def jobs(db, image_id: int) -> dict[str, tuple]:
    rows = db.execute("SELECT DISTINCT ON (stage) stage::text, status::text, attempts, last_error FROM core.ai_job "
                      "WHERE image_id = %s ORDER BY stage, id DESC", (image_id,)).fetchall()
    return {r[0]: r[1:] for r in rows}


def wait_for(predicate, seconds: float = 60, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def settled(db, image_id: int, stages=("crop", "classify", "recommend")):
    j = jobs(db, image_id)
    return j if all(s in j and j[s][0] in ("done", "failed", "skipped") for s in stages) else None


def test_pipeline_end_to_end_with_the_reference_service(world, db):
    ref_url, ref = start_reference()
    worker = start_worker(world["url"], str(world["data_dir"]), {"DL_AI_REFERENCE_URL": ref_url})
    try:
        wild = add_image(world, db, irregular_lesion()[0])
        calm = add_image(world, db, round_lesion()[0])
        for img in (wild, calm):
            j = wait_for(lambda: settled(db, img, ("crop", "segment", "classify", "recommend")), 90,
                         f"image {img}'s pipeline")
            assert {s: v[0] for s, v in j.items()} == {"crop": "done", "segment": "done", "classify": "done",
                                                       "recommend": "done"}
        with world["app"].client() as c:
            admin = token(c, world["url"], world["admin"])
            ann = token(c, world["url"], world["ann"])
            item = c.post("/rpc/next_item", json={"project_id": world["project"]}, headers=ann).json()["item"]
            assert item["image"]["id"] == wild, "the red-flagged image comes first"
            assert item["priority"] == 100
            ai = item["ai"]
            assert ai["classify"]["model"] == "reference-abcd"
            assert ai["classify"]["payload"]["classes"][0]["code"] == "MEL"
            assert ai["classify"]["payload"]["features"]["tds_band"] == "malignant"
            assert "Urgent excision" in ai["recommend"]["payload"]["steps"][0]
            box = ai["crop"]["payload"]["box"]
            assert 0 < box["width"] < 600
            assert ai["crop"]["payload"]["mask"]["size"] == [600, 600], "the lesion mask, at the image's size"
            assert ai["segment"]["payload"] == {"prepared": True}
            std = c.get(ai["crop"]["payload"]["standardised"]["url"], headers=ann)
            assert std.status_code == 200 and std.headers["content-type"] == "image/png"
            assert Image.open(io.BytesIO(std.content)).size == (512, 512)
            detail = c.post("/rpc/item_detail", json={"item_id": item["id"]}, headers=admin).json()
            assert detail["ai"]["classify"]["payload"]["classes"][0]["code"] == "MEL"
            calm_item = db.execute("SELECT priority FROM core.work_item WHERE image_id = %s", (calm,)).fetchone()
            assert calm_item == (0,), "a benign-looking image keeps its priority"
            metrics = c.get("/metrics").text
            assert 'dermlabel_ai_jobs{stage="classify",status="done"}' in metrics
            assert 'dermlabel_ai_latency_ms{quantile="0.5",stage="crop"}' in metrics
    finally:
        assert "Traceback" not in stop(worker)
        stop(ref)


def test_retries_with_backoff_record_each_error(world, db):
    def flaky(n, body):
        return (503, {"message": "warming up"}) if n <= 2 else \
            (200, {"model": "flaky-crop", "version": "2", "box": {"x": 10, "y": 10, "width": 100, "height": 100}})
    crop = Loopback(flaky)
    worker = start_worker(world["url"], str(world["data_dir"]),
                          {"DL_AI_CROP_URL": crop.url, "DL_AI_CLASSIFY": "off", "DL_AI_RECOMMEND": "off",
                           "DL_AI_SEGMENT": "off", "DL_AI_BACKOFF_SECONDS": "0.2", "DL_AI_BREAKER_FAILURES": "10"})
    try:
        img = add_image(world, db, round_lesion()[0])
        wait_for(lambda: settled(db, img, ("crop", "classify")), 30, "crop and classify to settle")
        assert jobs(db, img)["crop"][:2] == ("done", 3)
        errors = db.execute("SELECT a.attempt, a.outcome, a.error FROM core.ai_attempt a JOIN core.ai_job j "
                            "ON j.id = a.job_id WHERE j.image_id = %s AND j.stage = 'crop' ORDER BY 1",
                            (img,)).fetchall()
        assert [e[1] for e in errors] == ["error", "error", "done"]
        assert all("HTTP 503" in e[2] and "warming up" in e[2] for e in errors[:2])
        gaps = db.execute("SELECT extract(epoch FROM s.started_at - f.finished_at) FROM core.ai_attempt f "
                          "JOIN core.ai_attempt s ON s.job_id = f.job_id AND s.attempt = f.attempt + 1 "
                          "JOIN core.ai_job j ON j.id = f.job_id WHERE j.image_id = %s AND j.stage = 'crop' "
                          "ORDER BY f.attempt", (img,)).fetchall()
        assert gaps[0][0] >= 0.19 and gaps[1][0] >= 0.39, f"backoff 0.2 s then 0.4 s, got {gaps}"
        assert jobs(db, img)["classify"][0] == "skipped", "a stage that is off is settled, not left queued"
        model = db.execute("SELECT model_name, model_version FROM core.ai_suggestion WHERE image_id = %s",
                           (img,)).fetchone()
        assert model == ("flaky-crop", "2")
    finally:
        stop(worker)
        crop.close()


def test_a_refused_answer_fails_for_good_without_retrying(world, db):
    bad = Loopback(lambda n, body: (400, {"message": "unsupported image"}))
    worker = start_worker(world["url"], str(world["data_dir"]),
                          {"DL_AI_CROP_URL": bad.url, "DL_AI_CLASSIFY": "off", "DL_AI_RECOMMEND": "off",
                           "DL_AI_SEGMENT": "off"})
    try:
        img = add_image(world, db, irregular_lesion()[0])
        j = wait_for(lambda: settled(db, img, ("crop", "classify")), 30, "the crop to fail")
        assert j["crop"][:2] == ("failed", 1) and "HTTP 400" in j["crop"][2]
        assert len(bad.requests) == 1
    finally:
        stop(worker)
        bad.close()


@pytest.fixture(scope="module")
def sagemaker():
    port = free_port()
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def test_classify_through_sagemaker(world, db, sagemaker):
    httpx.post(f"{sagemaker}/moto-api/static/sagemaker/endpoint-results", json={"results": [
        {"Body": json.dumps({"probabilities": {"MEL": 0.15, "NV": 0.85}}), "ContentType": "application/json",
         "InvokedProductionVariant": "variant-a", "CustomAttributes": ""}]}).raise_for_status()
    creds = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    worker = start_worker(world["url"], str(world["data_dir"]),
                          {**creds, "DL_AI_CROP": "off", "DL_AI_SEGMENT": "off", "DL_AI_CLASSIFY": "sagemaker",
                           "DL_AI_SAGEMAKER_ENDPOINT": "derm-classifier", "DL_AI_SAGEMAKER_REGION": "us-east-1",
                           "DL_AI_SAGEMAKER_URL": sagemaker,
                           # moto's server cannot take a binary body; real endpoints take either format
                           "DL_AI_SAGEMAKER_FORMAT": "json"})
    try:
        img = add_image(world, db, round_lesion(radius=70)[0])
        j = wait_for(lambda: settled(db, img), 30, "the SageMaker classification")
        assert j["classify"][0] == "done", j
        s = db.execute("SELECT model_name, model_version, payload FROM core.ai_suggestion "
                       "WHERE image_id = %s AND stage = 'classify'", (img,)).fetchone()
        assert s[:2] == ("derm-classifier", "variant-a")
        assert [c["code"] for c in s[2]["classes"]] == ["NV", "MEL"]
        steps = db.execute("SELECT payload -> 'steps' FROM core.ai_suggestion WHERE image_id = %s "
                           "AND stage = 'recommend'", (img,)).fetchone()[0]
        assert steps[0].startswith("Melanocytic nevus (85 %): Reassure")
    finally:
        stop(worker)


def test_next_steps_from_a_chat_completions_endpoint_without_identifiers(world, db):
    classify = Loopback(lambda n, body: (200, {"model": "fixed", "version": "1",
                                               "probabilities": {"MEL": 0.7, "NV": 0.3}}))
    chat = Loopback(lambda n, body: (200, {"model": "tiny-llm-2", "choices": [{"message": {
        "role": "assistant", "content": "- Dermoscopy within two weeks\n- Compare with a baseline photograph\n"}}]}))
    worker = start_worker(world["url"], str(world["data_dir"]),
                          {"DL_AI_CROP": "off", "DL_AI_SEGMENT": "off", "DL_AI_CLASSIFY_URL": classify.url,
                           "DL_AI_RECOMMEND": "openai",
                           "DL_AI_OPENAI_BASE_URL": chat.url + "/v1", "DL_AI_OPENAI_MODEL": "tiny-llm",
                           "DL_AI_OPENAI_API_KEY": "sk-test-123"})
    try:
        img = add_image(world, db, irregular_lesion()[0],
                        {"patient_name": "Jane Doe", "patient_id": "MRN-55512", "body_site": "back"})
        j = wait_for(lambda: settled(db, img), 30, "the chat recommendation")
        assert j["recommend"][0] == "done", j
        req = chat.requests[-1]
        assert req["path"] == "/v1/chat/completions"
        assert req["headers"]["authorization"] == "Bearer sk-test-123"
        sent = json.loads(req["body"])
        assert sent["model"] == "tiny-llm"
        text = json.dumps(sent)
        assert "Melanoma (MEL): 70%" in text
        assert "Jane Doe" not in text and "MRN-55512" not in text and "back" not in sent["messages"][1]["content"]
        s = db.execute("SELECT model_name, model_version, payload -> 'steps' FROM core.ai_suggestion "
                       "WHERE image_id = %s AND stage = 'recommend'", (img,)).fetchone()
        assert s == ("tiny-llm", "tiny-llm-2", ["Dermoscopy within two weeks", "Compare with a baseline photograph"])
    finally:
        stop(worker)
        classify.close()
        chat.close()


def test_next_item_never_waits_for_a_model_and_shutdown_gives_jobs_back(world, db):
    def hang(n, body):
        time.sleep(20)
        return 200, {}
    slow = Loopback(hang)
    worker = start_worker(world["url"], str(world["data_dir"]),
                          {"DL_AI_CROP_URL": slow.url, "DL_AI_CROP_TIMEOUT": "25", "DL_AI_LEASE_SECONDS": "60",
                           "DL_AI_SEGMENT": "off",
                           "DL_AI_SHUTDOWN_GRACE_SECONDS": "0.5"})
    try:
        img = add_image(world, db, round_lesion(radius=60)[0])
        wait_for(lambda: jobs(db, img).get("crop", ("",))[0] == "running", 15, "the crop call to start")
        with world["app"].client() as c:
            ann = token(c, world["url"], world["ann"])
            t0 = time.monotonic()
            r = c.post("/rpc/next_item", json={"project_id": world["project"]}, headers=ann, timeout=5)
            assert r.status_code == 200
            item = r.json()["item"]
            if item["image"]["id"] != img:  # an earlier test's image came first: take ours next
                c.post("/rpc/release_item", json={"item_id": item["id"]}, headers=ann)
            assert time.monotonic() - t0 < 5
            assert jobs(db, img)["crop"][0] == "running", "the model call was still in flight"
        worker.send_signal(signal.SIGTERM)
        worker.wait(15)
        assert jobs(db, img)["crop"][:2] == ("queued", 0), "the unfinished job went back, its attempt uncounted"
        outcome = db.execute("SELECT a.outcome FROM core.ai_attempt a JOIN core.ai_job j ON j.id = a.job_id "
                             "WHERE j.image_id = %s", (img,)).fetchall()
        assert outcome == [("returned",)]
    finally:
        if worker.poll() is None:
            stop(worker)
        slow.close()


def test_rerun_ai_is_for_admins_of_the_project(world, db):
    img = add_image(world, db, round_lesion(radius=50)[0])
    db.execute("UPDATE core.ai_job SET status = 'failed', finished_at = now() WHERE image_id = %s", (img,))
    before = db.execute("SELECT count(*) FROM core.ai_job WHERE image_id = %s", (img,)).fetchone()[0]
    with world["app"].client() as c:
        admin = token(c, world["url"], world["admin"])
        ann = token(c, world["url"], world["ann"])
        r = c.post("/rpc/rerun_ai", json={"image_id": img}, headers=ann)
        assert r.status_code == 403 and "code" in r.json()
        r = c.post("/rpc/rerun_ai", json={"image_id": 999999}, headers=admin)
        assert r.status_code == 404
        r = c.post("/rpc/rerun_ai", json={"image_id": "seven"}, headers=admin)
        assert r.status_code == 400
        assert db.execute("SELECT count(*) FROM core.ai_job WHERE image_id = %s", (img,)).fetchone()[0] == before
        r = c.post("/rpc/rerun_ai", json={"image_id": img}, headers=admin)
        assert r.status_code == 200 and r.json()["stage"] == "crop"
        status = c.post("/rpc/ai_status", json={"project_id": world["project"]}, headers=admin).json()
        assert status["jobs"]["crop"]["queued"] == 1
    assert db.execute("SELECT cascade FROM core.ai_job WHERE image_id = %s AND status = 'queued'",
                      (img,)).fetchone() == (True,)


def test_many_concurrent_workers_never_take_the_same_job(world, db):
    """32 clients claim and complete as fast as they can: every job is done exactly once, by its claimer."""
    from concurrent.futures import ThreadPoolExecutor

    with db.transaction():
        from sqlcall import act
        act(db, world["admin"], "admin")
        db.execute("SELECT api.register_image(%s, 'k/conc/' || i, encode(sha256(('conc' || i)::bytea), 'hex'), "
                   "100, 100, 'image/png') FROM generate_series(1, 300) i", (world["project"],))
    total = db.execute("SELECT count(*) FROM core.ai_job WHERE status = 'queued' AND stage = 'crop'").fetchone()[0]
    assert total == 300

    def work(n: int) -> list[int]:
        mine = []
        with psycopg.connect(world["url"], autocommit=True) as conn:
            conn.execute("SET ROLE dl_ai_worker")
            while True:
                jobs_ = conn.execute("SELECT ai.claim_jobs(%s, '{crop}', 3, 60)", (f"w{n}",)).fetchone()[0]
                if not jobs_:
                    return mine
                for j in jobs_:
                    conn.execute("SELECT ai.complete_job(%s, %s, 'm', '1', "
                                 "'{\"box\": {\"x\": 0, \"y\": 0, \"width\": 10, \"height\": 10}}', 1)",
                                 (j["job_id"], f"w{n}"))
                    mine.append(j["job_id"])

    with ThreadPoolExecutor(32) as pool:
        claimed = [j for part in pool.map(work, range(32)) for j in part]
    assert len(claimed) == len(set(claimed)) == 300, "no job taken twice, none left behind"
    assert db.execute("SELECT count(*) FROM core.ai_attempt a JOIN core.ai_job j ON j.id = a.job_id "
                      "WHERE j.stage = 'crop' AND j.image_id IN (SELECT id FROM core.image WHERE storage_key "
                      "LIKE 'k/conc/%%') AND a.attempt > 1").fetchone()[0] == 0
    assert db.execute("SELECT count(DISTINCT image_id) FROM core.ai_suggestion s JOIN core.image i ON i.id = s.image_id "
                      "WHERE i.storage_key LIKE 'k/conc/%%'").fetchone()[0] == 300
