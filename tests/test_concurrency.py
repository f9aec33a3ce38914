"""Races are proven with many real connections at once, not by reasoning."""
from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import psycopg
import pytest

from sqlcall import call, make_project


def _run(n: int, target) -> list:
    results: list = [None] * n
    errors: list = []

    def wrap(i: int) -> None:
        try:
            results[i] = target(i)
        except Exception as exc:  # surfaced by the assertion below, with the thread's error
            errors.append(repr(exc))

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:3]
    return results


@pytest.fixture
def conn(database_url):
    with psycopg.connect(database_url, autocommit=False) as c:
        yield c


def test_32_annotators_drain_2000_items_each_exactly_once(database_url, conn):
    w = make_project(conn, uuid.uuid4().hex[:8], n_images=2000, annotators=32, reviewers=0)
    project, cls = w["project"], w["class"]

    def annotate(i: int) -> list[int]:
        me = w["annotators"][i]
        done = []
        with psycopg.connect(database_url) as c:
            while True:
                item = call(c, me, "annotator", "next_item", project_id=project)["item"]
                if item is None:
                    return done
                out = call(c, me, "annotator", "submit_annotation", item_id=item["id"], content={"class": cls})
                assert out["revision_seq"] == 1
                done.append(item["id"])

    per_thread = _run(32, annotate)
    handled = Counter(i for items in per_thread for i in items)
    assert len(handled) == 2000 and set(handled.values()) == {1}, "an item was handed to two annotators"
    assert sum(1 for items in per_thread if items) >= 16, "the work should have been shared"
    with conn.transaction():
        statuses = conn.execute("SELECT status::text, count(*) FROM core.work_item WHERE project_id = %s "
                                "GROUP BY 1", (project,)).fetchall()
        seqs = conn.execute("SELECT count(*), count(DISTINCT item_id), min(revision_seq), max(revision_seq) "
                            "FROM core.annotation_revision r JOIN core.work_item w ON w.id = r.item_id "
                            "WHERE w.project_id = %s", (project,)).fetchone()
        # the audit log says each item was claimed exactly once, by the annotator who submitted it
        claims = conn.execute("""
            SELECT count(*) FROM (SELECT e.entity_id FROM audit.event e JOIN core.work_item w ON w.id = e.entity_id
                                   WHERE e.entity = 'work_item' AND e.action = 'next_item' AND w.project_id = %s
                                   GROUP BY e.entity_id HAVING count(*) > 1) x""", (project,)).fetchone()[0]
    assert statuses == [("review", 2000)]
    assert seqs == (2000, 2000, 1, 1)
    assert claims == 0


def test_concurrent_submits_keep_revision_seq_gapless(database_url, conn):
    w = make_project(conn, uuid.uuid4().hex[:8], n_images=1, annotators=1, reviewers=1)
    project, cls, me, rev = w["project"], w["class"], w["annotators"][0], w["reviewers"][0]
    item = call(conn, me, "annotator", "next_item", project_id=project)["item"]["id"]
    for round_ in range(1, 11):
        barrier = threading.Barrier(8)

        def submit(_: int) -> str:
            with psycopg.connect(database_url) as c:
                barrier.wait()
                try:
                    call(c, me, "annotator", "submit_annotation", item_id=item, content={"class": cls})
                    return "ok"
                except psycopg.Error as exc:
                    return exc.diag.sqlstate

        outcomes = Counter(_run(8, submit))
        assert outcomes == {"ok": 1, "PT409": 7}, f"round {round_}: {outcomes}"
        call(conn, rev, "reviewer", "next_review", project_id=project)
        call(conn, rev, "reviewer", "request_changes", item_id=item, comment=f"round {round_}")
        call(conn, me, "annotator", "next_item", project_id=project)
    with conn.transaction():
        seqs = [r[0] for r in conn.execute(
            "SELECT revision_seq FROM core.annotation_revision WHERE item_id = %s ORDER BY revision_seq", (item,))]
    assert seqs == list(range(1, 11))


