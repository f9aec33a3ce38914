"""Image intake: registering 100,000 images in SQL, and uploading photographs over HTTP.

SQL: api.register_image for 100,000 images in one statement (what a bulk import of already-stored files costs;
target < 20 s). HTTP: 1024x768 JPEG "photographs" (distinct, ~200 KB) posted to /projects/{id}/images by 1 and
4 clients, one file per request: each is decoded, checked, stripped of metadata, re-encoded, thumbnailed,
written to local storage and registered. Prints images/s, MB/s and p50/p95 per upload.

    BENCH=bench/upload.py make bench      # DL_BENCH_UPLOADS=200 DL_BENCH_REGISTER=100000
"""
from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psycopg
from PIL import Image

UPLOADS = int(os.environ.get("DL_BENCH_UPLOADS", "200"))
REGISTER = int(os.environ.get("DL_BENCH_REGISTER", "100000"))
PASSWORD = "bench-password"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _app import pct, rss_mb, sign_in, start_app  # noqa: E402
from _people import organization, sessions  # noqa: E402


def photo(seed: int) -> bytes:
    """A skin-toned 1024x768 JPEG with a dark blob and sensor-like grain: decodes and compresses like a photo."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:768, 0:1024]
    base = np.stack([np.full((768, 1024), c, np.float32) for c in (205, 160, 140)], axis=-1)
    cx, cy, r = rng.integers(300, 700), rng.integers(250, 500), rng.integers(60, 160)
    blob = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)[..., None]
    img = np.where(blob, base * 0.45, base) + rng.normal(0, 6, (768, 1024, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def setup(conn: psycopg.Connection) -> dict:
    conn.execute("SELECT set_config('request.jwt.claims', '', false)")
    org, admin = organization(conn, "bench upload", "upload-admin@t.org", PASSWORD)
    conn.execute("SELECT set_config('request.jwt.claims', %s, false)", (json.dumps({"sub": admin}),))
    project = conn.execute("SELECT (api.create_project('bench upload', organization_id => %s) ->> 'id')::bigint",
                           (org,)).fetchone()[0]
    bulk = conn.execute("SELECT (api.create_project('bench register', organization_id => %s) ->> 'id')::bigint",
                        (org,)).fetchone()[0]
    sid = sessions(conn, [admin])[admin]
    conn.commit()
    return {"admin": admin, "session": sid, "project": project, "bulk": bulk}


def register(conn: psycopg.Connection, w: dict) -> float:
    t = time.monotonic()
    with conn.transaction():
        conn.execute("SELECT auth.begin_request(%s, %s, '{dl_admin}', %s)",  # as the app starts each call
                     (w["admin"], w["session"], json.dumps({"sub": w["admin"], "sid": w["session"]})))
        conn.execute("SELECT count(api.register_image(%s, 'bulk/' || i || '.jpg', "
                     "encode(sha256(('bulk' || i)::bytea), 'hex'), 1024, 768, 'image/jpeg')) "
                     "FROM generate_series(1, %s) i", (w["bulk"], REGISTER))
    return time.monotonic() - t


def upload_run(base: str, token: str, project: int, files: list[bytes], clients: int) -> tuple[float, list[float], int]:
    lat: list[float] = []
    errors = 0
    lock = threading.Lock()
    queue = list(files)

    def client() -> None:
        nonlocal errors
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            while True:
                with lock:
                    if not queue:
                        return
                    data = queue.pop()
                t = time.perf_counter()
                r = c.post(f"/projects/{project}/images", files={"files": ("photo.jpg", data, "image/jpeg")})
                ms = (time.perf_counter() - t) * 1000
                with lock:
                    if r.status_code == 200 and r.json()["files"][0]["status"] == 200:
                        lat.append(ms)
                    else:
                        errors += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started, lat, errors


def main() -> None:
    url = os.environ["DATABASE_URL"]
    with psycopg.connect(url) as conn:
        w = setup(conn)
        seconds = register(conn, w)
    print(f"register_image x {REGISTER:,} in one statement: {seconds:.1f} s ({REGISTER / seconds:,.0f} images/s; "
          f"target < 20 s)")
    files = [photo(i) for i in range(UPLOADS * 2)]
    size_mb = sum(map(len, files)) / 2 / 1024 / 1024
    with tempfile.TemporaryDirectory() as images:
        proc, port = start_app(url, DL_IMAGE_DIR=images)
        base = f"http://127.0.0.1:{port}"
        try:
            token = sign_in(port, "upload-admin@t.org", PASSWORD)
            print(f"{UPLOADS} distinct 1024x768 JPEGs per run ({size_mb / UPLOADS * 1024:.0f} KB each), "
                  f"{os.cpu_count()} cores shared by PostgreSQL, the app and the clients")
            print(f"{'clients':>7} | {'images/s':>8} {'MB/s':>6} | {'p50':>6} {'p95':>6} ms | {'app RSS':>7} | errors")
            for run, clients in enumerate((1, 4)):
                batch = files[run * UPLOADS:(run + 1) * UPLOADS]
                elapsed, lat, errors = upload_run(base, token, w["project"], batch, clients)
                print(f"{clients:>7} | {len(lat) / elapsed:>8.1f} {size_mb / elapsed:>6.1f} | {pct(lat, 50):>6.0f} "
                      f"{pct(lat, 95):>6.0f}    | {rss_mb(proc.pid):>5.0f}MB | {errors}", flush=True)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
