"""The invariants checked in SQL after a load run. Each returns the violations it found (empty = holds), with a few
samples so a failure says what broke. They read the tables and the audit log as the superuser."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg

from load import Outcomes

SAMPLES = 5


@dataclass
class Expired:
    """A lock the fault injector expired on purpose: item, its holder then, and when."""
    item: int
    holder: int
    at: object  # timestamptz


def never_two_holders(conn: psycopg.Connection, project: int, expired: list[Expired]) -> list:
    """No item was ever held by two people at once: in the audit log the holder only changes from one person to
    another (without the item being set free in between) where that lock had expired."""
    allowed = [e.item for e in expired]
    return conn.execute("""
        SELECT e.entity_id, e.action, e.before ->> 'assignee_id', e.after ->> 'assignee_id', e.at
          FROM audit.event e JOIN core.work_item w ON w.id = e.entity_id
         WHERE e.entity = 'work_item' AND w.project_id = %s
           AND e.before ->> 'assignee_id' IS NOT NULL AND e.after ->> 'assignee_id' IS NOT NULL
           AND e.before ->> 'assignee_id' <> e.after ->> 'assignee_id'
           AND NOT e.entity_id = ANY(%s)
         LIMIT %s""", (project, allowed, SAMPLES)).fetchall()


def audit_chain_unbroken(conn: psycopg.Connection, project: int) -> list:
    """Each audited change of an item starts from where the previous one ended: no update was lost or made
    from a stale read."""
    return conn.execute("""
        SELECT entity_id, id, before, prev_after FROM (
            SELECT e.entity_id, e.id, e.before,
                   lag(e.after) OVER (PARTITION BY e.entity_id ORDER BY e.id) AS prev_after
              FROM audit.event e JOIN core.work_item w ON w.id = e.entity_id
             WHERE e.entity = 'work_item' AND w.project_id = %s) x
         WHERE prev_after IS NOT NULL
           AND (before ->> 'status', before ->> 'assignee_id', before ->> 'annotator_id')
               IS DISTINCT FROM (prev_after ->> 'status', prev_after ->> 'assignee_id', prev_after ->> 'annotator_id')
         LIMIT %s""", (project, SAMPLES)).fetchall()


def revision_seq_gapless(conn: psycopg.Connection, project: int) -> list:
    """Per item the revisions are numbered 1..n without a gap or a repeat, and the item knows n."""
    return conn.execute("""
        SELECT w.id, w.last_revision_seq, count(r.id), min(r.revision_seq), max(r.revision_seq),
               count(DISTINCT r.revision_seq)
          FROM core.work_item w LEFT JOIN core.annotation_revision r ON r.item_id = w.id
         WHERE w.project_id = %s
         GROUP BY w.id
        HAVING count(r.id) <> coalesce(max(r.revision_seq), 0) OR count(DISTINCT r.revision_seq) <> count(r.id)
            OR coalesce(min(r.revision_seq), 1) <> 1 OR w.last_revision_seq <> count(r.id)
         LIMIT %s""", (project, SAMPLES)).fetchall()


def acknowledged_writes_present(conn: psycopg.Connection, project: int, out: Outcomes) -> list:
    """Every submit, review decision and upload the client got a 200 for is in the database (and by whom)."""
    missing = []
    subs = [(i, s, e) for i, s, e in out.submits]
    if subs:
        missing += conn.execute("""
            SELECT a.item, a.seq, a.email FROM unnest(%s::bigint[], %s::int[], %s::text[]) a(item, seq, email)
             WHERE NOT EXISTS (SELECT 1 FROM core.annotation_revision r JOIN auth."user" u ON u.id = r.author_id
                                WHERE r.item_id = a.item AND r.revision_seq = a.seq
                                  AND u.email OPERATOR(public.=) a.email::public.citext)
             LIMIT %s""", ([i for i, _, _ in subs], [s for _, s, _ in subs], [e for _, _, e in subs],
                           SAMPLES)).fetchall()
    decided: dict[int, int] = {}
    for item, _ in out.decisions:
        decided[item] = decided.get(item, 0) + 1
    if decided:
        missing += conn.execute("""
            SELECT a.item, a.n, count(r.id) FROM unnest(%s::bigint[], %s::int[]) a(item, n)
              LEFT JOIN core.review r ON r.item_id = a.item
             GROUP BY a.item, a.n HAVING count(r.id) < a.n LIMIT %s""",
                                (list(decided), list(decided.values()), SAMPLES)).fetchall()
    if out.uploads:
        missing += conn.execute("""
            SELECT a.id FROM unnest(%s::bigint[]) a(id)
             WHERE NOT EXISTS (SELECT 1 FROM core.image i WHERE i.id = a.id AND i.project_id = %s)
             LIMIT %s""", (out.uploads, project, SAMPLES)).fetchall()
    return missing


def uploaded_bytes_present(conn: psycopg.Connection, out: Outcomes, image_root: Path) -> list:
    """Every acknowledged upload's bytes are in storage under the key its row names (bytes first, row second)."""
    keys = conn.execute("SELECT id, storage_key FROM core.image WHERE id = ANY(%s)", (out.uploads,)).fetchall()
    return [(i, k) for i, k in keys if not (image_root / k).is_file()][:SAMPLES]


