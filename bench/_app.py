"""What the HTTP benches share: the real app started on a free port, a sign-in that waits for it, percentiles,
and the app's memory."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-bench-secret-bench-secret-42"


def start_app(url: str, **env: str) -> tuple[subprocess.Popen, int]:
    """`python -m app serve` against `url` (limits off, no metrics refresher), once it listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env={**os.environ, "DATABASE_URL": url, "DL_PORT": str(port), "DL_JWT_SECRET": SECRET,
                                 "DL_RATE_LOGIN": "off", "DL_RATE_RPC": os.environ.get("DL_BENCH_RATE_RPC", "off"),
                                 "DL_METRICS_REFRESH_SECONDS": "0",
                                 **env})
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    raise SystemExit("app did not start")


def sign_in(port: int, email: str, password: str) -> str:
    r = httpx.post(f"http://127.0.0.1:{port}/auth/login", json={"email": email, "password": password})
    r.raise_for_status()
    return r.json()["token"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")
