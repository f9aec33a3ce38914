"""Erasure tested on bytes: plant a unique string in everything an image and a person leave behind (upload fields,
annotation, review comment, flag comment, name, email, template), erase them, let the worker purge the storage,
then scan a dump of the whole database and the storage folder: none of the strings is left, and the project's
queue, metrics and export still add up."""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import psycopg

from ai_services import start_worker, stop
from app.ops.cluster import pg_bin
from sqlcall import call, make_project
from test_http_images import jpeg_with_gps, upload
from test_http_rpc import token


def dump(database_url: str) -> str:
    out = subprocess.run([str(pg_bin() / "pg_dump"), "--data-only", "-d", database_url], capture_output=True,
                         check=True)
    return out.stdout.decode(errors="replace")


def test_erasing_an_image_and_a_person_leaves_none_of_their_words(app_server, database_url):
    tag = uuid.uuid4().hex[:10]
    plant = {k: f"PLANT{k}{tag}" for k in ("SRC", "BATCH", "DESC", "REVIEW", "NAME", "TPL")}
    email = f"plant{tag}@t.org"
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, tag, n_images=0, annotators=1, reviewers=1)
    with app_server.client() as c:
        admin = token(c, database_url, w["admin"])
        up = upload(c, admin, w["project"], [("x.jpg", jpeg_with_gps((200, 90, 60)), "image/jpeg")],
                    source_class=plant["SRC"], batch=plant["BATCH"])
        image = up.json()["files"][0]["id"]
        person = c.post("/rpc/create_user", headers=admin, json={"email": email, "display_name": plant["NAME"],
                                                                 "password": "a long password", "organization_id": None})
        person = person.json()["id"]
        assert c.post("/rpc/add_project_member", headers=admin,
                      json={"project_id": w["project"], "user_id": person, "roles": ["annotator"]}).status_code == 200
    with psycopg.connect(database_url) as conn:
        ann, rev = w["annotators"][0], w["reviewers"][0]
        item = call(conn, ann, "annotator", "next_item", project_id=w["project"])["item"]
        call(conn, ann, "annotator", "submit_annotation", item_id=item["id"],
             content={"class": w["class"], "description": plant["DESC"]})
        call(conn, rev, "reviewer", "next_review", project_id=w["project"])
        call(conn, rev, "reviewer", "approve", item_id=item["id"], comment=plant["REVIEW"])
        call(conn, person, "annotator", "save_template", name="t", body=plant["TPL"])
        sha, pid = conn.execute("SELECT sha256, project_id FROM core.image WHERE id = %s", (image,)).fetchone()
    storage = Path(os.environ["DL_DATA_DIR"]) / "images"
    original = storage / "images" / str(pid) / f"{sha}.jpg"
    assert original.is_file() and all(v in dump(database_url) for v in plant.values())  # planted for real

    with app_server.client() as c:
        admin = token(c, database_url, w["admin"])
        assert c.post("/rpc/erase_image", json={"image_id": image}, headers=admin).status_code == 200
        assert c.post("/rpc/erase_person", json={"user_id": person}, headers=admin).status_code == 200
        assert c.get(f"/images/{image}", headers=admin).status_code == 404
    worker = start_worker(database_url, os.environ["DL_DATA_DIR"],
                          {"DL_AI_CROP": "off", "DL_AI_SEGMENT": "off", "DL_AI_CLASSIFY": "off",
                           "DL_AI_RECOMMEND": "off"})
    try:
        deadline = time.monotonic() + 30
        with psycopg.connect(database_url, autocommit=True) as conn:
            while conn.execute("SELECT count(*) FROM core.storage_purge WHERE image_id = %s AND done_at IS NULL",
                               (image,)).fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        log = stop(worker)
    assert not original.exists() and not (storage / "thumbs" / str(pid) / f"{sha}.jpg").exists(), log

    text = dump(database_url)
    left = {k: v for k, v in plant.items() if v in text} | ({"EMAIL": email} if email in text else {})
    assert left == {}
    for path in storage.rglob("*"):  # nothing stored holds them either
        if path.is_file():
            data = path.read_bytes()
            assert not any(v.encode() in data for v in plant.values()), path

    # what stays adds up: the done item is still counted, the export leaves the erased image out
    with app_server.client() as c:
        admin = token(c, database_url, w["admin"])
        overview = c.post("/rpc/project_overview", json={"project_id": w["project"]}, headers=admin).json()
        assert {q["status"]: q["items"] for q in overview["queue"]} == {"done": 1}
        export = c.get(f"/projects/{w['project']}/export", params={"format": "jsonl"}, headers=admin)
        assert export.status_code == 200
        lines = [ln for ln in export.text.splitlines() if ln.strip()]
        assert len(lines) == 1 and '"items": 0' in lines[0].replace('"items":0', '"items": 0')


def test_a_project_that_requires_consent_refuses_images_without_it_and_stores_nothing(app_server, database_url):
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=0, reviewers=0)
    storage = Path(os.environ["DL_DATA_DIR"]) / "images"
    with app_server.client() as c:
        admin = token(c, database_url, w["admin"])
        c.post("/rpc/set_consent_required", json={"project_id": w["project"], "required": True}, headers=admin)
        before = sorted(storage.rglob("*"))
        refused = upload(c, admin, w["project"], [("x.jpg", jpeg_with_gps((10, 20, 30)), "image/jpeg")])
        assert refused.status_code == 400 and refused.json()["details"]["field"] == "consent_ref"
        assert sorted(storage.rglob("*")) == before  # nothing stored
        ok = upload(c, admin, w["project"], [("x.jpg", jpeg_with_gps((10, 20, 30)), "image/jpeg")],
                    consent_ref="FORM-2026-17")
        assert ok.status_code == 200, ok.text
        image = ok.json()["files"][0]["id"]
        gone = c.post("/rpc/withdraw_consent", json={"organization_id": None, "consent_ref": "FORM-2026-17"},
                      headers=admin)
        assert gone.status_code == 200 and gone.json()["image_ids"] == [image]
        assert c.get(f"/images/{image}", headers=admin).status_code == 404
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM core.storage_purge WHERE image_id = %s AND reason = "
                            "'consent_withdrawn'", (image,)).fetchone()[0] >= 2
