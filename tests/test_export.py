"""Export over HTTP and the command line on a known dataset: JSON Lines and CSV compared field by field, COCO read
back with pycocotools, filters, refusals that export and audit nothing."""
from __future__ import annotations

import csv
import io
import json
import uuid

import psycopg
import pytest
from pycocotools.coco import COCO

from conftest import run_cli
from sqlcall import act, call, make_team
from test_http_rpc import token


@pytest.fixture(scope="module")
def ds(database_url):
    tag = uuid.uuid4().hex[:8]
    with psycopg.connect(database_url) as conn:
        team = make_team(conn, "export", ann=["annotator"], rev=["reviewer"])
        project, admin, ann, rev = (team[k] for k in ("project", "admin", "ann", "rev"))
        call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code="NEO", name="Neoplasms")
        mel = call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code="MEL", name="Melanoma",
                   parent_code="NEO", icd10="C43", snomed_ct="372244006")["id"]
        nv = call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code="NV",
                  name="Melanocytic nevus", parent_code="NEO", icd10="D22")["id"]
        call(conn, admin, "admin", "set_descriptor_schema", project_id=project, fields=[
            {"key": "colours", "label": "Colours", "kind": "multi", "options": ["brown", "black"]},
            {"key": "border", "label": "Border", "kind": "single", "options": ["regular", "irregular"]}])
        call(conn, admin, "admin", "create_work_rule", project_id=project, name="all", max_items=100)
        with conn.transaction():
            act(conn, admin, "admin")
            conn.execute("SELECT api.register_image(%s, 'k/' || %s || '/' || i, encode(sha256((%s || i)::bytea), "
                         "'hex'), 1000, 800, 'image/png', 'clinic', 'b' || i) FROM generate_series(1, 3) i",
                         (project, tag, tag))
        contents = [
            {"class": mel, "descriptors": {"colours": ["brown", "black"], "border": "irregular"},
             "description": "Atypical network", "regions": [{"type": "bbox", "x": 10, "y": 20, "w": 100, "h": 50,
                                                               "label": "lesion"}]},
            {"class": nv, "descriptors": {"colours": ["brown"]}, "description": "Regular",
             "regions": [{"type": "polygon", "points": [[0, 0], [40, 0], [40, 30]]}, {"type": "point", "x": 5, "y": 5}]},
            {"class": nv, "descriptors": {}},
        ]
        for i, content in enumerate(contents):
            item = call(conn, ann, "annotator", "next_item", project_id=project)["item"]["id"]
            call(conn, ann, "annotator", "submit_annotation", item_id=item, content=content)
            if i < 2:  # the third stays in review: not exported
                review = call(conn, rev, "reviewer", "next_review", project_id=project)["item"]["id"]
                call(conn, rev, "reviewer", "approve", item_id=review)
    return {"project": project, "admin": admin, "ann": ann, "rev": rev, "mel": mel, "nv": nv, "db": database_url,
            "admin_email": team["emails"]["admin"]}


def exports_audited(ds) -> int:
    with psycopg.connect(ds["db"]) as conn:
        return conn.execute("SELECT count(*) FROM audit.event WHERE action = 'export' AND entity_id = %s",
                            (ds["project"],)).fetchone()[0]


