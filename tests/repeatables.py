"""Re-apply each repeatable migration alone, as a deploy that changed only that file would, and report what of the
database's catalog disappeared or changed.

Flyway (and our applier) re-apply only the repeatables whose checksum changed. From an empty database every file
runs in name order, which hides a file that drops or alters what another file owns; one ordinary deploy then
breaks the workflow. `python tests/repeatables.py` runs this against $DATABASE_URL (make test does, before pgTAP, so
the pgTAP suite runs against a database where every repeatable was re-applied alone).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.migrate.apply import Migrator  # noqa: E402
from app.migrate.resolve import load_config, resolve  # noqa: E402

# Everything a repeatable may create, with what a deploy must not lose or change: owner, privileges, definition.
# Objects of extensions (pgcrypto, pgTAP, ...) are left out: migrations do not own them.
SNAPSHOT = """
WITH ours AS (SELECT n.oid FROM pg_namespace n
               WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'tap')
                 AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'),
ext AS (SELECT objid FROM pg_depend WHERE deptype = 'e')
SELECT 'function ' || p.oid::regprocedure::text,
       concat_ws(' | ', pg_get_userbyid(p.proowner), p.proacl::text, md5(pg_get_functiondef(p.oid)))
  FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM ours) AND p.oid NOT IN (SELECT objid FROM ext)
       AND p.prokind IN ('f', 'p', 'w')
UNION ALL
SELECT 'relation ' || c.oid::regclass::text,
       concat_ws(' | ', c.relkind, pg_get_userbyid(c.relowner), c.relacl::text,
                 CASE WHEN c.relkind IN ('v', 'm') THEN md5(pg_get_viewdef(c.oid)) END)
  FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ours) AND c.oid NOT IN (SELECT objid FROM ext)
       AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
UNION ALL
SELECT 'trigger ' || t.tgrelid::regclass::text || '.' || t.tgname,
       concat_ws(' | ', t.tgenabled, md5(pg_get_triggerdef(t.oid)))
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE NOT t.tgisinternal AND c.relnamespace IN (SELECT oid FROM ours)
UNION ALL
SELECT 'policy ' || pol.polrelid::regclass::text || '.' || pol.polname,
       md5(concat_ws(' | ', pol.polcmd, pol.polroles::text, pg_get_expr(pol.polqual, pol.polrelid),
                     pg_get_expr(pol.polwithcheck, pol.polrelid)))
  FROM pg_policy pol
UNION ALL
SELECT 'index ' || i.indexrelid::regclass::text, md5(pg_get_indexdef(i.indexrelid))
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace IN (SELECT oid FROM ours)
UNION ALL
SELECT 'schema ' || n.nspname, concat_ws(' | ', pg_get_userbyid(n.nspowner), n.nspacl::text)
  FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM ours)
UNION ALL
SELECT 'type ' || t.oid::regtype::text, pg_get_userbyid(t.typowner)
  FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM ours) AND t.typtype IN ('e', 'd', 'c')
       AND t.oid NOT IN (SELECT objid FROM ext)
       AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
"""


def snapshot(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute(SNAPSHOT).fetchall())


def diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What a re-apply lost, changed or added, one line each."""
    lines = [f"lost {k}" for k in sorted(before.keys() - after.keys())]
    lines += [f"changed {k}: {before[k]} -> {after[k]}" for k in sorted(before.keys() & after.keys())
              if before[k] != after[k]]
    lines += [f"added {k}" for k in sorted(after.keys() - before.keys())]
    return lines


def reapply_one(url: str, migrator: Migrator, script: str) -> None:
    """Make the applier see `script` as changed (its recorded checksum no longer matches), then migrate: exactly
    what a deploy that edited only this file does."""
    table = f'"{migrator.config.schema}"."{migrator.config.table}"'
    with psycopg.connect(url) as conn:
        conn.execute(f"UPDATE {table} SET checksum = coalesce(checksum, 0) # 1 WHERE installed_rank = "
                     f"(SELECT max(installed_rank) FROM {table} WHERE script = %s AND version IS NULL)", (script,))
    applied = migrator.migrate()
    if applied != 1:
        raise AssertionError(f"{script}: expected the applier to re-apply 1 file, it applied {applied}")


def check_each(url: str, conf: Path = ROOT / "flyway.conf") -> dict[str, list[str]]:
    """Re-apply every repeatable alone, in turn; returns {script: differences} for the files that changed the
    catalog (empty when every repeatable owns what it creates and nothing else)."""
    config = load_config(conf)
    migrator = Migrator(url, config, out=lambda _: None)
    scripts = [m.script for m in resolve(config, {"flyway:database": "x", "flyway:user": "x",
                                                  "flyway:defaultSchema": config.schema,
                                                  "flyway:table": config.table})
               if m.repeatable]
    problems: dict[str, list[str]] = {}
    for script in scripts:
        before = snapshot(url)
        reapply_one(url, migrator, script)
        if changes := diff(before, snapshot(url)):
            problems[script] = changes
    return problems


def main() -> int:
    problems = check_each(os.environ["DATABASE_URL"])
    for script, changes in problems.items():
        print(f"re-applying {script} alone changed the database:", file=sys.stderr)
        for line in changes[:20]:
            print(f"  {line}", file=sys.stderr)
    if not problems:
        print("every repeatable re-applied alone; nothing lost or changed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
