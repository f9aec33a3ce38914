"""The annotator cycle (next_item + submit_annotation) over HTTP vs the same calls over SQL, in one run; then the
review cycle (next_review + approve) over HTTP on the items the annotators submitted.

SQL side: pgbench, one connection per annotator, calling api.next_item / api.submit_annotation after the app's
per-request statement, auth.begin_request (session checked, role picked from the memberships, claims set; two
transactions per cycle; the session id is looked up in the same statement, one extra index probe). HTTP side: the
real app (uvicorn) and a minimal keep-alive HTTP/1.1 client on asyncio, one connection per annotator. Prints
cycles/s, p50/p95/p99 of a cycle, the HTTP/SQL ratio, the app's memory, and double assignments found in the audit
log (must be 0).

    make bench                      # or: BENCH=bench/http_cycle.py make bench
    DL_BENCH_SECONDS=10 DL_BENCH_CLIENTS=1,4,16,64
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _app import pct, rss_mb, sign_in, start_app  # noqa: E402
from _people import join, organization  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("DL_BENCH_SECONDS", "10"))
CLIENTS = [int(c) for c in os.environ.get("DL_BENCH_CLIENTS", "1,4,16,64").split(",")]
ITEMS = int(os.environ.get("DL_BENCH_ITEMS", "250000"))
PASSWORD = "bench-password"


def setup(url: str) -> dict:
    """A project with ITEMS new items and 64 annotators (bulk SQL: this measures the cycle, not the loading)."""
    n_users = max(CLIENTS)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('request.jwt.claims', '', false)")
        org, admin = organization(conn, "bench http cycle", "bench-admin@t.org")
        conn.execute("SELECT set_config('request.jwt.claims', %s, false)", (json.dumps({"sub": admin}),))
        project = conn.execute("SELECT (api.create_project('bench http cycle', organization_id => %s) "
                               "->> 'id')::bigint", (org,)).fetchone()[0]
        cls = conn.execute("SELECT (api.upsert_taxonomy_node(%s, 'MEL', 'Melanoma') ->> 'id')::bigint",
                           (project,)).fetchone()[0]
        users = [r[0] for r in conn.execute(
            "INSERT INTO auth.\"user\" (email, display_name, password_hash) "
            "SELECT 'bench' || i || '@t.org', 'bench ' || i, crypt(%s, gen_salt('bf', 4)) "
            "FROM generate_series(1, %s) i RETURNING id", (PASSWORD, n_users))]
        reviewers = [r[0] for r in conn.execute(
            "INSERT INTO auth.\"user\" (email, display_name, password_hash) "
            "SELECT 'rbench' || i || '@t.org', 'reviewer ' || i, crypt(%s, gen_salt('bf', 4)) "
            "FROM generate_series(1, %s) i RETURNING id", (PASSWORD, n_users))]
        join(conn, project, users, annotator=True)
        join(conn, project, reviewers, reviewer=True)
        conn.execute("INSERT INTO core.image (project_id, storage_key, sha256, width, height, media_type) "
                     "SELECT %s, 'b/' || i, encode(sha256(('bench' || i)::bytea), 'hex'), 512, 512, 'image/png' "
                     "FROM generate_series(1, %s) i", (project, ITEMS))
        rule = conn.execute("SELECT (api.create_work_rule(%s, 'all', %s) ->> 'id')::bigint",
                            (project, ITEMS)).fetchone()[0]
        conn.execute("SELECT api.generate_work_items(%s)", (rule,))
        conn.execute("VACUUM ANALYZE core.work_item")
    return {"project": project, "class": cls, "users": users, "reviewers": reviewers}


def pgbench(url: str, w: dict, clients: int) -> tuple[float, list[float]]:
    """Cycles/s and latency percentiles of the SQL cycle, from pgbench's own per-transaction log."""
    p = conninfo_to_dict(url)
    base = w["users"][0]  # users were inserted in one statement: consecutive ids
    script = f"""
\\set me {base} + :client_id
BEGIN;
SELECT auth.begin_request(:me, s.id::text, '{{dl_annotator}}', '{{"sub": ' || :me || ', "sid": "' || s.id || '"}}') FROM auth.session s WHERE s.user_id = :me AND s.revoked_at IS NULL LIMIT 1;
SELECT (api.next_item({w['project']}) -> 'item' ->> 'id') AS item \\gset
COMMIT;
BEGIN;
SELECT auth.begin_request(:me, s.id::text, '{{dl_annotator}}', '{{"sub": ' || :me || ', "sid": "' || s.id || '"}}') FROM auth.session s WHERE s.user_id = :me AND s.revoked_at IS NULL LIMIT 1;
SELECT api.submit_annotation(:item, '{{"class": {w['class']}}}'::jsonb);
COMMIT;
"""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cycle.sql"
        path.write_text(script)
        cmd = [str(_pg_bin() / "pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
               "-T", str(int(SECONDS)), "-f", str(path), "-l", "--log-prefix", str(Path(tmp) / "log"),
               "-h", p["host"], "-p", str(p["port"]), "-U", p["user"], p["dbname"]]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if out.returncode != 0:
            raise SystemExit(f"pgbench failed:\n{out.stderr[-2000:]}")
        tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))
        lat = []
        for log in Path(tmp).glob("log.*"):
            lat += [int(line.split()[2]) / 1000 for line in log.read_text().splitlines()]
    return tps, lat


