"""Fixtures over the real PostgreSQL cluster that `make test` starts (DATABASE_URL) and a real app over HTTP."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent


def url_for(dbname: str) -> str:
    """DATABASE_URL pointed at another database of the same cluster."""
    params = conninfo_to_dict(os.environ["DATABASE_URL"])
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def database_url() -> str:
    if "DATABASE_URL" not in os.environ:
        pytest.exit("DATABASE_URL is not set: run the tests with `make test`", returncode=2)
    return os.environ["DATABASE_URL"]


@pytest.fixture
def scratch_db(database_url: str):
    """A new empty database for one test, dropped afterwards."""
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url_for("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url_for(name)
    finally:
        with psycopg.connect(url_for("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


class AppServer:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log=None):
        self.url = url
        self.proc = proc
        self.log = log

    def read_log(self) -> str:
        """Everything the app wrote to stderr so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


def start_app(database_url: str, extra_env: dict[str, str] | None = None) -> AppServer:
    port = int((extra_env or {}).get("DL_PORT") or free_port())
    env = {**os.environ, "DATABASE_URL": database_url, "DL_PORT": str(port), **(extra_env or {})}
    # its log goes to a file: a pipe nobody drains fills up after ~64 KB of access lines and then blocks the app
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"app exited: {log.read().decode(errors='replace')[-2000:]}")
        try:  # listening is enough: /healthz itself may rightly take a while to answer 503
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return AppServer(url, proc, log)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("app did not start within 30 s")


def stop_app(server: AppServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()


JWT_SECRET = "test-secret-0123456789-0123456789-0123456789"


@pytest.fixture(scope="session")
def app_server(database_url: str):
    # many sign-ins from one address in a few seconds: the limits have their own test and server
    server = start_app(database_url, {"DL_JWT_SECRET": JWT_SECRET, "DL_RATE_LOGIN": "off", "DL_RATE_RPC": "off",
                                        "DL_METRICS_REFRESH_SECONDS": "0"})
    yield server
    stop_app(server)


# The reliability suite (load and faults, minutes long) runs with `make reliability`, not with `make test`.
collect_ignore = [] if os.environ.get("DL_RELIABILITY") else ["reliability"]
