"""DICOM over HTTP: uploads are de-identified and rendered, frames served for the viewer, and series imported from
a real Orthanc over DICOMweb (QIDO-RS search, WADO-RS retrieve)."""
from __future__ import annotations

import io
import random
import uuid

import numpy as np
import psycopg
import pydicom
import pytest
from PIL import Image

from dicom_files import PATIENT, Orthanc, bundled, vl_photograph
from sqlcall import join, make_project, make_user
from test_http_images import count_images, upload
from test_http_rpc import token


@pytest.fixture(scope="module")
def world(database_url):
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)
        w["stranger"] = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)["admin"]
        w["analyst"] = make_user(conn, f"an-{uuid.uuid4().hex[:6]}@t.org", ["analyst"])
        join(conn, w["admin"], w["project"], w["analyst"])  # analyst of the project's organization
    return w


@pytest.fixture(scope="module")
def pacs_world(database_url):
    """A project of its own for the imports, so what the upload tests stored does not count as a duplicate."""
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)
        w["stranger"] = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)["admin"]
    return w


@pytest.fixture(scope="module")
def orthanc():
    pacs = Orthanc()
    yield pacs
    pacs.stop()


def image_row(database_url, image_id):
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT media_type, width, height, metadata FROM core.image WHERE id = %s",
                            (image_id,)).fetchone()


def test_a_vl_photograph_is_deidentified_rendered_and_kept(app_server, world, database_url):
    raw = vl_photograph()
    with app_server.client() as c:
        admin = token(c, database_url, world["admin"])
        r = upload(c, admin, world["project"], [("Doe_Jane_left_arm.dcm", raw, "application/dicom")])
        assert r.status_code == 200, r.text
        f = r.json()["files"][0]
        assert f["media_type"] == "image/png" and (f["width"], f["height"]) == (320, 240)
        assert f["dicom"]["frames"] == 1 and f["dicom"]["patient_pseudonym"].startswith("DL-")
        assert "DICOM:PatientName (emptied)" in f["removed_metadata"]
        media_type, width, height, meta = image_row(database_url, f["id"])
        assert meta["dicom"]["photographic"] is True and meta["dicom"]["header"]["BodyPartExamined"] == "SKIN"
        assert "original_filename" not in meta  # a DICOM file's name is often the patient's
        stored_meta = str(meta)
        for value in PATIENT.values():
            assert value not in stored_meta
        assert meta["dicom"]["header"]["StudyDate"] != "20240506"  # shifted by the project's offset
        ann = token(c, database_url, world["annotators"][0])
        png = c.get(f"/images/{f['id']}", headers=ann)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        pixel = Image.open(io.BytesIO(png.content)).convert("RGB").getpixel((10, 10))
        assert all(abs(a - b) <= 6 for a, b in zip(pixel, (190, 120, 100)))  # the colours came through
        dcm = c.get(f"/images/{f['id']}/dicom", headers=ann)
        assert dcm.status_code == 200 and dcm.headers["content-type"] == "application/dicom"
        for value in PATIENT.values():
            assert value.encode() not in dcm.content
        ds = pydicom.dcmread(io.BytesIO(dcm.content))
        assert ds.PatientIdentityRemoved == "YES" and not ds.PatientName and ds.PatientID == meta["dicom"]["patient_pseudonym"]
        assert ds.ImageLaterality == "L" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.77.1.4"


