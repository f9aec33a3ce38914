"""Click-to-segment latency: POST /items/{id}/segment through the real app against the reference service, on
1024x768 images, one click at a time (an annotator waits for each). Images prepared ahead by the pipeline (the
worker's segment stage: the app sends the stored embedding) and images not prepared (the app sends the image); and
the same clicks straight to the service's /v1/segment with the embeddings. Prints p50/p95/p99 per case.

    BENCH=bench/segment_click.py make bench      DL_BENCH_SEGMENT_IMAGES=6 DL_BENCH_SEGMENT_CLICKS=60
"""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app.seed.lesions import lesion  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _app import pct, sign_in, start_app  # noqa: E402
from _people import organization  # noqa: E402

IMAGES = int(os.environ.get("DL_BENCH_SEGMENT_IMAGES", "6"))
CLICKS = int(os.environ.get("DL_BENCH_SEGMENT_CLICKS", "60"))
URL = os.environ["DATABASE_URL"]
PASSWORD = "bench-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def setup() -> tuple[int, str]:
    with psycopg.connect(URL, autocommit=True) as conn:
        org, admin = organization(conn, "segment bench", "segment-bench@t.org", PASSWORD)
        conn.execute("SELECT set_config('request.jwt.claims', %s, false)", (json.dumps({"sub": admin}),))
        pid = conn.execute("SELECT (api.create_project('segment bench', organization_id => %s) ->> 'id')::bigint",
                           (org,)).fetchone()[0]
        conn.execute("SELECT api.create_work_rule(%s, 'all', 100000)", (pid,))
    return pid, "segment-bench@t.org"


def upload(port: int, token: str, project: int, seeds: range) -> list[tuple[int, int]]:
    """Images through the app's upload (cleaned, stored, registered: the rule makes their items); (image, item)."""
    files = [("files", (f"{s}.png", lesion(s, (1024, 768), dermoscopy=s % 2 == 0)[0], "image/png")) for s in seeds]
    r = httpx.post(f"http://127.0.0.1:{port}/projects/{project}/images", files=files,
                   headers={"authorization": f"Bearer {token}"}, timeout=120)
    r.raise_for_status()
    ids = [f["id"] for f in r.json()["files"]]
    with psycopg.connect(URL) as conn:
        return [(i, conn.execute("SELECT id FROM core.work_item WHERE image_id = %s", (i,)).fetchone()[0])
                for i in ids]


def prepared(images: list[int]) -> bool:
    with psycopg.connect(URL) as conn:
        return conn.execute("SELECT count(DISTINCT image_id) FROM core.ai_suggestion WHERE stage = 'segment' "
                            "AND image_id = ANY (%s)", (images,)).fetchone()[0] == len(images)


def clicks(port: int, token: str, items: list[int]) -> tuple[list[float], list[float], int]:
    """CLICKS clicks, one after the other, near the centre of the images (one lesion click, sometimes a second
    and a not-lesion click in a corner); client round trips and the latency_ms the app reports."""
    rnd = random.Random(7)
    rtt, service, errors = [], [], 0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {token}"},
                      timeout=30) as c:
        for n in range(CLICKS):
            points = [[512 + rnd.uniform(-40, 40), 384 + rnd.uniform(-30, 30), 1]]
            if n % 3 == 2:
                points += [[530, 390, 1], [60, 60, 0]]
            t = time.perf_counter()
            r = c.post(f"/items/{items[n % len(items)]}/segment", json={"points": points})
            rtt.append((time.perf_counter() - t) * 1000)
            if r.status_code == 200:
                service.append(r.json()["latency_ms"])
            else:
                errors += 1
    return rtt, service, errors


