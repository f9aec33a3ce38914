"""Faults injected while the load runs: each one does the damage, waits, and repairs only what an operator's
infrastructure would (a process supervisor restarting a process, storage coming back). The app must recover by
itself."""
from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg

from app import config
from app.ops import cluster
from conftest import AppServer, start_app
from invariants import Expired


def kill_app(server: AppServer, env: dict[str, str]) -> AppServer:
    """kill -9 the app in the middle of requests, then start it again on the same port (as systemd would)."""
    server.proc.kill()
    server.proc.wait(10)
    time.sleep(1)
    return start_app(os.environ["DATABASE_URL"], env)


def terminate_backends(url: str) -> int:
    """pg_terminate_backend on every connection the app holds (pool and listener). Returns how many."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = 'dermlabel' AND pid <> pg_backend_pid()").fetchone()[0]


def crash_postgres(down_seconds: float) -> None:
    """Stop PostgreSQL with -m immediate (no checkpoint, crash recovery at the next start), keep it down for a
    while, start it again."""
    c = config.load().cluster
    cluster.stop(c.pg_data, "immediate")
    time.sleep(down_seconds)
    cluster.start(c.pg_data, c.socket_dir, c.pg_port, c.data_dir / "log" / "postgresql.log", c.pg_options)


def break_storage(root: Path) -> Path:
    """The image folder disappears and a file takes its place: every read and write fails, even as root."""
    aside = root.with_name(root.name + ".away")
    root.rename(aside)
    root.write_text("storage is down\n")
    return aside


def repair_storage(root: Path, aside: Path) -> None:
    root.unlink()
    aside.rename(root)


def expire_locks(url: str, project: int, n: int) -> list[Expired]:
    """Move n held annotation locks into the past, as if their holders had walked away an hour ago."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("""
            UPDATE core.work_item w SET lock_expires_at = now() - interval '1 second'
             WHERE w.id IN (SELECT id FROM core.work_item WHERE project_id = %s AND status = 'in_progress'
                             ORDER BY id LIMIT %s FOR UPDATE)
            RETURNING w.id, w.assignee_id, clock_timestamp()""", (project, n)).fetchall()
    return [Expired(*r) for r in rows]
