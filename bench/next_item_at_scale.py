"""next_item latency with 1,000,000 items in the queue and 200 annotators holding locks.

The 200 holders each took an item (in_progress, lock live) before the clock starts; then 1, 4 and 16 other
annotators claim and submit as fast as they can, each on its own connection, every call after the app's
per-request statement (auth.begin_request: session checked, role picked from the memberships, claims set). Prints
next_item p50/p95/p99 and claims per second, and checks that no item went to two people.

    BENCH=bench/next_item_at_scale.py make bench     # DL_BENCH_ITEMS=1000000 DL_BENCH_SECONDS=10
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _people import join, organization, sessions  # noqa: E402

from app.server.db import BEGIN_REQUEST  # noqa: E402  (the app's per-request statement)

ITEMS = int(os.environ.get("DL_BENCH_ITEMS", "1000000"))
HOLDERS = 200
SECONDS = float(os.environ.get("DL_BENCH_SECONDS", "10"))
CLIENTS = [1, 4, 16]


def setup(conn: psycopg.Connection) -> dict:
    conn.execute("SELECT set_config('request.jwt.claims', '', false)")
    org, admin = organization(conn, "next_item at scale", "scale-admin@t.org")
    conn.execute("SELECT set_config('request.jwt.claims', %s, false)", (json.dumps({"sub": admin}),))
    project = conn.execute("SELECT (api.create_project('next_item at scale', organization_id => %s) "
                           "->> 'id')::bigint", (org,)).fetchone()[0]
    cls = conn.execute("SELECT (api.upsert_taxonomy_node(%s, 'MEL', 'Melanoma') ->> 'id')::bigint",
                       (project,)).fetchone()[0]
    users = [r[0] for r in conn.execute(
        "INSERT INTO auth.\"user\" (email, display_name) SELECT 'scale' || i || '@t.org', 's' || i "
        "FROM generate_series(1, %s) i RETURNING id", (HOLDERS + max(CLIENTS),))]
    join(conn, project, users, annotator=True)
    sids = sessions(conn, users)
    t = time.monotonic()
    conn.execute("INSERT INTO core.image (project_id, storage_key, sha256, width, height, media_type) "
                 "SELECT %s, 's/' || i, encode(sha256(('scale' || i)::bytea), 'hex'), 512, 512, 'image/png' "
                 "FROM generate_series(1, %s) i", (project, ITEMS))
    rule = conn.execute("SELECT (api.create_work_rule(%s, 'all', %s) ->> 'id')::bigint", (project, ITEMS)).fetchone()[0]
    conn.execute("SELECT api.generate_work_items(%s)", (rule,))
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE core.work_item")
    conn.autocommit = False
    loaded = time.monotonic() - t
    for holder in users[:HOLDERS]:
        with conn.transaction():
            conn.execute(BEGIN_REQUEST, request(holder, sids[holder]))
            conn.execute("SELECT api.next_item(%s)", (project,))
    conn.commit()
    held = conn.execute("SELECT count(*) FROM core.work_item WHERE project_id = %s AND status = 'in_progress' "
                        "AND lock_expires_at > now()", (project,)).fetchone()[0]
    return {"project": project, "class": cls, "workers": users[HOLDERS:], "sessions": sids, "loaded": loaded,
            "held": held}


def request(user: int, session: str) -> tuple:
    """BEGIN_REQUEST's parameters for an annotator's call (next_item and submit_annotation are theirs alone)."""
    return user, session, ["dl_annotator"], json.dumps({"sub": user, "sid": session})


def run(url: str, w: dict, clients: int) -> tuple[list[float], int]:
    lat: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS
    content = json.dumps({"class": w["class"]})

    def annotator(me: int) -> None:
        mine = []
        with psycopg.connect(url) as conn:
            params = request(me, w["sessions"][me])
            while time.monotonic() < stop:
                with conn.transaction():
                    t = time.perf_counter()
                    conn.execute(BEGIN_REQUEST, params)
                    item = conn.execute("SELECT (api.next_item(%s) -> 'item' ->> 'id')::bigint",
                                        (w["project"],)).fetchone()[0]
                mine.append((time.perf_counter() - t) * 1000)
                with conn.transaction():
                    conn.execute(BEGIN_REQUEST, params)
                    conn.execute("SELECT api.submit_annotation(%s, %s::jsonb)", (item, content))
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=annotator, args=(w["workers"][i],)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, len(lat)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def main() -> None:
    url = os.environ["DATABASE_URL"]
    with psycopg.connect(url) as conn:
        w = setup(conn)
    print(f"{ITEMS:,} items loaded and analysed in {w['loaded']:.1f} s; {w['held']} annotators hold a live lock; "
          f"{SECONDS:.0f} s per run, synchronous_commit on")
    print(f"{'clients':>7} | {'claims/s':>8} | {'next_item p50':>13} {'p95':>6} {'p99':>6} ms")
    for n in CLIENTS:
        lat, count = run(url, w, n)
        print(f"{n:>7} | {count / SECONDS:>8.0f} | {pct(lat, 50):>13.2f} {pct(lat, 95):>6.2f} {pct(lat, 99):>6.2f}",
              flush=True)
    with psycopg.connect(url) as conn:
        doubles = conn.execute("""
            SELECT count(*) FROM (SELECT e.entity_id FROM audit.event e JOIN core.work_item w ON w.id = e.entity_id
                                   WHERE e.entity = 'work_item' AND e.action = 'next_item' AND w.project_id = %s
                                   GROUP BY e.entity_id HAVING count(*) > 1) x""", (w["project"],)).fetchone()[0]
    print(f"double assignments (audit log): {doubles}")


if __name__ == "__main__":
    main()