def status_matches_last_event(conn: psycopg.Connection, project: int) -> list:
    """An item's status and holder are what its last audited change left them as; untouched items are new."""
    return conn.execute("""
        SELECT w.id, w.status, w.assignee_id, last.after
          FROM core.work_item w
          LEFT JOIN LATERAL (SELECT e.after FROM audit.event e WHERE e.entity = 'work_item' AND e.entity_id = w.id
                              ORDER BY e.id DESC LIMIT 1) last ON true
         WHERE w.project_id = %s
           AND CASE WHEN last.after IS NULL THEN w.status <> 'new'
                    ELSE (w.status::text, w.assignee_id::text) IS DISTINCT FROM
                         (last.after ->> 'status', last.after ->> 'assignee_id') END
         LIMIT %s""", (project, SAMPLES)).fetchall()


def no_write_on_expired_lock(conn: psycopg.Connection, expired: list[Expired]) -> list:
    """Once a lock had expired, its holder's submit, draft or rejection was refused, unless they had taken the
    item again first (their own expired item is handed back to them if nobody else took it)."""
    if not expired:
        return []
    return conn.execute("""
        SELECT x.item, x.holder, r.revision_seq, r.created_at
          FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) x(item, holder, at)
          JOIN core.annotation_revision r ON r.item_id = x.item AND r.author_id = x.holder AND r.created_at > x.at
         WHERE NOT EXISTS (SELECT 1 FROM audit.event e
                            WHERE e.entity = 'work_item' AND e.entity_id = x.item AND e.action = 'next_item'
                              AND (e.after ->> 'assignee_id')::bigint = x.holder AND e.at > x.at
                              AND e.at < r.created_at)
         LIMIT %s""", ([e.item for e in expired], [e.holder for e in expired], [e.at for e in expired],
                       SAMPLES)).fetchall()


def check_all(conn: psycopg.Connection, project: int, out: Outcomes, expired: list[Expired],
              image_root: Path) -> dict[str, list]:
    """Every invariant by name -> its violations."""
    with conn.transaction():
        return {
            "never two holders at once (audit log)": never_two_holders(conn, project, expired),
            "audit chain unbroken (no lost update)": audit_chain_unbroken(conn, project),
            "revision_seq gapless per item": revision_seq_gapless(conn, project),
            "every acknowledged write present": acknowledged_writes_present(conn, project, out),
            "every acknowledged upload's bytes stored": uploaded_bytes_present(conn, out, image_root),
            "status = the last audit event's": status_matches_last_event(conn, project),
            "no write on an expired lock": no_write_on_expired_lock(conn, expired),
        }