def test_frames_of_a_multiframe_file_and_ct_values_for_the_viewer(app_server, world, database_url):
    with app_server.client() as c:
        admin = token(c, database_url, world["admin"])
        r = upload(c, admin, world["project"], [("a.dcm", bundled("examples_ybr_color.dcm"), "application/dicom"),
                                                ("b.dcm", bundled("CT_small.dcm"), "application/dicom")])
        assert r.status_code == 200, r.text
        cine, ct = r.json()["files"]
        assert cine["dicom"]["frames"] == 30
        ann = token(c, database_url, world["annotators"][0])
        last = c.get(f"/images/{cine['id']}/frames/29", headers=ann)
        assert last.status_code == 200 and last.headers["x-frames"] == "30" and last.headers["x-samples"] == "3"
        assert len(last.content) == 240 * 320 * 3
        assert c.get(f"/images/{cine['id']}/frames/30", headers=ann).status_code == 404
        frame = c.get(f"/images/{ct['id']}/frames/0", headers=ann)
        assert frame.headers["x-dtype"] == "int16" and frame.headers["x-samples"] == "1"
        values = np.frombuffer(frame.content, "<i2").reshape(128, 128)
        source = pydicom.dcmread(io.BytesIO(bundled("CT_small.dcm")))
        expected = source.pixel_array * float(source.RescaleSlope) + float(source.RescaleIntercept)
        assert np.array_equal(values, expected.astype(np.int16))  # Hounsfield units, exactly
        _, _, _, meta = image_row(database_url, ct["id"])
        # the file names no window: the default spans its values
        assert "WindowCenter" not in source
        lo, hi = float(expected.min()), float(expected.max())
        assert (meta["dicom"]["window_center"], meta["dicom"]["window_width"]) == ((lo + hi) / 2, hi - lo + 1)
        again = c.get(f"/images/{ct['id']}/frames/0", headers={**ann, "if-none-match": frame.headers["etag"]})
        assert again.status_code == 304
        # outside the project, the file and frames answer like an image that does not exist
        stranger = token(c, database_url, world["stranger"])
        for path in (f"/images/{ct['id']}/dicom", f"/images/{ct['id']}/frames/0"):
            theirs, missing = c.get(path, headers=stranger), c.get(path.replace(str(ct["id"]), "987654321"),
                                                                    headers=stranger)
            assert theirs.status_code == missing.status_code == 404
            assert theirs.json()["message"].replace(str(ct["id"]), "N") == missing.json()["message"].replace(
                "987654321", "N")
        # a photograph has no DICOM file or frames
        photo = upload(c, admin, world["project"], [("p.png", _png(), "image/png")]).json()["files"][0]
        assert c.get(f"/images/{photo['id']}/frames/0", headers=ann).status_code == 404


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (uuid.uuid4().int % 255, 3, 4)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name,status", [("reportsi.dcm", 415), ("JPEG-lossy.dcm", 415)])
def test_dicom_without_a_viewable_image_is_refused_and_changes_nothing(app_server, world, database_url, name, status):
    before = count_images(database_url, world["project"])
    with app_server.client() as c:
        r = upload(c, token(c, database_url, world["admin"]), world["project"], [("x.dcm", bundled(name), "application/dicom")])
    assert r.status_code == status and set(r.json()) == {"code", "message", "details", "hint"}
    assert count_images(database_url, world["project"]) == before


def test_damaged_dicom_files_are_refused_never_a_server_error(app_server, world, database_url):
    """Truncated files and files with bytes flipped at random (seeded): pydicom parses lazily, so damage surfaces
    anywhere from reading to de-identifying to decoding. Each answer is a success or a 4xx in the error shape; a
    refusal stores nothing."""
    source = bundled("CT_small.dcm")
    rng = random.Random(7)
    damaged = [source[:n] for n in (140, 400, 2_000, 20_000)] + [bundled("MR_truncated.dcm")]
    for _ in range(40):
        b = bytearray(source)
        for _ in range(20):
            b[rng.randrange(132, len(b))] = rng.randrange(256)
        damaged.append(bytes(b))
    before = count_images(database_url, world["project"])
    stored = 0
    with app_server.client() as c:
        admin = token(c, database_url, world["admin"])
        for i, raw in enumerate(damaged):
            r = upload(c, admin, world["project"], [(f"d{i}.dcm", raw, "application/dicom")])
            assert r.status_code in (200, 413, 415), (i, r.status_code, r.text[:300])
            if r.status_code == 200:
                stored += not r.json()["files"][0]["duplicate"]
            else:
                assert set(r.json()) == {"code", "message", "details", "hint"}
    assert count_images(database_url, world["project"]) == before + stored
    assert stored < len(damaged)  # most of them really are unreadable


def test_uids_stay_consistent_across_uploads_of_one_study(app_server, world, database_url):
    study = pydicom.uid.generate_uid()
    with app_server.client() as c:
        admin = token(c, database_url, world["admin"])
        files = [(f"{i}.dcm", vl_photograph((i * 40, 90, 90), study_uid=study), "application/dicom") for i in (1, 2)]
        ids = [f["id"] for f in upload(c, admin, world["project"], files).json()["files"]]
    studies = {image_row(database_url, i)[3]["dicom"]["header"]["StudyInstanceUID"] for i in ids}
    assert len(studies) == 1 and study not in studies and next(iter(studies)).startswith("2.25.")


