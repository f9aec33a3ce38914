"""Privacy in every stored byte: a corpus of JPEG, PNG, TIFF, WebP and DICOM files with a fake patient planted in
every metadata place and in each file's name (tests/privacy_files.py), uploaded over HTTP to a real app on its own
database and storage folder, with the AI worker and the reference service making the standardised crops. Then
every byte the platform holds is searched for every planted string: each file under the storage folder, every
route that serves an image, every export (JSON Lines, COCO, the ISIC and DICOM SEG archives member by member, the
one-image SEG) of masks saved on every image, every row of every table, the logs. None may survive; each stored
file may carry no metadata but the sRGB profile; the upload report is what the input truly had; a refused upload
leaves no file."""
from __future__ import annotations

import hashlib
import io
import time
import uuid
import zipfile
from pathlib import Path

import psycopg
import pytest
import numpy as np
from PIL import Image, ImageCms
from pycocotools import mask as mask_util

from ai_services import start_reference, start_worker, stop
from app.images import metadata_scan
from conftest import JWT_SECRET, run_cli, start_app, stop_app, url_for
from privacy_files import Sample, corpus, forms, jpeg_comment, mark, picture, tiff_overlapping, tiff_two_pages
from sqlcall import call, join, make_project, make_user
from test_http_rpc import token

KEPT = {"ICC", "ICC:desc", "ICC:cprt", "ICC:name"}  # the sRGB profile we embed, and PNG's name for it


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A database and a storage folder of their own (so that every byte in them is this corpus's), the app, the
    reference AI service and the worker."""
    name = f"privacy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url_for("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = url_for(name)
    out = run_cli("migrate", env={"DATABASE_URL": url})
    assert out.returncode == 0, out.stderr
    data_dir = tmp_path_factory.mktemp("privacy-data")
    with psycopg.connect(url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)
        w["stranger"] = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=0, reviewers=0)["admin"]
    app = start_app(url, {"DL_JWT_SECRET": JWT_SECRET, "DL_RATE_LOGIN": "off", "DL_RATE_RPC": "off",
                          "DL_METRICS_REFRESH_SECONDS": "0", "DL_DATA_DIR": str(data_dir)})
    ref_url, ref = start_reference()
    worker = start_worker(url, str(data_dir), {"DL_AI_REFERENCE_URL": ref_url})
    try:
        yield {**w, "url": url, "data_dir": data_dir, "app": app, "worker": worker}
    finally:
        stop(worker)
        stop(ref)
        stop_app(app)
        with psycopg.connect(url_for("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


MEDIA = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "tif": "image/tiff", "tiff": "image/tiff",
         "webp": "image/webp", "dcm": "application/dicom"}


def settled(url: str, ids: list[int]) -> bool:
    with psycopg.connect(url) as conn:
        open_jobs = conn.execute("SELECT count(*) FROM core.ai_job WHERE image_id = ANY(%s) "
                                 "AND status IN ('queued', 'running')", (ids,)).fetchone()[0]
        crops = conn.execute("SELECT count(DISTINCT image_id) FROM core.ai_job WHERE image_id = ANY(%s) "
                             "AND stage = 'crop' AND status = 'done'", (ids,)).fetchone()[0]
    return open_jobs == 0 and crops == len(ids)


@pytest.fixture(scope="module")
def uploaded(world):
    """The whole corpus in one upload, as the admin page sends it; then the AI pipeline run on every image."""
    samples = corpus()
    with world["app"].client() as c:
        admin = token(c, world["url"], world["admin"])
        r = c.post(f"/projects/{world['project']}/images", headers=admin, data={"source_class": "clinic"},
                   files=[("files", (s.name, s.raw, MEDIA[s.name.rsplit(".", 1)[1]])) for s in samples], timeout=60)
    assert r.status_code == 200, r.text
    results = r.json()["files"]
    assert [f["status"] for f in results] == [200] * len(samples), results
    assert [f["filename"] for f in results] == [s.name for s in samples]  # echoed to the uploader, per file
    ids = [f["id"] for f in results]
    deadline = time.monotonic() + 120
    while not settled(world["url"], ids):
        assert time.monotonic() < deadline, "the AI pipeline did not finish"
        time.sleep(0.5)
    return list(zip(samples, results)), r.text


def served(world, image_id: int) -> dict[str, bytes]:
    """Every variant of the image the app serves to a member of the project."""
    out = {}
    with world["app"].client() as c:
        ann = token(c, world["url"], world["annotators"][0])
        for variant in ("", "/thumb", "/standardised", "/dicom", "/frames/0"):
            r = c.get(f"/images/{image_id}{variant}", headers=ann)
            if variant in ("", "/thumb", "/standardised"):
                assert r.status_code == 200, (variant, r.text)
            if r.status_code == 200:
                out[variant or "/"] = r.content
    return out


def stored_files(world) -> dict[str, bytes]:
    """Every file under the app's data folder, by its path there (the image store is its images/ folder)."""
    root = Path(world["data_dir"])
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def database_text(url: str) -> str:
    """Every row of every table of the app's schemas, as text."""
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) "
                              "FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                              "AND table_schema NOT IN ('pg_catalog', 'information_schema')").fetchall()
        return "\n".join(row[0] or "" for (t,) in tables
                         for row in conn.execute(f"SELECT string_agg(x::text, E'\\n') FROM {t} x").fetchall())


