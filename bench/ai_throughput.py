"""AI pipeline throughput: images per second through crop -> classify -> recommend with the reference service,
with 1 and 2 worker processes, and what the proxy (the worker: bytes from storage, the HTTP call, the derived image
stored, the result recorded in SQL) adds to calling the reference service directly.

    BENCH=bench/ai_throughput.py make bench      # DL_BENCH_AI_IMAGES=40 DL_BENCH_AI_CONCURRENCY=2
"""
from __future__ import annotations

import hashlib
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from PIL import Image
from psycopg.types.json import Jsonb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app.seed.lesions import lesion  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _people import organization  # noqa: E402

IMAGES = int(os.environ.get("DL_BENCH_AI_IMAGES", "40"))
CONCURRENCY = os.environ.get("DL_BENCH_AI_CONCURRENCY", "2")
URL = os.environ["DATABASE_URL"]
DATA = Path(os.environ["DL_DATA_DIR"])


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(conn: psycopg.Connection) -> list[tuple[int, bytes]]:
    org, admin = organization(conn, "ai bench", "ai-bench@t.org", display_name="b")
    conn.execute("SELECT set_config('request.jwt.claims', %s, false)", (f'{{"sub": {admin}}}',))
    pid = conn.execute("SELECT (api.create_project('ai bench', organization_id => %s) ->> 'id')::bigint",
                       (org,)).fetchone()[0]
    for code in ("MEL", "NV", "BKL", "BCC", "VASC"):
        conn.execute("SELECT api.upsert_taxonomy_node(%s, %s, %s, next_steps => %s)",
                     (pid, code, code, f"next steps for {code}"))
    conn.execute("SELECT api.create_work_rule(%s, 'all', 100000)", (pid,))
    out = []
    for n in range(IMAGES):
        png = lesion(1000 + n, dermoscopy=n % 2 == 0)[0]
        sha = hashlib.sha256(png).hexdigest()
        key = f"images/{pid}/{sha}.png"
        path = DATA / "images" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        w, h = Image.open(io.BytesIO(png)).size
        iid = conn.execute("SELECT (api.register_image(%s, %s, %s, %s, %s, 'image/png', 'clinic', 'b', %s) "
                           "->> 'id')::bigint", (pid, key, sha, w, h, Jsonb({}))).fetchone()[0]
        out.append((iid, png))
    conn.commit()
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def direct(ref: str, images: list[tuple[int, bytes]]) -> dict[str, list[float]]:
    """The reference service called directly, one image at a time: the floor any proxy adds to."""
    times: dict[str, list[float]] = {"crop": [], "classify": []}
    with httpx.Client(base_url=ref, timeout=120) as c:
        for _, png in images:
            for stage in ("crop", "classify"):
                t0 = time.perf_counter()
                c.post(f"/v1/{stage}", content=png, headers={"content-type": "image/png"}).raise_for_status()
                times[stage].append((time.perf_counter() - t0) * 1000)
    return times


def through_workers(conn: psycopg.Connection, ref: str, workers: int,
                    concurrency: str = CONCURRENCY) -> tuple[float, dict[str, list[float]]]:
    conn.execute("TRUNCATE core.ai_attempt, core.ai_suggestion, core.ai_job")  # TRUNCATE passes the append-only guard
    conn.execute("INSERT INTO core.ai_job (image_id, stage) SELECT id, 'crop' FROM core.image")
    conn.commit()
    env = {**os.environ, "DL_AI_REFERENCE_URL": ref, "DL_AI_CONCURRENCY": concurrency, "DL_LOG_FORMAT": "text",
           "DL_AI_POLL_SECONDS": "0.5"}
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    try:
        while conn.execute("SELECT count(*) FROM core.ai_job WHERE stage = 'recommend' AND status = 'done'"
                           ).fetchone()[0] < len(IMAGES_CACHE):
            conn.commit()
            time.sleep(0.1)
        elapsed = time.perf_counter() - t0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    rows = conn.execute("SELECT j.stage::text, extract(epoch FROM a.finished_at - a.started_at) * 1000 "
                        "FROM core.ai_attempt a JOIN core.ai_job j ON j.id = a.job_id WHERE a.outcome = 'done'"
                        ).fetchall()
    failed = conn.execute("SELECT count(*) FROM core.ai_attempt WHERE outcome <> 'done'").fetchone()[0]
    conn.commit()
    per: dict[str, list[float]] = {}
    for stage, ms in rows:
        per.setdefault(stage, []).append(float(ms))
    per["_failed"] = [failed]
    return elapsed, per


IMAGES_CACHE: list = []


def main() -> None:
    port = free_port()
    ref = subprocess.Popen([sys.executable, "-m", "app", "ai-reference"], cwd=ROOT,
                           env={**os.environ, "DL_AI_PORT": str(port)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ref_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{ref_url}/healthz").raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        with psycopg.connect(URL) as conn:
            IMAGES_CACHE.extend(setup(conn))
            print(f"{IMAGES} synthetic lesion images (1024x768 PNG), reference service: 1 process; "
                  f"worker concurrency {CONCURRENCY}; {os.cpu_count()} cores shared by everything")
            d = direct(ref_url, IMAGES_CACHE)
            seq = sum(d["crop"]) + sum(d["classify"])
            print(f"\ndirect calls, sequential: {IMAGES / (seq / 1000):.2f} images/s "
                  f"(crop p50 {statistics.median(d['crop']):.0f} ms, classify p50 "
                  f"{statistics.median(d['classify']):.0f} ms)")
            print(f"\n{'workers':>7} | {'images/s':>8} | {'crop p50':>8} {'p95':>6} | {'classify p50':>12} {'p95':>6} | "
                  f"{'recommend p50':>13} | failed")
            for workers in (1, 2):
                elapsed, per = through_workers(conn, ref_url, workers)
                print(f"{workers:>7} | {IMAGES / elapsed:>8.2f} | {statistics.median(per['crop']):>8.0f} "
                      f"{pct(per['crop'], 0.95):>6.0f} | {statistics.median(per['classify']):>12.0f} "
                      f"{pct(per['classify'], 0.95):>6.0f} | {statistics.median(per['recommend']):>13.1f} | "
                      f"{per['_failed'][0]}")
            print("\nper-job times through a worker are from the job's claim to its recorded result (ms); with one "
                  "job at a time\nthe proxy's overhead is that minus the direct call:")
            _, per1 = through_workers(conn, ref_url, 1, "1")
            for stage in ("crop", "classify"):
                over = statistics.median(per1[stage]) - statistics.median(d[stage])
                print(f"  {stage:<9} direct p50 {statistics.median(d[stage]):6.0f} ms, through the worker p50 "
                      f"{statistics.median(per1[stage]):6.0f} ms: +{over:.0f} ms "
                      f"({over / statistics.median(d[stage]):.0%})")
    finally:
        ref.terminate()
        ref.wait(10)


if __name__ == "__main__":
    main()