def test_dicomweb_search_and_import_from_orthanc(app_server, pacs_world, database_url, orthanc):
    world = pacs_world
    for name in ("CT_small.dcm", "MR_small.dcm"):
        orthanc.store(bundled(name))
    photo_study = pydicom.uid.generate_uid()
    for colour in ((200, 100, 90), (180, 110, 95)):
        orthanc.store(vl_photograph(colour, study_uid=photo_study))
    pid = world["project"]
    with app_server.client() as c:
        admin = token(c, database_url, world["admin"])
        r = c.post("/rpc/set_dicomweb_source", headers=admin, json={"project_id": pid, "base_url": orthanc.dicomweb})
        assert r.status_code == 200, r.text
        found = c.get(f"/projects/{pid}/dicomweb/series", headers=admin, params={"modality": "XC"})
        assert found.status_code == 200, found.text
        series = found.json()["series"]
        assert len(series) == 2 and {s["body_part"] for s in series} == {"SKIN"}
        assert all("Doe" not in str(s) for s in series)  # the search shows no patient data
        ct = c.get(f"/projects/{pid}/dicomweb/series", headers=admin, params={"modality": "CT"}).json()["series"]
        assert len(ct) == 1 and ct[0]["instances"] == 1
        by_date = c.get(f"/projects/{pid}/dicomweb/series", headers=admin, params={"date": "20240101-20241231"})
        assert {s["study_uid"] for s in by_date.json()["series"]} == {photo_study}
        before = count_images(database_url, pid)
        chosen = [{"study_uid": s["study_uid"], "series_uid": s["series_uid"]} for s in series + ct]
        r = c.post(f"/projects/{pid}/dicomweb/import", headers=admin, json={"series": chosen, "batch": "pacs-1"})
        assert r.status_code == 200, r.text
        files = r.json()["files"]
        assert len(files) == 3 and all(f["status"] == 200 and not f["duplicate"] for f in files)
        assert count_images(database_url, pid) == before + 3
        for f in files:
            meta = image_row(database_url, f["id"])[3]
            assert meta["dicom"]["header"]["PatientIdentityRemoved"] == "YES"
            assert "Doe" not in str(meta) and "CompressedSamples" not in str(meta)
        # imported again: recognised, not duplicated
        again = c.post(f"/projects/{pid}/dicomweb/import", headers=admin, json={"series": chosen}).json()["files"]
        assert all(f["duplicate"] for f in again) and count_images(database_url, pid) == before + 3


def test_dicomweb_refusals_change_nothing(app_server, pacs_world, database_url, orthanc):
    world = pacs_world
    pid = world["project"]
    with app_server.client() as c:
        admin = token(c, database_url, world["admin"])
        c.post("/rpc/set_dicomweb_source", headers=admin, json={"project_id": pid, "base_url": orthanc.dicomweb})
        before = count_images(database_url, pid)
        assert c.get(f"/projects/{pid}/dicomweb/series", headers=admin, params={"modality": "x'--"}).status_code == 400
        assert c.get(f"/projects/{pid}/dicomweb/series", headers=admin, params={"PatientName": "*"}).status_code == 400
        bad = c.post(f"/projects/{pid}/dicomweb/import", headers=admin,
                     json={"series": [{"study_uid": "1.2", "series_uid": "../../etc"}]})
        assert bad.status_code == 400 and set(bad.json()) == {"code", "message", "details", "hint"}
        assert c.post(f"/projects/{pid}/dicomweb/import", headers=admin, content=b"{").status_code == 400
        unknown = c.post(f"/projects/{pid}/dicomweb/import", headers=admin,
                         json={"series": [{"study_uid": "1.2.3", "series_uid": "1.2.3.4"}]})
        assert unknown.status_code == 502 and "answered 404" in unknown.json()["message"]
        ann = token(c, database_url, world["annotators"][0])
        assert c.get(f"/projects/{pid}/dicomweb/series", headers=ann).status_code == 403
        stranger = token(c, database_url, world["stranger"])
        assert c.get(f"/projects/{pid}/dicomweb/series", headers=stranger).status_code == 404
        # a PACS that is down: 502 in the error shape
        c.post("/rpc/set_dicomweb_source", headers=admin, json={"project_id": pid, "base_url": "http://127.0.0.1:9"})
        down = c.get(f"/projects/{pid}/dicomweb/series", headers=admin)
        assert down.status_code == 502 and "could not be reached" in down.json()["message"]
        assert count_images(database_url, pid) == before
