"""The S3 backend against a real S3 server process on loopback (moto in server mode), and the app on it."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import uuid

import boto3
import psycopg
import pytest
from PIL import Image

from app.images.storage import S3Storage, StorageError
from conftest import JWT_SECRET, free_port, start_app, stop_app
from sqlcall import make_project
from test_http_rpc import token


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(env)
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket="images")
    yield url, env
    proc.terminate()
    proc.wait(10)


async def test_put_get_and_missing_keys(s3_server):
    url, _ = s3_server
    store = S3Storage("images", "prefix", url)
    await store.ping()
    await store.put("images/1/abc.png", b"\x89PNG bytes", "image/png")
    assert await store.get("images/1/abc.png") == b"\x89PNG bytes"
    assert await store.get("images/1/nothing.png") is None
    assert await store.exists("images/1/abc.png") and not await store.exists("images/1/nothing.png")
    await store.put("images/1/gone.png", b"x", "image/png")
    await store.delete("images/1/gone.png")  # what a refused upload does with the files it wrote
    assert not await store.exists("images/1/gone.png") and await store.get("images/1/gone.png") is None
    await store.delete("images/1/gone.png")  # deleting what is not there is no error
    obj = boto3.client("s3", endpoint_url=url).get_object(Bucket="images", Key="prefix/images/1/abc.png")
    assert obj["ContentType"] == "image/png"
    with pytest.raises(ValueError):
        await store.put("../etc/passwd", b"x", "text/plain")
    with pytest.raises(StorageError):
        await S3Storage("no-such-bucket", "", url).ping()


def test_the_app_uploads_to_and_serves_from_s3(s3_server, database_url):
    url, env = s3_server
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)
    server = start_app(database_url, {**env, "DL_JWT_SECRET": JWT_SECRET, "DL_STORAGE": "s3",
                                      "DL_S3_BUCKET": "images", "DL_S3_ENDPOINT_URL": url,
                                      "DL_RATE_LOGIN": "off"})
    try:
        buf = io.BytesIO()
        Image.new("RGB", (300, 200), (200, 150, 120)).save(buf, "PNG")
        with server.client() as c:
            r = c.post(f"/projects/{w['project']}/images", headers=token(c, database_url, w["admin"]),
                       files=[("files", ("s3.png", buf.getvalue(), "image/png"))])
            assert r.status_code == 200, r.text
            image_id = r.json()["files"][0]["id"]
            got = c.get(f"/images/{image_id}", headers=token(c, database_url, w["annotators"][0]))
        assert got.status_code == 200 and Image.open(io.BytesIO(got.content)).size == (300, 200)
        keys = [o["Key"] for o in boto3.client("s3", endpoint_url=url).list_objects_v2(Bucket="images")["Contents"]]
        assert any(k.startswith(f"images/{w['project']}/") for k in keys)
        assert any(k.startswith(f"thumbs/{w['project']}/") for k in keys)
    finally:
        stop_app(server)
