"""Server cost of one next_item and one submit_annotation, then of one next_review and one approve (which writes
the item's final labels and its image's agreement rows): a single client, warm plans, synchronous_commit off
(so the figure is CPU, not the disk), medians and p95 over 1,000 cycles. The number to drive down when tuning the
annotator hot path; bench/http_cycle.py shows what contention and HTTP add on top.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _people import join, organization  # noqa: E402

CYCLES = int(os.environ.get("DL_BENCH_CYCLES", "1000"))


def main() -> None:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        tag = str(time.time_ns())
        org, admin = organization(conn, f"latency {tag}", f"lat-admin-{tag}@t.org")
        conn.execute("SELECT set_config('request.jwt.claims', %s, false)", (json.dumps({"sub": admin}),))
        project = conn.execute("SELECT (api.create_project(%s, organization_id => %s) ->> 'id')::bigint",
                               (f"latency {tag}", org)).fetchone()[0]
        cls = conn.execute("SELECT (api.upsert_taxonomy_node(%s, 'MEL', 'Melanoma') ->> 'id')::bigint",
                           (project,)).fetchone()[0]
        user = conn.execute("INSERT INTO auth.\"user\" (email, display_name) VALUES (%s, 'a') RETURNING id",
                            (f"lat-ann-{tag}@t.org",)).fetchone()[0]
        reviewer = conn.execute("INSERT INTO auth.\"user\" (email, display_name) VALUES (%s, 'r') RETURNING id",
                                (f"lat-rev-{tag}@t.org",)).fetchone()[0]
        join(conn, project, [user], annotator=True)
        join(conn, project, [reviewer], reviewer=True)
        conn.execute("INSERT INTO core.image (project_id, storage_key, sha256, width, height, media_type) "
                     "SELECT %s, 'l/' || i, encode(sha256((%s || i)::bytea), 'hex'), 512, 512, 'image/png' "
                     "FROM generate_series(1, %s) i", (project, tag, CYCLES + 100))
        rule = conn.execute("SELECT (api.create_work_rule(%s, 'all', %s) ->> 'id')::bigint",
                            (project, CYCLES + 100)).fetchone()[0]
        conn.execute("SELECT api.generate_work_items(%s)", (rule,))
        conn.execute("VACUUM ANALYZE core.work_item")
        conn.execute("SELECT set_config('role', 'dl_annotator', false), set_config('request.jwt.claims', %s, false)",
                     (json.dumps({"sub": user}),))
        conn.execute("SET synchronous_commit = off")
        claim, submit = [], []
        content = json.dumps({"class": cls})
        for i in range(CYCLES + 50):
            t0 = time.perf_counter()
            item = conn.execute("SELECT (api.next_item(%s) -> 'item' ->> 'id')::bigint", (project,)).fetchone()[0]
            t1 = time.perf_counter()
            conn.execute("SELECT api.submit_annotation(%s, %s::jsonb)", (item, content))
            t2 = time.perf_counter()
            if i >= 50:  # plans warm
                claim.append((t1 - t0) * 1000)
                submit.append((t2 - t1) * 1000)
        conn.execute("SELECT set_config('role', 'dl_reviewer', false), set_config('request.jwt.claims', %s, false)",
                     (json.dumps({"sub": reviewer}),))
        take, approve = [], []
        for i in range(CYCLES + 50):
            t0 = time.perf_counter()
            item = conn.execute("SELECT (api.next_review(%s) -> 'item' ->> 'id')::bigint", (project,)).fetchone()[0]
            t1 = time.perf_counter()
            conn.execute("SELECT api.approve(%s)", (item,))
            t2 = time.perf_counter()
            if i >= 50:
                take.append((t1 - t0) * 1000)
                approve.append((t2 - t1) * 1000)
    for name, xs in (("next_item", claim), ("submit_annotation", submit), ("next_review", take), ("approve", approve)):
        xs.sort()
        print(f"{name:18} median {statistics.median(xs):.3f} ms   p95 {xs[int(0.95 * len(xs))]:.3f} ms   "
              f"({len(xs)} calls, one client, synchronous_commit off)")


if __name__ == "__main__":
    main()
