"""Image upload and download over HTTP, stored by the local backend."""
from __future__ import annotations

import io
import uuid

import psycopg
import pytest
from PIL import Image

from sqlcall import join, make_project, make_user
from test_http_rpc import token


def jpeg_with_gps(color=(180, 120, 90)) -> bytes:
    img = Image.new("RGB", (640, 480), color)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X"  # Model
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (51.0, 30.0, 0.0), "W", (0.0, 7.0, 0.0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def world(database_url):
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)
        other = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)
        w["stranger"] = other["annotators"][0]
        w["analyst"] = make_user(conn, f"an-{uuid.uuid4().hex[:6]}@t.org", ["analyst"])
        join(conn, w["admin"], w["project"], w["analyst"])  # analyst of the project's organization
    return w


def upload(c, headers, project, files, **form):
    return c.post(f"/projects/{project}/images", headers=headers, data={"source_class": "clinic", **form},
                  files=[("files", f) for f in files])


def test_upload_strips_gps_and_exif_and_serves_the_clean_bytes(app_server, world, database_url):
    raw = jpeg_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(0x8825)  # the fixture really has GPS
    with app_server.client() as c:
        admin = token(c, database_url, world["admin"])
        r = upload(c, admin, world["project"], [("lesion.jpg", raw, "image/jpeg")], batch="b1")
        assert r.status_code == 200, r.text
        f = r.json()["files"][0]
        assert f["duplicate"] is False and f["width"] == 640 and f["media_type"] == "image/jpeg"
        assert "EXIF:GPSInfo" in f["removed_metadata"] and "EXIF:Make" in f["removed_metadata"]
        assert f["items_created"] == 1  # the project's catch-all rule made an item by trigger
        ann = token(c, database_url, world["annotators"][0])
        got = c.get(f"/images/{f['id']}", headers=ann)
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
        stored = Image.open(io.BytesIO(got.content))
        assert not stored.getexif() and stored.size == (640, 480)
        assert b"PhoneMaker" not in got.content
        thumb = c.get(f"/images/{f['id']}/thumb", headers=ann)
        assert thumb.status_code == 200 and max(Image.open(io.BytesIO(thumb.content)).size) == 320
        again = c.get(f"/images/{f['id']}", headers={**ann, "if-none-match": got.headers["etag"]})
        assert again.status_code == 304


def test_the_same_file_twice_is_reported_not_duplicated(app_server, world, database_url):
    raw = jpeg_with_gps((10, 200, 30))
    with app_server.client() as c:
        admin = token(c, database_url, world["admin"])
        first = upload(c, admin, world["project"], [("a.jpg", raw, "image/jpeg")]).json()["files"][0]
        second = upload(c, admin, world["project"], [("b.jpg", raw, "image/jpeg")]).json()["files"][0]
    assert second["duplicate"] is True and second["id"] == first["id"]


def count_images(database_url, project) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM core.image WHERE project_id = %s", (project,)).fetchone()[0]


@pytest.mark.parametrize("name,payload,status", [
    ("notes.txt", b"just some text, not an image", 415),
    ("fake.jpg", b"\xff\xd8\xff\xe0 truncated jpeg", 415),
    ("page.html", b"<html><script>alert(1)</script></html>", 415),
])
def test_non_images_are_refused_and_change_nothing(app_server, world, database_url, name, payload, status):
    before = count_images(database_url, world["project"])
    with app_server.client() as c:
        r = upload(c, token(c, database_url, world["admin"]), world["project"], [(name, payload, "image/jpeg")])
    assert r.status_code == status and set(r.json()) == {"code", "message", "details", "hint"}
    assert count_images(database_url, world["project"]) == before


def test_a_decompression_bomb_is_refused(app_server, world, database_url):
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, "PNG")  # 144 megapixels in a few hundred kB
    assert len(buf.getvalue()) < 1_000_000
    with app_server.client() as c:
        r = upload(c, token(c, database_url, world["admin"]), world["project"], [("bomb.png", buf.getvalue(), "image/png")])
    assert r.status_code == 413 and "decompression bomb" in r.json()["message"]


def test_an_oversized_upload_is_413(app_server, world, database_url):
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (41 * 1024 * 1024)
    with app_server.client() as c:
        r = upload(c, token(c, database_url, world["admin"]), world["project"], [("big.png", big, "image/png")])
    assert r.status_code == 413


def test_who_may_upload_and_see(app_server, world, database_url):
    raw = jpeg_with_gps((1, 2, 3))
    with app_server.client() as c:
        assert upload(c, {}, world["project"], [("x.jpg", raw, "image/jpeg")]).status_code == 401
        ann = token(c, database_url, world["annotators"][0])
        assert upload(c, ann, world["project"], [("x.jpg", raw, "image/jpeg")]).status_code == 403
        image_id = upload(c, token(c, database_url, world["admin"]), world["project"],
                          [("x.jpg", raw, "image/jpeg")]).json()["files"][0]["id"]
        stranger = c.get(f"/images/{image_id}", headers=token(c, database_url, world["stranger"]))
        missing = c.get("/images/987654321", headers=token(c, database_url, world["stranger"]))
        assert stranger.status_code == missing.status_code == 404
        assert stranger.json()["message"].replace(str(image_id), "N") == missing.json()["message"].replace("987654321", "N")
        with app_server.client() as anonymous:
            assert anonymous.get(f"/images/{image_id}").status_code == 401
        assert c.get(f"/images/{image_id}", headers=token(c, database_url, world["analyst"])).status_code == 403