def test_jsonl_records_field_by_field(app_server, ds):
    with app_server.client() as c:
        h = token(c, ds["db"], ds["admin"])
        r = c.get(f"/projects/{ds['project']}/export", params={"format": "jsonl"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in r.text.splitlines()]
    manifest, recs = lines[0]["manifest"], lines[1:]
    assert manifest["items"] == 2 and manifest["classes"] == {"MEL": 1, "NV": 1}
    assert manifest["taxonomy_version"].startswith("tx-") and manifest["format"] == "jsonl"
    assert json.loads(r.headers["x-dermlabel-manifest"])["items"] == 2
    first = recs[0]
    assert first["class"] == {"id": ds["mel"], "code": "MEL", "name": "Melanoma", "icd10": "C43",
                              "snomed_ct": "372244006", "path": ["NEO", "MEL"]}
    assert first["descriptors"] == {"colours": ["brown", "black"], "border": "irregular"}
    assert first["description"] == "Atypical network"
    assert first["regions"] == [{"type": "bbox", "x": 10, "y": 20, "w": 100, "h": 50, "label": "lesion"}]
    assert first["annotator_id"] == ds["ann"] and first["reviewer_ids"] == [ds["rev"]]
    assert first["revision_count"] == 1 and first["width"] == 1000 and len(first["sha256"]) == 64
    assert [x["class"]["code"] for x in recs] == ["MEL", "NV"]


def test_csv_is_flat_with_a_column_per_descriptor(app_server, ds):
    with app_server.client() as c:
        h = token(c, ds["db"], ds["admin"])
        r = c.get(f"/projects/{ds['project']}/export", params={"format": "csv", "classes": "MEL"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 1
    row = rows[0]
    assert (row["class_code"], row["icd10"], row["class_path"]) == ("MEL", "C43", "NEO/MEL")
    assert row["descriptor_colours"] == "brown|black" and row["descriptor_border"] == "irregular"
    assert row["regions"] == "1" and row["reviewer_ids"] == str(ds["rev"])


def test_coco_reads_back_with_pycocotools(app_server, ds, tmp_path):
    with app_server.client() as c:
        h = token(c, ds["db"], ds["admin"])
        r = c.get(f"/projects/{ds['project']}/export", params={"format": "coco"}, headers=h)
    assert r.status_code == 200
    path = tmp_path / "coco.json"
    path.write_bytes(r.content)
    coco = COCO(str(path))
    assert len(coco.getImgIds()) == 2
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"NEO", "MEL", "NV"}
    box = coco.loadAnns(coco.getAnnIds(catIds=[ds["mel"]]))
    assert len(box) == 1 and box[0]["bbox"] == [10, 20, 100, 50] and box[0]["area"] == 5000
    poly = coco.loadAnns(coco.getAnnIds(catIds=[ds["nv"]]))
    assert len(poly) == 1, "the point has no COCO form and is left out"
    assert poly[0]["bbox"] == [0, 0, 40, 30] and poly[0]["area"] == 600  # the triangle's area
    assert coco.annToMask(poly[0]).sum() > 0
    assert coco.dataset["info"]["items"] == 2


def test_refusals_export_and_audit_nothing(app_server, ds):
    before = exports_audited(ds)
    with app_server.client() as c:
        admin = token(c, ds["db"], ds["admin"])
        ann = token(c, ds["db"], ds["ann"])
        assert c.get(f"/projects/{ds['project']}/export", headers=ann).status_code == 403
        r = c.get(f"/projects/{ds['project']}/export", params={"format": "xml"}, headers=admin)
        assert r.status_code == 400 and r.json()["code"] == "22023"
        r = c.get(f"/projects/{ds['project']}/export", params={"classes": "XX"}, headers=admin)
        assert r.status_code == 400 and "XX" in r.json()["message"]
        # a misspelt filter (class= for classes=) is refused, not ignored into a full export
        r = c.get(f"/projects/{ds['project']}/export", params={"format": "isic", "class": "MEL"}, headers=admin)
        assert r.status_code == 400 and r.json()["details"]["field"] == "class"
        r = c.get(f"/projects/{ds['project']}/images/1/seg", params={"fmt": "x"}, headers=admin)
        assert r.status_code == 400 and r.json()["details"]["field"] == "fmt"
        assert c.get("/projects/99999999/export", headers=admin).status_code == 404
    assert exports_audited(ds) == before
    with app_server.client() as c:
        c.get(f"/projects/{ds['project']}/export", headers=token(c, ds["db"], ds["admin"]))
    assert exports_audited(ds) == before + 1


def test_command_line_export_writes_the_file_and_its_manifest(ds, tmp_path, database_url):
    out = tmp_path / "ds.jsonl"
    r = run_cli("export", "--project", str(ds["project"]), "--format", "jsonl", "--as", ds["admin_email"],
                "--out", str(out), "--classes", "NV", env={"DATABASE_URL": database_url})
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["class"]["code"] == "NV"
    manifest = json.loads((tmp_path / "ds.jsonl.manifest.json").read_text())
    assert manifest["items"] == 1 and manifest["exported_by"] == ds["admin_email"]
