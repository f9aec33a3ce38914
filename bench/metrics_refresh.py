"""Metrics refresh at scale: 1,000,000 work items and 3,000,000 revisions (with reviews, flags and double
annotation) spread over 90 days, then each view's refresh time (CONCURRENTLY, as the schedule runs it) and the
whole refresh: the first (which seals the 89 past days once) and the steady state the schedule sees.

    BENCH=bench/metrics_refresh.py make bench      # DL_BENCH_ITEMS=1000000 DL_BENCH_REVISIONS=3
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _people import join, organization  # noqa: E402

ITEMS = int(os.environ.get("DL_BENCH_ITEMS", "1000000"))
PER_ITEM = int(os.environ.get("DL_BENCH_REVISIONS", "3"))  # revisions per annotated item (2 sent back, 1 approved)
ANNOTATORS = 200


def setup(conn: psycopg.Connection) -> None:
    """Bulk SQL, triggers off for the load (session_replication_role): this measures the refresh, not the loading."""
    conn.execute("SET session_replication_role = replica")
    # names of their own: other benches may have run on the same cluster before
    u0 = conn.execute("WITH u AS (INSERT INTO auth.\"user\" (email, display_name) "
                      "SELECT 'metrics-bench-' || i || '@t.org', 'm' || i "
                      "FROM generate_series(1, %s) i RETURNING id) SELECT min(id) FROM u", (ANNOTATORS,)).fetchone()[0]
    org, _ = organization(conn, "metrics bench", "metrics-bench-admin@t.org")
    pid = conn.execute("INSERT INTO core.project (name, organization_id) VALUES ('metrics bench', %s) RETURNING id",
                       (org,)).fetchone()[0]
    join(conn, pid, range(u0, u0 + ANNOTATORS), annotator=True, reviewer=True)
    conn.execute("INSERT INTO core.taxonomy_node (project_id, code, name) "
                 "SELECT %s, 'C' || i, 'class ' || i FROM generate_series(1, 40) i", (pid,))
    c0 = conn.execute("SELECT min(id) FROM core.taxonomy_node WHERE project_id = %s", (pid,)).fetchone()[0]
    rule = conn.execute("INSERT INTO core.work_rule (project_id, name, max_items, annotations_per_image) "
                        "VALUES (%s, 'all', %s, 2) RETURNING id", (pid, ITEMS)).fetchone()[0]
    images = ITEMS // 2
    conn.execute("INSERT INTO core.image (project_id, storage_key, sha256, width, height, media_type) "
                 "SELECT %s, 'm/' || i, md5(i::text) || md5((i + 1)::text), 512, 512, 'image/png' "
                 "FROM generate_series(1, %s) i", (pid, images))
    i0 = conn.execute("SELECT min(id) FROM core.image WHERE project_id = %s", (pid,)).fetchone()[0]
    # 80 % done, the rest spread over the other states; two annotators per image, never the same one twice
    conn.execute("""
        INSERT INTO core.work_item (project_id, image_id, rule_id, slot, status, annotator_id, last_revision_seq,
                                    created_at, updated_at, submitted_at)
        SELECT %(pid)s, %(i0)s + (n / 2), %(rule)s, 1 + n %% 2,
               CASE WHEN n %% 10 < 8 THEN 'done' WHEN n %% 10 = 8 THEN 'review' ELSE 'new' END::core.item_status,
               CASE WHEN n %% 10 < 9 THEN %(u0)s + ((n / 2) %% %(a)s + (n %% 2) * 7) %% %(a)s END,
               CASE WHEN n %% 10 < 9 THEN %(per)s ELSE 0 END,
               now() - (n %% 90) * interval '1 day', now() - (n %% 90) * interval '1 day',
               CASE WHEN n %% 10 < 9 THEN now() - (n %% 90) * interval '1 day' END
          FROM generate_series(0, %(items)s - 1) n""",
                 {"pid": pid, "i0": i0, "rule": rule, "u0": u0, "a": ANNOTATORS, "per": PER_ITEM, "items": ITEMS})
    conn.execute("""
        INSERT INTO core.annotation_revision (item_id, revision_seq, author_id, content, class_id, locked_at,
                                              created_at)
        SELECT w.id, s, w.annotator_id,
               jsonb_build_object('class', cls, 'descriptors', jsonb_build_object('border',
                   CASE WHEN (w.id + s) %% 3 = 0 THEN 'irregular' ELSE 'regular' END)),
               cls, w.created_at + s * interval '1 hour', w.created_at + s * interval '1 hour' + (30 + w.id %% 300) * interval '1 second'
          FROM core.work_item w CROSS JOIN generate_series(1, %(per)s) s
          CROSS JOIN LATERAL (SELECT %(c0)s + (w.image_id + (w.id %% 5 = 0)::int) %% 40 AS cls) c
         WHERE w.project_id = %(pid)s AND w.last_revision_seq > 0""", {"pid": pid, "c0": c0, "per": PER_ITEM})
    conn.execute("""
        INSERT INTO core.review (item_id, revision_id, stage, reviewer_id, decision, comment, created_at)
        SELECT r.item_id, r.id, 1, %(u0)s + (r.author_id - %(u0)s + 1) %% %(a)s,
               CASE WHEN r.revision_seq < w.last_revision_seq THEN 'changes_requested'
                    ELSE 'approved' END::core.review_decision,
               CASE WHEN r.revision_seq < w.last_revision_seq THEN 'again' ELSE '' END,
               r.created_at + interval '2 hours'
          FROM core.annotation_revision r JOIN core.work_item w ON w.id = r.item_id
         WHERE w.project_id = %(pid)s AND (w.status = 'done' OR r.revision_seq < w.last_revision_seq)""",
                 {"pid": pid, "u0": u0, "a": ANNOTATORS})
    conn.execute("INSERT INTO core.work_item_flag (item_id, image_id, reason, raised_by, created_at) "
                 "SELECT w.id, w.image_id, 'bad_quality', %s, w.created_at FROM core.work_item w "
                 "WHERE w.project_id = %s AND w.id %% 997 = 0", (u0, pid))
    conn.execute("SET session_replication_role = origin")
    # the load bypassed the trigger that records final labels as items are approved: rebuild them once
    t = time.monotonic()
    conn.execute("SELECT core.rebuild_final_labels()")
    print(f"final labels rebuilt after the bulk load in {time.monotonic() - t:.1f} s")


def main() -> None:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        t = time.monotonic()
        setup(conn)
        conn.execute("VACUUM ANALYZE")
        counts = conn.execute("SELECT (SELECT count(*) FROM core.work_item), (SELECT count(*) FROM "
                              "core.annotation_revision), (SELECT count(*) FROM core.review)").fetchone()
        print(f"setup: {counts[0]:,} items, {counts[1]:,} revisions, {counts[2]:,} reviews in "
              f"{time.monotonic() - t:.0f} s; {os.cpu_count()} cores")
        # the first refresh seals every day that is over (once; later refreshes seal at most the day just ended)
        t = time.monotonic()
        first = conn.execute("SELECT metrics.refresh_all('bench')").fetchone()[0]
        print(f"first refresh {time.monotonic() - t:.2f} s, of which sealing {first['sealing']['ms'] / 1000:.2f} s "
              f"(every past day, once)")
        for run in (1, 2):
            t = time.monotonic()
            out = conn.execute("SELECT metrics.refresh_all('bench')").fetchone()[0]
            total = time.monotonic() - t
            print(f"run {run}: whole refresh {total:.2f} s (target < 10 s); sealing {out['sealing']['ms']:.0f} ms")
            for view, ms in sorted(out["views_ms"].items(), key=lambda kv: -kv[1]):
                print(f"    {view:<20} {ms / 1000:6.2f} s")


if __name__ == "__main__":
    main()
