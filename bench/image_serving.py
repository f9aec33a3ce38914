"""Image serving over HTTP: GET /images/{id} (the original) and /images/{id}/thumb by CONCURRENCY clients for
SECONDS each, against the real app; every read is recorded in the access audit (audit.access). Prints reads/s and
p50/p95/p99, and how many audit rows the run wrote.

    BENCH=bench/image_serving.py make bench      DL_BENCH_CLIENTS=16 DL_BENCH_SECONDS=10
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import time
from pathlib import Path

import httpx
import psycopg
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _app import pct, sign_in, start_app  # noqa: E402

SECONDS = float(os.environ.get("DL_BENCH_SECONDS", "10"))
CLIENTS = int(os.environ.get("DL_BENCH_CLIENTS", "16"))
PASSWORD = "bench-password"


def setup(url: str) -> tuple[int, str]:
    """An organization whose admin is also an annotator of one project; returns the project and the email."""
    with psycopg.connect(url, autocommit=True) as conn:
        admin = conn.execute("INSERT INTO auth.\"user\" (email, display_name, password_hash) VALUES "
                             "('serve-admin@t.org', 'a', crypt(%s, gen_salt('bf', 4))) RETURNING id",
                             (PASSWORD,)).fetchone()[0]
        org = conn.execute("INSERT INTO core.organization (name) VALUES ('bench serving') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO core.org_member (organization_id, user_id, admin) VALUES (%s, %s, true)", (org, admin))
        conn.execute("SELECT set_config('request.jwt.claims', %s, false)", (json.dumps({"sub": admin}),))
        project = conn.execute("SELECT (api.create_project('bench serving', organization_id => %s) ->> 'id')::bigint",
                               (org,)).fetchone()[0]
    return project, "serve-admin@t.org"


def jpeg(size: int = 1024) -> bytes:
    img = Image.new("RGB", (size, size), (170, 110, 80))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


async def client(port: int, token: str, path: str, stop: float, lat: list[float], errors: list[int]) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                 headers={"authorization": f"Bearer {token}"}) as c:
        while time.monotonic() < stop:
            t = time.perf_counter()
            r = await c.get(path)
            lat.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                errors.append(r.status_code)


async def run(port: int, token: str, path: str) -> tuple[float, list[float], int]:
    lat: list[float] = []
    errors: list[int] = []
    stop = time.monotonic() + SECONDS
    await asyncio.gather(*(client(port, token, path, stop, lat, errors) for _ in range(CLIENTS)))
    return len(lat) / SECONDS, lat, len(errors)


def main() -> None:
    url = os.environ["DATABASE_URL"]
    project, email = setup(url)
    proc, port = start_app(url)
    try:
        token = sign_in(port, email, PASSWORD)
        up = httpx.post(f"http://127.0.0.1:{port}/projects/{project}/images", headers={"authorization": f"Bearer {token}"},
                        files=[("files", ("x.jpg", jpeg(), "image/jpeg"))], timeout=60)
        image = up.json()["files"][0]["id"]
        audited = "SELECT count(*) FROM pg_class WHERE relname = 'access'"
        with psycopg.connect(url) as conn:
            has_audit = conn.execute(audited).fetchone()[0] > 0
        print(f"{CLIENTS} clients, {SECONDS:.0f} s per route, a 1024x1024 JPEG; access audit: {has_audit}")
        print("route            | reads/s    p50    p95    p99 | errors")
        routes = {"original": f"/images/{image}", "thumb": f"/images/{image}/thumb"}
        for name in os.environ.get("DL_BENCH_ROUTES", "original,thumb").split(","):
            path = routes[name]
            rate, lat, errors = asyncio.run(run(port, token, path))
            print(f"{name:<16} | {rate:7.0f} {pct(lat, 50):6.1f} {pct(lat, 95):6.1f} {pct(lat, 99):6.1f} | {errors}")
        if has_audit:
            with psycopg.connect(url) as conn:
                rows = conn.execute("SELECT count(*) FROM audit.access WHERE image_id = %s", (image,)).fetchone()[0]
            print(f"audit rows written: {rows}")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
