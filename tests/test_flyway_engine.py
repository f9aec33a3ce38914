"""The official Flyway engine (10.22, Maven Central; tools/flyway-engine) against our migrations and our migrator:
either tool migrates what the other started, validates what the other applied, and they never apply a migration
twice, even when started at the same moment."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from app.migrate.apply import Migrator
from app.migrate.resolve import load_config
from conftest import ROOT

ENGINE = ROOT / "scripts" / "flyway-engine.sh"


def flyway(root: Path, url: str, command: str) -> list[str]:
    """Runs the engine on `root` (its flyway.conf and db/) against the database of `url`; its output lines."""
    c = conninfo_to_dict(url)  # the test cluster: a unix socket directory and a port
    r = subprocess.run([str(ENGINE), str(root), c["host"], str(c["port"]), c["dbname"], c.get("user", "postgres"),
                        command], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.splitlines()


def ours(root: Path, url: str) -> Migrator:
    return Migrator(url, load_config(root / "flyway.conf"), out=lambda _: None)


def history(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute('SELECT version, description, type, script, checksum, success '
                            'FROM public.flyway_schema_history ORDER BY installed_rank').fetchall()


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The repository's migrations and flyway.conf, to add to without touching the real ones."""
    shutil.copytree(ROOT / "db" / "migrations", tmp_path / "db" / "migrations")
    shutil.copytree(ROOT / "db" / "functions", tmp_path / "db" / "functions")
    shutil.copy(ROOT / "flyway.conf", tmp_path / "flyway.conf")
    return tmp_path


def test_flyway_migrates_an_empty_database_and_ours_accepts_it(scratch_db: str):
    applied = len(list((ROOT / "db" / "migrations").glob("V*.sql")) + list((ROOT / "db" / "functions").glob("R__*.sql")))
    assert flyway(ROOT, scratch_db, "migrate") == [f"migrated {applied}"]
    m = ours(ROOT, scratch_db)
    assert m.validate() == []
    assert all(r.state == "Success" for r in m.info())
    assert m.migrate() == 0, "nothing left for ours to apply"


def test_ours_migrates_and_flyway_validates_with_the_same_checksums(scratch_db: str):
    ours(ROOT, scratch_db).migrate()
    assert flyway(ROOT, scratch_db, "validate") == ["valid true"]
    rows = [line.split("\t") for line in flyway(ROOT, scratch_db, "info") if line.startswith("migration\t")]
    assert rows and all(state == "Success" for _, _, _, state, _ in rows), "nothing pending, nothing failed"
    # Flyway's checksum of every file equals the one ours recorded
    recorded = {(v or "", d): c for v, d, _, _, c, _ in history(scratch_db)}
    assert {(v, d): int(c) for _, v, d, _, c in rows} == recorded


def test_each_tool_applies_a_new_migration_on_top_of_the_other(copy: Path, scratch_db: str):
    ours(copy, scratch_db).migrate()
    (copy / "db" / "migrations" / "V900__flyway_adds.sql").write_text("CREATE TABLE public.added_by_flyway (x int);\n")
    assert flyway(copy, scratch_db, "migrate") == ["migrated 1"]
    (copy / "db" / "migrations" / "V901__ours_adds.sql").write_text("CREATE TABLE public.added_by_ours (x int);\n")
    assert ours(copy, scratch_db).migrate() == 1
    assert flyway(copy, scratch_db, "validate") == ["valid true"]
    assert ours(copy, scratch_db).validate() == []
    assert [r[0] for r in history(scratch_db) if r[0] in ("900", "901")] == ["900", "901"]


def test_a_changed_repeatable_is_applied_again_once_by_either_tool(copy: Path, scratch_db: str):
    ours(copy, scratch_db).migrate()
    rules = copy / "db" / "functions" / "R__rules.sql"
    rules.write_text(rules.read_text() + "\n-- changed under Flyway\n")
    assert flyway(copy, scratch_db, "migrate") == ["migrated 1"]
    assert ours(copy, scratch_db).migrate() == 0
    rules.write_text(rules.read_text() + "\n-- changed under ours\n")
    assert ours(copy, scratch_db).migrate() == 1
    assert flyway(copy, scratch_db, "migrate") == ["migrated 0"]


def test_started_at_once_on_one_database_each_migration_is_applied_once(scratch_db: str):
    done: dict[str, object] = {}

    def run_flyway():
        try:
            done["flyway"] = flyway(ROOT, scratch_db, "migrate")
        except BaseException as exc:  # reported below, in the test's thread
            done["flyway"] = exc

    t = threading.Thread(target=run_flyway)
    t.start()
    # ours starts once Flyway is applying (its JVM takes a moment to start): both then take turns under the lock
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        for _ in range(600):
            if conn.execute("SELECT to_regclass('public.flyway_schema_history') IS NOT NULL").fetchone()[0]:
                break
            time.sleep(0.05)
    done["ours"] = ours(ROOT, scratch_db).migrate()
    t.join(600)
    assert not isinstance(done["flyway"], BaseException), done["flyway"]
    scripts = [r[3] for r in history(scratch_db)]
    assert len(scripts) == len(set(scripts)), "a migration was applied twice"
    total = len(list((ROOT / "db" / "migrations").glob("V*.sql")) + list((ROOT / "db" / "functions").glob("R__*.sql")))
    applied_by_flyway = int(done["flyway"][0].split()[-1])
    assert applied_by_flyway + done["ours"] == total == len(scripts)
    assert applied_by_flyway > 0, "Flyway took part"