def _pg_bin() -> Path:
    sys.path.insert(0, str(ROOT))
    from app.ops.cluster import pg_bin

    return pg_bin()


class Http:
    """A minimal keep-alive HTTP/1.1 client: one connection, one request at a time, Content-Length bodies."""

    def __init__(self, port: int, token: str):
        self.port, self.auth = port, f"Bearer {token}"

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, path: str, body: dict) -> tuple[int, dict]:
        data = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {self.auth}\r\n"
                          f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
        return status, json.loads(await self.reader.readexactly(length))


async def cycle_run(port: int, tokens: list[str], take: tuple[str, dict], finish) -> tuple[float, list[float], int]:
    """One connection per person, as fast as they can: take an item (path, body), then finish it (a function of
    the item giving path and body). Returns cycles/s, cycle latencies (ms) and failed calls."""
    lat: list[float] = []
    errors = 0
    stop = time.monotonic() + SECONDS

    async def person(token: str) -> None:
        nonlocal errors
        client = Http(port, token)
        await client.open()
        while time.monotonic() < stop:
            t = time.perf_counter()
            s1, got = await client.post(*take)
            if s1 != 200 or got.get("item") is None:
                errors += 1
                continue
            s2, _ = await client.post(*finish(got["item"]))
            if s2 != 200:
                errors += 1
                continue
            lat.append((time.perf_counter() - t) * 1000)
        client.writer.close()

    started = time.monotonic()
    await asyncio.gather(*(person(t) for t in tokens))
    return len(lat) / (time.monotonic() - started), lat, errors


def http_run(port: int, tokens: list[str], project: int, cls: int):
    return cycle_run(port, tokens, ("/rpc/next_item", {"project_id": project}),
                     lambda item: ("/rpc/submit_annotation", {"item_id": item["id"], "content": {"class": cls}}))


def review_run(port: int, tokens: list[str], project: int):
    return cycle_run(port, tokens, ("/rpc/next_review", {"project_id": project}),
                     lambda item: ("/rpc/approve", {"item_id": item["id"], "comment": ""}))


def double_assignments(url: str, project: int) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("""
            SELECT count(*) FROM (SELECT e.entity_id FROM audit.event e JOIN core.work_item w ON w.id = e.entity_id
                                   WHERE e.entity = 'work_item' AND e.action = 'next_item' AND w.project_id = %s
                                   GROUP BY e.entity_id HAVING count(*) > 1) x""", (project,)).fetchone()[0]


def main() -> None:
    url = os.environ["DATABASE_URL"]
    t = time.monotonic()
    w = setup(url)
    print(f"setup: {ITEMS} items, {len(w['users'])} annotators in {time.monotonic() - t:.1f} s; "
          f"{SECONDS:.0f} s per run, {os.cpu_count()} cores shared by PostgreSQL, the app and the load generator")
    proc, port = start_app(url, DL_POOL_SIZE="32")
    try:
        tokens = [sign_in(port, f"bench{i}@t.org", PASSWORD) for i in range(1, len(w["users"]) + 1)]
        print(f"{'clients':>7} | {'SQL cycles/s':>12} {'p50':>6} {'p99':>6} | {'HTTP cycles/s':>13} {'p50':>6} "
              f"{'p95':>6} {'p99':>6} | {'HTTP/SQL':>8} | {'app RSS':>7} | errors")
        for n in CLIENTS:
            sql_tps, sql_lat = pgbench(url, w, n)
            http_tps, http_lat, errors = asyncio.run(http_run(port, tokens[:n], w["project"], w["class"]))
            print(f"{n:>7} | {sql_tps:>12.0f} {pct(sql_lat, 50):>6.1f} {pct(sql_lat, 99):>6.1f} | {http_tps:>13.0f} "
                  f"{pct(http_lat, 50):>6.1f} {pct(http_lat, 95):>6.1f} {pct(http_lat, 99):>6.1f} | "
                  f"{http_tps / sql_tps:>7.0%} | {rss_mb(proc.pid):>5.0f}MB | {errors}", flush=True)
        print(f"double assignments (audit log): {double_assignments(url, w['project'])}")
        rtokens = [sign_in(port, f"rbench{i}@t.org", PASSWORD) for i in range(1, len(w["reviewers"]) + 1)]
        print(f"\nreview cycle over HTTP (next_review + approve)\n{'clients':>7} | {'cycles/s':>8} {'p50':>6} "
              f"{'p95':>6} {'p99':>6} | errors")
        for n in CLIENTS:
            tps, lat, errors = asyncio.run(review_run(port, rtokens[:n], w["project"]))
            print(f"{n:>7} | {tps:>8.0f} {pct(lat, 50):>6.1f} {pct(lat, 95):>6.1f} {pct(lat, 99):>6.1f} | {errors}",
                  flush=True)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
