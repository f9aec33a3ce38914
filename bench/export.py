"""Export throughput and memory: 500,000 approved items exported over HTTP as JSON Lines and as COCO; items per
second and the app process's memory (resident now, and peak) while it streams.

    BENCH=bench/export.py make bench      # DL_BENCH_EXPORT_ITEMS=500000 (approved items; 625,000 items in all)
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
DONE = int(os.environ.get("DL_BENCH_EXPORT_ITEMS", "500000"))
os.environ["DL_BENCH_ITEMS"] = str(DONE * 10 // 8)  # the metrics setup approves 80 % of its items
sys.path.insert(0, str(Path(__file__).parent))
from _people import join  # noqa: E402
from metrics_refresh import setup  # noqa: E402  (the same synthetic history: revisions, reviews, flags)

PASSWORD = "bench-password-123"


def memory(pid: int) -> tuple[int, int]:
    """(resident, peak resident) of a process in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def main() -> None:
    url = os.environ["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        t = time.monotonic()
        setup(conn)
        conn.execute("VACUUM ANALYZE")
        pid = conn.execute("SELECT id FROM core.project WHERE name = 'metrics bench'").fetchone()[0]
        admin = conn.execute("INSERT INTO auth.\"user\" (email, display_name, password_hash) VALUES "
                             "('export-bench@t.org', 'eb', crypt(%s, gen_salt('bf', 4))) RETURNING id",
                             (PASSWORD,)).fetchone()[0]
        join(conn, pid, [admin], admin=True)
        done = conn.execute("SELECT count(*) FROM core.work_item WHERE project_id = %s AND status = 'done'",
                            (pid,)).fetchone()[0]
        print(f"setup: {done:,} approved items in {time.monotonic() - t:.0f} s; {os.cpu_count()} cores")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DL_PORT": str(port), "DL_METRICS_REFRESH_SECONDS": "0", "DL_RATE_RPC": "off",
           "DL_LOG_FORMAT": "text"}
    log = open(Path(os.environ["DL_DATA_DIR"]) / "export-bench-app.log", "w+b")
    app = subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        token = httpx.post(f"{base}/auth/login", json={"email": "export-bench@t.org", "password": PASSWORD}).json()["token"]
        headers = {"authorization": f"Bearer {token}"}
        print(f"\n{'format':<6} | {'items':>8} | {'items/s':>8} | {'MB':>6} | app RSS before / during max / peak (MB)")
        for fmt in ("jsonl", "coco"):
            before = memory(app.pid)[0]
            during = [before]
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    during.append(memory(app.pid)[0])
                    time.sleep(0.2)
            sampler = threading.Thread(target=sample)
            sampler.start()
            t = time.monotonic()
            size = 0
            with httpx.stream("GET", f"{base}/projects/{pid}/export", params={"format": fmt}, headers=headers,
                              timeout=600) as r:
                r.raise_for_status()
                for chunk in r.iter_bytes():
                    size += len(chunk)
            elapsed = time.monotonic() - t
            stop.set()
            sampler.join()
            print(f"{fmt:<6} | {done:>8,} | {done / elapsed:>8,.0f} | {size / 1e6:>6.0f} | "
                  f"{before} / {max(during)} / {memory(app.pid)[1]}")
    except Exception:
        log.seek(0)
        print("app log (tail):\n" + log.read().decode(errors="replace")[-3000:])
        raise
    finally:
        app.terminate()
        app.wait(10)


if __name__ == "__main__":
    main()
