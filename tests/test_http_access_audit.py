"""The access audit over HTTP: each route that serves an image's bytes or an item's document writes its row in
the same transaction, and the organization's analyst answers "who viewed this image"."""
from __future__ import annotations

import uuid

import psycopg

from sqlcall import join, make_project, make_user
from test_http_images import jpeg_with_gps, upload
from test_http_rpc import token


def test_every_read_is_recorded_and_an_analyst_sees_who_viewed_an_image(app_server, database_url):
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)
        analyst = make_user(conn, f"an-{uuid.uuid4().hex[:6]}@t.org", ["analyst"])
        join(conn, w["admin"], w["project"], analyst)
    with app_server.client() as c:
        admin = token(c, database_url, w["admin"])
        image = upload(c, admin, w["project"], [("x.jpg", jpeg_with_gps(), "image/jpeg")]).json()["files"][0]["id"]
        ann = token(c, database_url, w["annotators"][0])
        item = c.post("/rpc/next_item", json={"project_id": w["project"]}, headers=ann).json()["item"]
        assert item["image"]["id"] == image
        for path in (f"/images/{image}", f"/images/{image}/thumb", f"/rpc/item_detail?item_id={item['id']}"):
            assert c.get(path, headers=ann).status_code == 200, path
        assert c.get(f"/images/{image}/standardised", headers=ann).status_code == 404  # no crop yet: still a read
        seen = c.get("/rpc/image_access", params={"image_id": image}, headers=token(c, database_url, analyst))
        assert seen.status_code == 200, seen.text
        reads = [(r["what"], r["actor"]["id"]) for r in reversed(seen.json())]
        annotator = w["annotators"][0]
        assert reads == [("item", annotator), ("original", annotator), ("thumb", annotator), ("item", annotator),
                         ("standardised", annotator)]
        assert all(r["request_id"] for r in seen.json())
        # an annotator may not ask, nor an admin of another organization
        assert c.get("/rpc/image_access", params={"image_id": image}, headers=ann).status_code == 403