def survivors(marks: list[str], haystacks: dict[str, bytes]) -> list[tuple[str, str]]:
    return [(where, m) for where, data in haystacks.items() for m in marks if any(f in data for f in forms(m))]


def sees(sample: Sample, text: str) -> bool:
    """The planted string is in the input, as bytes or in a block's (decompressed) payload."""
    if sample.name.endswith(".dcm"):
        return any(f in sample.raw for f in forms(text))
    blocks = b"\n".join(b.payload for b in metadata_scan.scan(sample.raw))
    return any(f in sample.raw or f in blocks for f in forms(text))


def test_the_report_lists_what_each_input_truly_had(world, uploaded):
    files, _ = uploaded
    for sample, f in files:
        assert all(sees(sample, m) for m in sample.marks), f"{sample.name}: the corpus plants what it says"
        report = f["removed_metadata"]
        assert sample.expected <= set(report), (sample.name, sample.expected - set(report))
        if sample.name.endswith(".dcm"):
            continue
        original = served(world, f["id"])["/"]
        # exactly: every block of the input that the stored file does not carry, by label, never a value
        assert report == metadata_scan.removed(metadata_scan.scan(sample.raw), metadata_scan.scan(original))
        assert set(report) == set(metadata_scan.labels(metadata_scan.scan(sample.raw))), sample.name