def test_8_reviewers_never_review_an_item_twice_at_one_stage(database_url, conn):
    w = make_project(conn, uuid.uuid4().hex[:8], n_images=400, annotators=4, reviewers=8, stages=2)
    project, cls = w["project"], w["class"]
    for a in w["annotators"]:
        while (item := call(conn, a, "annotator", "next_item", project_id=project)["item"]) is not None:
            call(conn, a, "annotator", "submit_annotation", item_id=item["id"], content={"class": cls})

    def review(i: int) -> list[tuple[int, int]]:
        me = w["reviewers"][i]
        seen = []
        deadline = time.monotonic() + 120
        with psycopg.connect(database_url) as c:
            while time.monotonic() < deadline:
                item = call(c, me, "reviewer", "next_review", project_id=project)["item"]
                if item is None:
                    # An empty queue is not the end: an item another reviewer holds at stage 1 comes back at stage 2,
                    # and its stage-1 reviewer may not take it. Stop when nothing is left in review.
                    with c.transaction():
                        left = c.execute("SELECT count(*) FROM core.work_item WHERE project_id = %s "
                                         "AND status = 'review'", (project,)).fetchone()[0]
                    if left == 0:
                        return seen
                    time.sleep(0.01)
                    continue
                seen.append((item["id"], item["review_stage"]))
                call(c, me, "reviewer", "approve", item_id=item["id"])
            return seen

    per_thread = _run(8, review)
    taken = Counter(x for seen in per_thread for x in seen)
    twice = {k: v for k, v in taken.items() if v > 1}
    with conn.transaction():
        items = [r[0] for r in conn.execute("SELECT id FROM core.work_item WHERE project_id = %s", (project,))]
    never = sorted({(i, s) for i in items for s in (1, 2)} - set(taken))
    assert not twice and not never, f"taken twice: {twice}; never taken: {never}"
    with conn.transaction():
        done = conn.execute("SELECT count(*) FROM core.work_item WHERE project_id = %s AND status = 'done'",
                            (project,)).fetchone()[0]
        same = conn.execute("""SELECT count(*) FROM core.review a JOIN core.review b
                                 ON a.item_id = b.item_id AND a.stage = 1 AND b.stage = 2
                                AND a.reviewer_id = b.reviewer_id
                               JOIN core.work_item w ON w.id = a.item_id WHERE w.project_id = %s""",
                            (project,)).fetchone()[0]
    assert done == 400 and same == 0


def test_expired_locks_are_taken_over_by_exactly_one_annotator(database_url, conn):
    w = make_project(conn, uuid.uuid4().hex[:8], n_images=200, annotators=17, reviewers=0)
    project, first = w["project"], w["annotators"][0]
    with conn.transaction():
        # every item in progress for `first`, every lock lapsed an hour ago
        conn.execute("SELECT set_config('dl.action', 'next_item', true)")
        conn.execute("""UPDATE core.work_item SET status = 'in_progress', annotator_id = %(u)s, assignee_id = %(u)s,
                               locked_at = now() - interval '2 h', lock_expires_at = now() - interval '1 h'
                         WHERE project_id = %(p)s""", {"u": first, "p": project})

    def take_over(i: int) -> list[int]:
        me = w["annotators"][i + 1]
        got = []
        with psycopg.connect(database_url) as c:
            while True:
                item = call(c, me, "annotator", "next_item", project_id=project)["item"]
                if item is None:
                    return got
                got.append(item["id"])
                call(c, me, "annotator", "submit_annotation", item_id=item["id"], content={"class": w["class"]})

    per_thread = _run(16, take_over)
    taken = Counter(i for got in per_thread for i in got)
    assert len(taken) == 200 and set(taken.values()) == {1}, "an expired item was taken over twice"


def test_concurrent_uploads_and_cancels_never_exceed_max_items(database_url, conn):
    """16 admins register images into one rule of 60 items at once while one cancels items: the rule never holds
    more than max_items, and its kept count (work_rule.items) always equals a count of its items."""
    w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=0, reviewers=0)
    project, admin = w["project"], w["admin"]
    rule = call(conn, admin, "admin", "create_work_rule", project_id=project, name="capped", max_items=60)["id"]

    def upload(i: int) -> int:
        with psycopg.connect(database_url) as c:
            for k in range(10):
                sha = uuid.uuid4().hex * 2
                call(c, admin, "admin", "register_image", project_id=project, storage_key=f"c/{i}/{k}", sha256=sha,
                     width=10, height=10, media_type="image/png")
        return 10

    def cancel(_: int) -> int:
        cancelled = 0
        with psycopg.connect(database_url) as c:
            for _ in range(40):
                row = c.execute("SELECT id FROM core.work_item WHERE rule_id = %s AND status = 'new' "
                                "ORDER BY random() LIMIT 1", (rule,)).fetchone()
                c.commit()
                if row:
                    call(c, admin, "admin", "cancel_item", item_id=row[0], comment="test")
                    cancelled += 1
                time.sleep(0.005)
        return cancelled

    results = _run(17, lambda i: upload(i) if i < 16 else cancel(i))
    with conn.transaction():
        kept, counted, images = conn.execute(
            "SELECT r.items, (SELECT count(*) FROM core.work_item w WHERE w.rule_id = r.id "
            "AND w.status <> 'cancelled' AND NOT w.gold_check), "
            "(SELECT count(*) FROM core.image WHERE project_id = r.project_id) FROM core.work_rule r WHERE r.id = %s",
            (rule,)).fetchone()
    assert images == 160 and results[16] > 0
    assert kept == counted <= 60, "the kept count drifted from the items, or the rule went past max_items"
    # the room cancels made is filled by the next uploads, up to max_items exactly
    upload(99)
    with conn.transaction():
        kept, counted = conn.execute(
            "SELECT r.items, (SELECT count(*) FROM core.work_item w WHERE w.rule_id = r.id "
            "AND w.status <> 'cancelled' AND NOT w.gold_check) FROM core.work_rule r WHERE r.id = %s", (rule,)).fetchone()
    assert kept == counted == 60
