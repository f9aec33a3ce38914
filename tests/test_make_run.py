"""The README's first command, as a newcomer runs it: `python -m app run` (what `make run` calls) on an empty data
directory creates the cluster, seeds the demo, starts the app, the reference AI service and the worker; an
annotator's first item soon carries the crop, the class probabilities and the next steps; Ctrl-C stops them all."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ai_services import wait_port
from conftest import ROOT, free_port

# every stage of the pipeline reports on the demo: crop, segment (click-to-segment prepared), classify, recommend
STAGES = {"crop", "segment", "classify", "recommend"}


def test_run_starts_everything_and_the_demo_gets_ai_suggestions():
    # not pytest's tmp_path: as root the cluster runs as `postgres`, which must be able to reach the directory
    tmp_path = Path(tempfile.mkdtemp(prefix="dermlabel-run-"))
    tmp_path.chmod(0o755)
    port, ai_port, pg_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DL_DATA_DIR", "DL_PG_PORT")}
    env.update({"DL_DATA_DIR": str(tmp_path / "data"), "DL_PORT": str(port), "DL_AI_PORT": str(ai_port),
                "DL_PG_PORT": str(pg_port), "DL_PG_OPTIONS": "-c fsync=off -c max_connections=50"})
    log = open(tmp_path / "run.log", "w+b")  # a file, not a pipe: nobody drains a pipe while the test waits
    proc = subprocess.Popen([sys.executable, "-m", "app", "run"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, proc, 120)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            r = c.post("/auth/login", json={"email": "ann1@dermlabel.test", "password": "dermlabel-demo"})
            auth = {"authorization": f"Bearer {r.json()['token']}"}
            item = c.post("/rpc/next_item", json={"project_id": 1}, headers=auth).json()["item"]
            deadline = time.monotonic() + 120
            while set(item["ai"]) != STAGES and time.monotonic() < deadline:
                time.sleep(1)
                item = c.post("/rpc/item_detail", json={"item_id": item["id"]}, headers=auth).json()
            ai = item["ai"]
            assert set(ai) == STAGES, ai
            assert ai["classify"]["model"] == "reference-abcd" and ai["classify"]["payload"]["classes"]
            assert ai["recommend"]["payload"]["steps"]
            assert c.get(ai["crop"]["payload"]["standardised"]["url"], headers=auth).status_code == 200
            assert ai["segment"]["payload"] == {"prepared": True} and ai["crop"]["payload"]["mask"]["counts"]
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group, as in a terminal
        proc.wait(timeout=60)
        out = (tmp_path / "run.log").read_text(errors="replace")
        subprocess.run([sys.executable, "-m", "app", "cluster", "stop"], cwd=ROOT, env=env, capture_output=True)
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert "DermLabel is up" in out and "AI: reference service and worker started" in out
    for name in ("ai-reference", "worker"):
        ps = subprocess.run(["pgrep", "-s", str(proc.pid), "-f", f"app {name}"], capture_output=True, text=True)
        assert not ps.stdout.strip(), f"{name} still running after Ctrl-C"


def test_run_refuses_a_taken_port_without_announcing_itself():
    """`make run` with the app's port already taken says so and stops, instead of printing "DermLabel is up"."""
    import socket

    tmp_path = Path(tempfile.mkdtemp(prefix="dermlabel-run-"))
    tmp_path.chmod(0o755)
    port, ai_port, pg_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DL_DATA_DIR", "DL_PG_PORT")}
    env.update({"DL_DATA_DIR": str(tmp_path / "data"), "DL_PORT": str(port), "DL_AI_PORT": str(ai_port),
                "DL_PG_PORT": str(pg_port), "DL_PG_OPTIONS": "-c fsync=off -c max_connections=50"})
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    try:
        r = subprocess.run([sys.executable, "-m", "app", "run"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=180)
    finally:
        squatter.close()
        subprocess.run([sys.executable, "-m", "app", "cluster", "stop"], cwd=ROOT, env=env, capture_output=True)
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert r.returncode == 2
    assert f"port {port}" in r.stderr and "DL_PORT" in r.stderr
    assert "DermLabel is up" not in r.stdout
