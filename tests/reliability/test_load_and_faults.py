"""64 clients for a minute, then the same with faults injected; afterwards every invariant is checked in SQL.

    make reliability          # DL_RELIABILITY_SECONDS=60 by default
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

import faults
from conftest import JWT_SECRET, free_port, start_app, stop_app
from invariants import check_all
from load import Outcomes, make_load_team, start_clients, summary

SECONDS = float(os.environ.get("DL_RELIABILITY_SECONDS", "60"))
ANNOTATORS, REVIEWERS, UPLOADERS = 46, 16, 2  # 64 clients


@pytest.fixture
def app_env():
    images = Path(tempfile.mkdtemp(prefix="dl-rel-images-"))
    env = {"DL_JWT_SECRET": JWT_SECRET, "DL_RATE_LOGIN": "off", "DL_RATE_RPC": "off", "DL_PORT": str(free_port()),
           "DL_METRICS_REFRESH_SECONDS": "0", "DL_IMAGE_DIR": str(images)}
    yield env
    for p in (images, images.with_name(images.name + ".away")):
        if p.is_file():
            p.unlink()
    import shutil
    shutil.rmtree(images, ignore_errors=True)


def wait_healthy(base_url: str, seconds: float = 60) -> float:
    """Seconds until /healthz answers 200 (the database reachable again)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return time.monotonic() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base_url} not healthy after {seconds} s")


def first_success_after(out: Outcomes, t: float) -> float | None:
    with out.lock:
        later = [at for at, op, status in out.timeline if at >= t and status == 200 and op != "login"]
    return min(later) - t if later else None


def run_load(database_url: str, env: dict, seconds: float, inject=None):
    with psycopg.connect(database_url) as conn:
        team = make_load_team(conn, uuid.uuid4().hex[:8], ANNOTATORS, REVIEWERS, UPLOADERS, images=20_000)
    server = start_app(database_url, env)
    out, stop = Outcomes(), threading.Event()
    clients = start_clients(server.url, team, out, stop)
    t0 = time.monotonic()
    report: dict = {"expired": []}
    try:
        if inject:
            server = inject(server, team, out, report, t0)
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
    finally:
        stop.set()
        for c in clients:
            c.join(30)
        log = server.read_log()
        stop_app(server)
    with psycopg.connect(database_url) as conn:
        violations = check_all(conn, team.project, out, report["expired"], Path(env["DL_IMAGE_DIR"]))
    print(f"\n{len(clients)} clients, {seconds:.0f} s\n{summary(out)}")
    print(f"acknowledged: {len(out.submits)} submits, {len(out.decisions)} reviews, {len(out.uploads)} uploads")
    for name, found in violations.items():
        print(f"  {'ok  ' if not found else 'FAIL'} {name}" + (f": {found}" if found else ""))
    return out, violations, report, log


def test_64_clients_for_a_minute_keep_every_invariant(database_url, app_env):
    out, violations, _, log = run_load(database_url, app_env, SECONDS)
    assert not out.unexpected, out.unexpected[:10]
    assert {k: v for k, v in violations.items() if v} == {}
    assert len(out.submits) > 500 and len(out.decisions) > 200 and len(out.uploads) > 20, "the load was too light"
    assert out.status[("next_item", 503)] == 0 and out.status[("submit_annotation", 503)] == 0


def test_faults_under_load_lose_nothing_and_heal_by_themselves(database_url, app_env):
    def inject(server, team, out, report, t0):
        def at(second: float) -> None:
            time.sleep(max(0.0, t0 + second * SECONDS / 60 - time.monotonic()))

        at(8)
        t = time.monotonic()
        server = faults.kill_app(server, app_env)
        report["app_killed"] = (t, time.monotonic())
        at(18)
        t = time.monotonic()
        report["terminated_backends"] = faults.terminate_backends(database_url)
        report["backends_terminated"] = (t, time.monotonic())
        at(26)
        t = time.monotonic()
        faults.crash_postgres(down_seconds=4)
        report["postgres_down"] = (t, time.monotonic())
        wait_healthy(server.url)
        at(40)
        root = Path(app_env["DL_IMAGE_DIR"])
        t = time.monotonic()
        aside = faults.break_storage(root)
        time.sleep(5)
        faults.repair_storage(root, aside)
        report["storage_down"] = (t, time.monotonic())
        at(50)
        report["expired"] = faults.expire_locks(database_url, team.project, 5)
        report["locks_expired"] = (time.monotonic(), time.monotonic())
        return server

    out, violations, report, log = run_load(database_url, app_env, max(SECONDS, 60), inject)
    assert not out.unexpected, out.unexpected[:10]
    assert {k: v for k, v in violations.items() if v} == {}
    for fault in ("app_killed", "backends_terminated", "postgres_down", "storage_down"):
        start, end = report[fault]
        healed = first_success_after(out, end)
        print(f"  {fault}: {end - start:.1f} s; first success {healed:.2f} s after" if healed is not None
              else f"  {fault}: never recovered")
        assert healed is not None and healed < 15, f"no successful call within 15 s after {fault}"
    # during the database outage the clients were told to come back (503), never given a 500
    start, end = report["postgres_down"]
    with out.lock:
        during = {s for at, _, s in out.timeline if start <= at <= end + 1}
    assert 503 in during and 500 not in during, during
    with out.lock:
        storage = [s for at, op, s in out.timeline if op == "upload" and report["storage_down"][0] + 0.5 <= at
                   <= report["storage_down"][1] - 0.5]
    assert storage and set(storage) <= {503}, storage
    assert len(report["expired"]) == 5
