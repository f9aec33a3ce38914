"""Every `core` helper that two or more repeatables call says what it does for its callers: a COMMENT ON FUNCTION,
read from the migrated database (pg_proc, pg_description), for each function whose name the files call."""
import re

import psycopg

from conftest import ROOT

# core helpers known to lack a comment, each with where it is to be written. Remove an entry once its comment lands
# (the test fails on a stale entry, so the list only shrinks).
PENDING: dict[str, str] = {}


def callers() -> dict[str, set[str]]:
    """{core function name: the R__ files that call it}: `core.name(` outside `--` comments (a trigger's EXECUTE
    FUNCTION and dynamic SQL count; a mention in prose does not)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "db" / "functions").glob("R__*.sql")):
        code = re.sub(r"--[^\n]*", "", path.read_text())
        for name in re.findall(r'\bcore\."?(\w+)"?\s*\(', code, re.I):
            found.setdefault(name.lower(), set()).add(path.name)
    return found


def test_core_helpers_used_by_several_files_have_a_comment(database_url: str):
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("""
            SELECT p.proname, p.oid::regprocedure::text, obj_description(p.oid, 'pg_proc') IS NOT NULL
              FROM pg_proc p WHERE p.pronamespace = 'core'::regnamespace""").fetchall()
    functions: dict[str, list[tuple[str, bool]]] = {}
    for name, signature, commented in rows:
        functions.setdefault(name, []).append((signature, commented))
    shared = {name: files for name, files in callers().items() if name in functions and len(files) >= 2}
    assert "invalid" in shared and "audit" in shared, "the scan of db/functions found too little"

    missing = [f"{signature} (called from {', '.join(sorted(shared[name]))})"
               for name in sorted(shared) if name not in PENDING
               for signature, commented in functions[name] if not commented]
    assert not missing, ("these core helpers are called from several R__ files and have no COMMENT ON FUNCTION "
                         "saying what they do for their callers:\n  " + "\n  ".join(missing))

    stale = [name for name in PENDING
             if name not in shared or all(commented for _, commented in functions.get(name, []))]
    assert not stale, f"remove from PENDING (commented now, or no longer shared): {stale}"


def test_the_scan_sees_calls_and_not_prose():
    found = callers()
    assert {"R__ai_queue.sql", "R__ai_results.sql", "R__rules.sql"} <= found["ai_rekey"]  # PERFORM core.ai_rekey(
    assert "R__audit.sql" in found["refuse_change"]  # EXECUTE FUNCTION core.refuse_change(), also in dynamic SQL
    assert "R__access.sql" in found["item_document"]