def test_stored_images_carry_no_metadata_but_the_srgb_profile(world, uploaded):
    files, _ = uploaded
    profiles = set()
    for sample, f in files:
        got = served(world, f["id"])
        original = got["/"]
        blocks = metadata_scan.scan(original)
        assert {b.label for b in blocks} <= KEPT, (sample.name, metadata_scan.labels(blocks))
        assert any(b.label == "ICC" for b in blocks) == sample.icc, sample.name
        if sample.icc:
            profile = next(b.payload for b in blocks if b.label == "ICC")
            profiles.add(profile)
            cms = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            assert ImageCms.getProfileDescription(cms).strip() == "sRGB built-in"
            assert ImageCms.getProfileCopyright(cms).strip() == "No copyright, use freely"
        for variant in ("/thumb", "/standardised"):
            assert metadata_scan.scan(got[variant]) == [], (sample.name, variant)
        img = Image.open(io.BytesIO(original))
        assert img.size == sample.size, sample.name
        assert not img.info.keys() - {"icc_profile", "dpi", "jfif", "jfif_version", "jfif_unit",
                                      "jfif_density", "compression", "resolution", "lossless", "loop", "background",
                                      "duration", "timestamp"}, (sample.name, img.info.keys())
        rgb = img.convert("RGB")
        w, h = rgb.size
        if sample.colour:
            centre = rgb.getpixel((w // 2, h // 2))
            assert all(abs(a - b) <= 8 for a, b in zip(centre, sample.colour)), (sample.name, centre)
        if sample.dark_corner:  # the orientation was applied to the pixels before its tag went
            x = 6 if sample.dark_corner in ("tl", "bl") else w - 7
            y = 6 if sample.dark_corner in ("tl", "tr") else h - 7
            assert sum(rgb.getpixel((x, y))) < 250, (sample.name, sample.dark_corner, rgb.getpixel((x, y)))
    assert len(profiles) == 1  # one profile, the same bytes in every file


def test_an_upright_jpeg_keeps_its_own_quantisation_tables(world, uploaded):
    files, _ = uploaded
    sample, f = next((s, f) for s, f in files if s.name.endswith(".jpeg"))
    stored = Image.open(io.BytesIO(served(world, f["id"])["/"]))
    assert stored.quantization == Image.open(io.BytesIO(sample.raw)).quantization


def test_no_planted_string_survives_anywhere(world, uploaded):
    files, response = uploaded
    marks = [m for s, _ in files for m in s.all_marks]
    haystacks = {f"storage:{k}": v for k, v in stored_files(world).items()}
    for folder in ("images", "thumbs", "derived", "dicom"):  # originals, thumbnails, AI crops, DICOM files
        assert any(k.startswith(f"storage:images/{folder}/") for k in haystacks), folder
    for sample, f in files:
        for variant, data in served(world, f["id"]).items():
            haystacks[f"GET /images/{f['id']}{variant} ({sample.name[-12:]})"] = data
    haystacks["database"] = database_text(world["url"]).encode()
    haystacks["app log"] = world["app"].read_log().encode()
    log = world["worker"].logfile
    log.seek(0)
    haystacks["worker log"] = log.read()
    # the answer to the uploader echoes each file's name (the admin page shows per-file results), nothing else
    body = response
    for sample, _ in files:
        body = body.replace(sample.name, "")
    haystacks["upload answer"] = body.encode()
    assert survivors(marks, haystacks) == []
    with psycopg.connect(world["url"]) as conn:
        keys = conn.execute("SELECT DISTINCT jsonb_object_keys(metadata) FROM core.image").fetchall()
    assert "original_filename" not in {k for (k,) in keys}


@pytest.fixture(scope="module")
def exported(world, uploaded) -> dict[str, bytes]:
    """A lesion mask on every image, approved; then every export format's bytes (archives: each member's)."""
    files, _ = uploaded
    with psycopg.connect(world["url"]) as conn:
        reviewer = make_user(conn, f"rev-{uuid.uuid4().hex[:6]}@t.org", ["reviewer"])
        join(conn, world["admin"], world["project"], reviewer)
        ann = world["annotators"][0]
        for _ in files:
            item = call(conn, ann, "annotator", "next_item", project_id=world["project"])["item"]
            w, h = item["image"]["width"], item["image"]["height"]
            m = np.zeros((h, w), np.uint8, order="F")
            m[h // 4:h // 2, w // 4:w // 2] = 1
            enc = mask_util.encode(m)
            regions = [{"type": "mask", "label": "lesion", "rle": {"size": [h, w], "counts": enc["counts"].decode()}}]
            call(conn, ann, "annotator", "submit_annotation", item_id=item["id"],
                 content={"class": world["class"], "descriptors": {}, "regions": regions})
            review = call(conn, reviewer, "reviewer", "next_review", project_id=world["project"])["item"]["id"]
            call(conn, reviewer, "reviewer", "approve", item_id=review)
    out: dict[str, bytes] = {}
    dicom_ids = [f["id"] for s, f in files if s.name.endswith(".dcm")]
    with world["app"].client() as c:
        admin = token(c, world["url"], world["admin"])
        for fmt in ("jsonl", "csv", "coco", "isic", "dicom_seg"):
            r = c.get(f"/projects/{world['project']}/export", params={"format": fmt}, headers=admin, timeout=60)
            assert r.status_code == 200, (fmt, r.text)
            out[f"export {fmt}"] = r.content + r.headers["x-dermlabel-manifest"].encode()
            if fmt in ("isic", "dicom_seg"):
                with zipfile.ZipFile(io.BytesIO(r.content)) as z:
                    out.update({f"export {fmt}: {n}": z.read(n) for n in z.namelist()})
        for image_id in dicom_ids:
            r = c.get(f"/projects/{world['project']}/images/{image_id}/seg", headers=admin)
            assert r.status_code == 200, r.text
            out[f"GET /projects/…/images/{image_id}/seg"] = r.content
    assert sum(k.endswith("_seg.dcm") for k in out) == len(dicom_ids) > 0  # the SEGs really were made
    assert sum(k.endswith("_segmentation.png") for k in out) == len(files)
    # the scan reads the archives' members uncompressed: the SEG carries the (pseudonymised) patient ID
    assert all(b"DL-" in v for k, v in out.items() if k.endswith("_seg.dcm"))
    return out


def test_exports_carry_no_planted_string(world, uploaded, exported):
    files, _ = uploaded
    marks = [m for s, _ in files for m in s.all_marks]  # file names included: exports never name an upload
    assert survivors(marks, exported) == []


def listing(world) -> dict[str, str]:
    """Every stored file of uploads (the worker's derived crops aside), with a digest of its bytes."""
    return {k: hashlib.sha256(v).hexdigest() for k, v in stored_files(world).items()
            if not k.startswith("images/derived/")}


def test_a_refused_upload_leaves_no_file(world, uploaded):
    files, _ = uploaded
    before = listing(world)
    fresh = io.BytesIO()
    picture((40, 30), (10, 200, 30)).save(fresh, "PNG")
    again = jpeg_comment()  # the same bytes as an image already in the project
    existing = next(f for s, f in files if s.raw == again.raw)
    with world["app"].client() as c:
        stranger = token(c, world["url"], world["stranger"])
        for raw in (fresh.getvalue(), again.raw):
            # an admin, but not of this project: SQL refuses after the bytes were cleaned and stored
            r = c.post(f"/projects/{world['project']}/images", headers=stranger,
                       files=[("files", (f"{mark('refused')}.png", raw, "image/png"))])
            assert r.status_code == 404, r.text
        # what was stored before stays: a refused upload deletes only the files it created
        ann = token(c, world["url"], world["annotators"][0])
        assert c.get(f"/images/{existing['id']}", headers=ann).status_code == 200
    assert listing(world) == before


def test_a_tiff_of_several_pages_is_refused_and_stores_nothing(world, uploaded):
    before = listing(world)
    with world["app"].client() as c:
        admin = token(c, world["url"], world["admin"])
        r = c.post(f"/projects/{world['project']}/images", headers=admin,
                   files=[("files", ("pages.tif", tiff_two_pages(), "image/tiff"))])
    assert r.status_code == 415 and "pages" in r.json()["message"], r.text
    assert listing(world) == before


def test_a_crafted_tiff_is_refused_before_any_decoder_reads_it(world, uploaded):
    """Tags that all point at one region: walked within a budget by our scanner and refused, never handed to a
    decoder that would read every copy (the app would run out of memory)."""
    before = listing(world)
    with world["app"].client() as c:
        admin = token(c, world["url"], world["admin"])
        started = time.monotonic()
        r = c.post(f"/projects/{world['project']}/images", headers=admin, timeout=60,
                   files=[("files", ("crafted.tif", tiff_overlapping(), "image/tiff"))])
        assert r.status_code == 415 and "crafted" in r.json()["message"], r.text
        assert time.monotonic() - started < 10
        assert c.get("/healthz").status_code == 200
    assert listing(world) == before
