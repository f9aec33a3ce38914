"""Mask exports on masks of known geometry saved through the API (annotate, submit, approve): COCO read back with
pycocotools bit for bit, the ISIC ZIP's PNGs, DICOM Segmentations read back with pydicom and highdicom against
the de-identified files the app serves, JSON Lines unchanged, and refusals that export and audit nothing."""
from __future__ import annotations

import csv
import io
import json
import zipfile

import highdicom as hd
import numpy as np
import psycopg
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pycocotools import mask as mask_util
from pycocotools.coco import COCO

from app.dicom import seg as dicom_seg
from conftest import run_cli
from dicom_files import PATIENT, bundled, vl_photograph
from sqlcall import call, make_team
from test_http_images import upload
from test_http_partners import make_key
from test_http_rpc import token


def rle(m: np.ndarray) -> dict:
    enc = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(v) for v in enc["size"]], "counts": enc["counts"].decode()}


def blank(w: int, h: int) -> np.ndarray:
    return np.zeros((h, w), np.uint8)


def rect(w: int, h: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Pixels x0..x1-1, y0..y1-1 set."""
    m = blank(w, h)
    m[y0:y1, x0:x1] = 1
    return m


def disc(w: int, h: int, cx: float, cy: float, r: float) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return ((xs - cx) ** 2 + (ys - cy) ** 2 <= r * r).astype(np.uint8)


def png(w: int, h: int, colour: tuple) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(out, "PNG")
    return out.getvalue()


def with_spacing(raw: bytes, spacing: list[float]) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(raw))
    ds.PixelSpacing = spacing
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def plan() -> dict[str, dict]:
    """Per uploaded file: its bytes and the masks (label → array) the annotator saves on it, plus other regions.
    `lesion` / `segments` are what the exports must give: unions per label."""
    photo = rect(64, 48, 10, 5, 30, 20)
    photo[0, 0] = 1  # the first pixel set: counts start with a run of 0
    triangle = [[40, 30], [60, 30], [60, 45]]
    vl_a, vl_b = rect(320, 240, 20, 30, 120, 90), rect(320, 240, 100, 60, 200, 150)  # overlapping
    network = blank(320, 240)
    network[::7, ::5] = 1
    cine = disc(320, 240, 160.5, 120.5, 50)
    ct = rect(128, 128, 30, 40, 90, 70)
    streaks = rect(40, 30, 5, 5, 9, 25)
    return {
        "photo": {"file": ("photo.png", png(64, 48, (150, 90, 80)), "image/png"), "size": (64, 48),
                  "masks": [("lesion", photo)], "polygon": triangle,
                  "extra": [{"type": "line", "points": [[1.5, 2], [30, 40.25]], "label": "vessels"},
                            {"type": "point", "x": 3, "y": 4, "label": "dots/globules"},
                            {"type": "bbox", "x": 1, "y": 1, "w": 10, "h": 10}]},
        "vl": {"file": ("vl.dcm", with_spacing(vl_photograph((180, 110, 95)), [0.05, 0.04]), "application/dicom"),
               "size": (320, 240), "masks": [("lesion", vl_a), ("pigment network", network), ("lesion", vl_b)]},
        "cine": {"file": ("cine.dcm", bundled("examples_ybr_color.dcm"), "application/dicom"), "size": (320, 240),
                 "masks": [("lesion", cine)]},
        "ct": {"file": ("ct.dcm", bundled("CT_small.dcm"), "application/dicom"), "size": (128, 128),
               "masks": [("lesion", ct)]},
        "bare": {"file": ("bare.png", png(40, 30, (90, 60, 50)), "image/png"), "size": (40, 30),
                 "masks": [("streaks", streaks)]},
    }


def regions_of(p: dict) -> list[dict]:
    regs = [{"type": "mask", "label": label, "rle": rle(m)} for label, m in p["masks"]]
    if "polygon" in p:
        regs.append({"type": "polygon", "points": p["polygon"], "label": "lesion", "drawn": "freehand"})
    return regs + p.get("extra", [])


def expected_segments(p: dict) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for label, m in p["masks"]:
        out[label] = out[label] | m if label in out else m.copy()
    if "polygon" in p:
        w, h = p["size"]
        flat = [float(v) for pt in p["polygon"] for v in pt]
        out["lesion"] = out["lesion"] | mask_util.decode(mask_util.merge(mask_util.frPyObjects([flat], h, w)))
    return out


@pytest.fixture(scope="module")
def ds(app_server, database_url):
    files = plan()
    with psycopg.connect(database_url) as conn:
        team = make_team(conn, "masks", ann=["annotator"], rev=["reviewer"])
        project, admin, ann, rev = (team[k] for k in ("project", "admin", "ann", "rev"))
        mel = call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code="MEL", name="Melanoma")["id"]
        call(conn, admin, "admin", "create_work_rule", project_id=project, name="all", max_items=100)
    with app_server.client() as c:
        h = token(c, database_url, admin)
        r = upload(c, h, project, [p["file"] for p in files.values()])
        assert r.status_code == 200, r.text
        uploaded = r.json()["files"]
        assert [f["status"] for f in uploaded] == [200] * len(files), uploaded
    ids = {name: f["id"] for name, f in zip(files, uploaded)}
    by_image = {ids[name]: name for name in files}
    with psycopg.connect(database_url) as conn:
        for _ in files:
            item = call(conn, ann, "annotator", "next_item", project_id=project)["item"]
            name = by_image[item["image"]["id"]]
            call(conn, ann, "annotator", "submit_annotation", item_id=item["id"],
                 content={"class": mel, "descriptors": {}, "regions": regions_of(files[name])})
            review = call(conn, rev, "reviewer", "next_review", project_id=project)["item"]["id"]
            call(conn, rev, "reviewer", "approve", item_id=review)
    return {"project": project, "admin": admin, "ann": ann, "db": database_url, "files": files, "ids": ids,
            "admin_email": team["emails"]["admin"]}


def get(app_server, ds, path: str, **params):
    with app_server.client() as c:
        return c.get(path, params=params, headers=token(c, ds["db"], ds["admin"]), timeout=60)


def export(app_server, ds, fmt: str, **params):
    return get(app_server, ds, f"/projects/{ds['project']}/export", format=fmt, **params)


def exports_audited(ds) -> int:
    with psycopg.connect(ds["db"]) as conn:
        return conn.execute("SELECT count(*) FROM audit.event WHERE action = 'export' AND entity_id = %s",
                            (ds["project"],)).fetchone()[0]


def bbox_of(m: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(m)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def test_coco_masks_read_back_bit_for_bit(app_server, ds, tmp_path):
    r = export(app_server, ds, "coco")
    assert r.status_code == 200, r.text
    path = tmp_path / "coco.json"
    path.write_bytes(r.content)
    coco = COCO(str(path))
    checked = 0
    for name, p in ds["files"].items():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[ds["ids"][name]]))
        masks = [a for a in anns if isinstance(a["segmentation"], dict)]
        assert len(masks) == len(p["masks"]), name
        for ann, (label, m) in zip(masks, p["masks"]):
            got = coco.annToMask(ann)
            assert got.shape == m.shape and got.dtype == np.uint8
            assert np.array_equal(got, m), (name, label)  # bit for bit
            assert ann["segmentation"] == rle(m)  # the RLE as stored
            assert ann["area"] == int(m.sum()) and ann["bbox"] == bbox_of(m) and ann["iscrowd"] == 0
            assert ann["dermlabel"]["label"] == label
            checked += 1
    assert checked == 7
    photo = coco.loadImgs([ds["ids"]["photo"]])[0]
    polygon = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=[photo["id"]])) if isinstance(a["segmentation"], list)]
    assert len(polygon) == 2  # the lesion outline and the box; the line and the point are not annotations
    # lines and points ride along on the image, as stored
    assert photo["dermlabel_marks"] == [{"item_id": photo["dermlabel_items"][0], **reg}
                                        for reg in ds["files"]["photo"]["extra"][:2]]


def test_jsonl_carries_masks_and_lines_unchanged(app_server, ds):
    r = export(app_server, ds, "jsonl")
    assert r.status_code == 200
    recs = [json.loads(x) for x in r.text.splitlines()[1:]]
    assert len(recs) == len(ds["files"])
    by_image = {rec["image_id"]: rec for rec in recs}
    for name, p in ds["files"].items():
        assert by_image[ds["ids"][name]]["regions"] == regions_of(p), name
    regions = by_image[ds["ids"]["photo"]]["regions"]
    assert np.array_equal(mask_util.decode(regions[0]["rle"]), ds["files"]["photo"]["masks"][0][1])


def read_zip(r) -> tuple[zipfile.ZipFile, dict, list[dict]]:
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert z.testzip() is None  # every member's CRC checks out
    assert z.namelist()[0] == "manifest.json" and z.namelist()[-1] == "index.csv"
    index = list(csv.DictReader(io.StringIO(z.read("index.csv").decode())))
    return z, json.loads(z.read("manifest.json")), index


def test_isic_zip_holds_one_binary_png_per_image_with_a_lesion(app_server, ds):
    before = exports_audited(ds)
    r = export(app_server, ds, "isic")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == f'attachment; filename="project-{ds["project"]}-isic.zip"'
    header = json.loads(r.headers["x-dermlabel-manifest"])
    assert header["format"] == "isic" and header["items"] == len(ds["files"])
    assert exports_audited(ds) == before + 1
    z, manifest, index = read_zip(r)
    assert manifest == header
    with_lesion = [n for n, p in ds["files"].items() if any(label == "lesion" for label, _ in p["masks"])]
    assert sorted(z.namelist()[1:-1]) == sorted(f"{ds['ids'][n]}_segmentation.png" for n in with_lesion)
    for name in with_lesion:
        p = ds["files"][name]
        img = Image.open(io.BytesIO(z.read(f"{ds['ids'][name]}_segmentation.png")))
        assert img.mode == "L" and img.size == p["size"]
        pixels = np.array(img)
        assert set(np.unique(pixels)) == {0, 255}
        assert np.array_equal(pixels, expected_segments(p)["lesion"] * 255), name  # the union, polygon included
    rows = {int(x["image_id"]): x for x in index}
    assert rows[ds["ids"]["bare"]]["file"] == "" and rows[ds["ids"]["bare"]]["note"] == "no lesion mask or outline"
    assert rows[ds["ids"]["vl"]]["file"] == f"{ds['ids']['vl']}_segmentation.png"
    # narrowed to one image
    one = zipfile.ZipFile(io.BytesIO(export(app_server, ds, "isic", image_ids=str(ds["ids"]["ct"])).content))
    assert one.namelist() == ["manifest.json", f"{ds['ids']['ct']}_segmentation.png", "index.csv"]


def served_dicom(app_server, ds, name: str) -> pydicom.Dataset:
    r = get(app_server, ds, f"/images/{ds['ids'][name]}/dicom")
    assert r.status_code == 200
    return pydicom.dcmread(io.BytesIO(r.content))


def check_seg(data: bytes, source: pydicom.Dataset, p: dict, multiframe: bool) -> None:
    """A SEG read back by pydicom and highdicom: geometry, segments, references and pixels."""
    expected = expected_segments(p)
    seg = pydicom.dcmread(io.BytesIO(data))
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.SegmentationType == "BINARY"
    assert (seg.Rows, seg.Columns) == (source.Rows, source.Columns)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == list(expected)
    for k in ("StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate", "StudyDate"):
        assert str(seg.get(k) or "") == str(source.get(k) or ""), k  # the de-identified file's, exactly
    assert seg.PatientIdentityRemoved == "YES"
    assert seg.get("FrameOfReferenceUID") == source.get("FrameOfReferenceUID")
    ref = seg.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == source.SeriesInstanceUID
    assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert ref.ReferencedInstanceSequence[0].ReferencedSOPClassUID == source.SOPClassUID
    for frame in seg.PerFrameFunctionalGroupsSequence:
        item = frame.DerivationImageSequence[0].SourceImageSequence[0]
        assert item.ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert item.get("ReferencedFrameNumber") == (1 if multiframe else None)
    measures = seg.SharedFunctionalGroupsSequence[0].get("PixelMeasuresSequence")
    if "PixelSpacing" in source:
        assert [float(v) for v in measures[0].PixelSpacing] == [float(v) for v in source.PixelSpacing]
    else:
        assert measures is None
    for value in PATIENT.values():
        assert value.encode() not in data
    read = hd.seg.segread(io.BytesIO(data))
    numbers = list(range(1, len(expected) + 1))
    assert list(read.get_segment_numbers()) == numbers
    if multiframe:
        pixels = read.get_pixels_by_source_frame(source.SOPInstanceUID, [1], segment_numbers=numbers)
    else:
        pixels = read.get_pixels_by_source_instance([source.SOPInstanceUID], segment_numbers=numbers)
    assert pixels.shape == (1, source.Rows, source.Columns, len(numbers))
    for i, m in enumerate(expected.values()):
        assert np.array_equal(pixels[0, :, :, i], m)


def test_dicom_seg_zip_references_the_deidentified_files(app_server, ds):
    r = export(app_server, ds, "dicom_seg")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    z, manifest, index = read_zip(r)
    assert manifest["format"] == "dicom_seg"
    dicom = ["vl", "cine", "ct"]
    assert sorted(z.namelist()[1:-1]) == sorted(f"{ds['ids'][n]}_seg.dcm" for n in dicom)
    for name in dicom:
        check_seg(z.read(f"{ds['ids'][name]}_seg.dcm"), served_dicom(app_server, ds, name), ds["files"][name],
                  multiframe=name == "cine")
    rows = {int(x["image_id"]): x for x in index}
    assert rows[ds["ids"]["vl"]]["segments"] == "lesion|pigment network"
    assert rows[ds["ids"]["photo"]]["note"] == "not uploaded as DICOM"


def test_one_image_seg(app_server, ds):
    before = exports_audited(ds)
    r = get(app_server, ds, f"/projects/{ds['project']}/images/{ds['ids']['vl']}/seg")
    assert r.status_code == 200 and r.headers["content-type"] == "application/dicom"
    assert exports_audited(ds) == before + 1
    check_seg(r.content, served_dicom(app_server, ds, "vl"), ds["files"]["vl"], multiframe=False)
    again = get(app_server, ds, f"/projects/{ds['project']}/images/{ds['ids']['vl']}/seg")
    # the same annotations give the same SEG instance
    assert pydicom.dcmread(io.BytesIO(again.content)).SOPInstanceUID == pydicom.dcmread(io.BytesIO(r.content)).SOPInstanceUID
    photo = get(app_server, ds, f"/projects/{ds['project']}/images/{ds['ids']['photo']}/seg")
    assert photo.status_code == 404 and "not uploaded as DICOM" in photo.json()["message"]
    missing = get(app_server, ds, f"/projects/{ds['project']}/images/987654321/seg")
    assert missing.status_code == 404 and set(missing.json()) == {"code", "message", "details", "hint"}
    with app_server.client() as c:
        ann = token(c, ds["db"], ds["ann"])
        assert c.get(f"/projects/{ds['project']}/images/{ds['ids']['vl']}/seg", headers=ann).status_code == 403


@pytest.mark.parametrize("params,status,field", [
    ({"format": "png"}, 400, "format"),
    ({"format": "isic", "image_ids": "7,x"}, 400, None),
    ({"format": "dicom_seg", "classes": "XX"}, 400, "filters.classes"),
    ({"format": "isic", "gold": "sometimes"}, 400, "filters.gold"),
])
def test_bad_formats_and_filters_are_clear_errors_and_audit_nothing(app_server, ds, params, status, field):
    before = exports_audited(ds)
    r = get(app_server, ds, f"/projects/{ds['project']}/export", **params)
    assert r.status_code == status and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"code", "message", "details", "hint"} and body["code"] == "22023"
    if field:
        assert body["details"]["field"] == field
    assert exports_audited(ds) == before


def test_annotators_and_strangers_get_no_masks(app_server, ds):
    before = exports_audited(ds)
    with app_server.client() as c:
        ann = token(c, ds["db"], ds["ann"])
        for fmt in ("isic", "dicom_seg"):
            assert c.get(f"/projects/{ds['project']}/export", params={"format": fmt}, headers=ann).status_code == 403
        assert c.get("/projects/99999999/export", params={"format": "isic"},
                     headers=token(c, ds["db"], ds["admin"])).status_code == 404
    with app_server.client() as anonymous:  # a client of its own: the sign-ins above left session cookies
        assert anonymous.get(f"/projects/{ds['project']}/export", params={"format": "isic"}).status_code == 401
    assert exports_audited(ds) == before


def test_partner_keys_export_masks_with_the_export_scope_only(app_server, ds):
    with app_server.client() as c:
        admin = token(c, ds["db"], ds["admin"])
        reader = {"authorization": f"Bearer {make_key(c, admin, ds['project'], ['export:read'])['key']}"}
        other = {"authorization": f"Bearer {make_key(c, admin, ds['project'], ['results:read'])['key']}"}
    with app_server.client() as c:
        r = c.get(f"/projects/{ds['project']}/export", params={"format": "isic"}, headers=reader)
        assert r.status_code == 200 and json.loads(r.headers["x-dermlabel-manifest"])["exported_by"].startswith("API key")
        assert len(zipfile.ZipFile(io.BytesIO(r.content)).namelist()) == 2 + 4
        seg = c.get(f"/projects/{ds['project']}/images/{ds['ids']['ct']}/seg", headers=reader)
        assert seg.status_code == 200 and pydicom.dcmread(io.BytesIO(seg.content)).Modality == "SEG"
        for path in (f"/projects/{ds['project']}/export?format=dicom_seg",
                     f"/projects/{ds['project']}/images/{ds['ids']['ct']}/seg"):
            assert c.get(path, headers=other).status_code == 403


def test_command_line_isic_and_dicom_seg(ds, tmp_path, database_url):
    for fmt in ("isic", "dicom_seg"):
        out = tmp_path / f"masks-{fmt}.zip"
        r = run_cli("export", "--project", str(ds["project"]), "--format", fmt, "--as", ds["admin_email"],
                    "--out", str(out), "--image-ids", str(ds["ids"]["vl"]), env={"DATABASE_URL": database_url})
        assert r.returncode == 0, r.stderr
        names = zipfile.ZipFile(out).namelist()
        member = f"{ds['ids']['vl']}_segmentation.png" if fmt == "isic" else f"{ds['ids']['vl']}_seg.dcm"
        assert names == ["manifest.json", member, "index.csv"]


def test_an_enhanced_multiframe_source_is_referenced_at_frame_one():
    """No such file comes with pydicom: CT_small made into a two-frame Enhanced CT, geometry in functional groups.
    The SEG sits on frame 1's plane and references frame 1 (app/dicom/seg.py, no app needed)."""
    ct = pydicom.dcmread(io.BytesIO(bundled("CT_small.dcm")))
    ds = pydicom.dcmread(io.BytesIO(bundled("CT_small.dcm")))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.NumberOfFrames, ds.PixelData = 2, np.stack([ct.pixel_array, ct.pixel_array]).tobytes()
    shared, measures, orientation = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = ct.PixelSpacing, ct.SliceThickness
    orientation.ImageOrientationPatient = ct.ImageOrientationPatient
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = [measures], [orientation]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for z in (0.0, 5.0):
        frame, position = Dataset(), Dataset()
        position.ImagePositionPatient = [*ct.ImagePositionPatient[:2], float(ct.ImagePositionPatient[2]) + z]
        frame.PlanePositionSequence = [position]
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = frames
    for k in ("PixelSpacing", "SliceThickness", "ImagePositionPatient", "ImageOrientationPatient"):
        del ds[k]
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    m = rect(128, 128, 30, 10, 60, 20)
    data = dicom_seg.build(out.getvalue(), {"lesion": m})
    seg = pydicom.dcmread(io.BytesIO(data))
    frame = seg.PerFrameFunctionalGroupsSequence[0]
    source = frame.DerivationImageSequence[0].SourceImageSequence[0]
    assert (source.ReferencedSOPClassUID, source.ReferencedFrameNumber) == ("1.2.840.10008.5.1.4.1.1.2.1", 1)
    assert frame.PlanePositionSequence[0].ImagePositionPatient == ct.ImagePositionPatient
    assert seg.FrameOfReferenceUID == ct.FrameOfReferenceUID
    pixels = hd.seg.segread(io.BytesIO(data)).get_pixels_by_source_frame(ds.SOPInstanceUID, [1], segment_numbers=[1])
    assert np.array_equal(pixels[0, :, :, 0], m)