def direct(ref_url: str, data: Path, images: list[int]) -> tuple[list[float], list[float], int]:
    """The same clicks sent straight to the reference service's /v1/segment with the stored embeddings: what the
    service itself takes, without the app."""
    with psycopg.connect(URL) as conn:
        keys = [conn.execute("SELECT payload -> 'embedding' ->> 'storage_key' FROM core.ai_suggestion "
                             "WHERE stage = 'segment' AND image_id = %s ORDER BY id DESC LIMIT 1", (i,)).fetchone()[0]
                for i in images]
    embeddings = [(data / "images" / k).read_text() for k in keys]
    rnd = random.Random(7)
    rtt, compute, errors = [], [], 0
    with httpx.Client(base_url=ref_url, timeout=30) as c:
        for n in range(CLICKS):
            points = [[512 + rnd.uniform(-40, 40), 384 + rnd.uniform(-30, 30), 1]]
            if n % 3 == 2:
                points += [[530, 390, 1], [60, 60, 0]]
            t = time.perf_counter()
            r = c.post("/v1/segment", json={"embedding": embeddings[n % len(embeddings)], "points": points,
                                            "size": [768, 1024]})
            rtt.append((time.perf_counter() - t) * 1000)
            if r.status_code == 200:
                compute.append(r.json()["compute_ms"])
            else:
                errors += 1
    return rtt, compute, errors


def main() -> None:
    project, email = setup()
    data = Path(os.environ.get("DL_DATA_DIR", ROOT / ".data"))
    ref_port = free_port()
    ref_url = f"http://127.0.0.1:{ref_port}"
    env = {**os.environ, "DL_AI_PORT": str(ref_port), "DL_DATA_DIR": str(data), "DL_AI_REFERENCE_URL": ref_url,
           "DL_LOG_FORMAT": "text"}
    procs = [subprocess.Popen([sys.executable, "-m", "app", "ai-reference"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    wait_port(ref_port)
    app, port = start_app(URL, DL_AI_REFERENCE_URL=ref_url, DL_DATA_DIR=str(data))
    procs.append(app)
    try:
        token = sign_in(port, email, PASSWORD)
        # prepared: the worker runs crop and segment (classify and recommend off), then stops
        worker = subprocess.Popen([sys.executable, "-m", "app", "worker"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL,
                                  env={**env, "DATABASE_URL": URL, "DL_AI_CLASSIFY": "off",
                                       "DL_AI_RECOMMEND": "off", "DL_AI_POLL_SECONDS": "0.5"})
        ready = upload(port, token, project, range(500, 500 + IMAGES))
        deadline = time.monotonic() + 120
        while not prepared([i for i, _ in ready]) and time.monotonic() < deadline:
            time.sleep(0.5)
        worker.terminate()
        worker.wait(30)
        cold = upload(port, token, project, range(600, 600 + IMAGES))  # no worker: not prepared
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {token}"},
                          timeout=30) as c:  # warm-up: connections, the catalog, OpenCV's first calls
            for _, item in ready + cold:
                c.post(f"/items/{item}/segment", json={"points": [[512, 384, 1]]})
        print(f"{CLICKS} clicks per case, one at a time, over {IMAGES} images of 1024x768 "
              f"(prepared ahead: {prepared([i for i, _ in ready])})")
        print("case                            | round trip p50    p95    p99 | inner p50    p95 | errors")
        runs = (("app, embedding (prepared)", lambda: clicks(port, token, [it for _, it in ready])),
                ("app, image bytes (not prepared)", lambda: clicks(port, token, [it for _, it in cold])),
                ("/v1/segment alone, embedding", lambda: direct(ref_url, data, [i for i, _ in ready])))
        for name, run in runs:
            rtt, inner, errors = run()
            print(f"{name:<31} | {pct(rtt, 50):14.1f} {pct(rtt, 95):6.1f} {pct(rtt, 99):6.1f} | "
                  f"{pct(inner, 50):9.1f} {pct(inner, 95):6.1f} | {errors}")
        print("inner: the app's latency_ms (storage read + service call + check), or the service's compute_ms")
    finally:
        for p in procs:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
