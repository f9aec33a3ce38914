"""The Flyway-compatible applier against a real PostgreSQL: ordering, repeatables, failures, locking, validate."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from app.migrate.apply import Migrator, lock_key
from app.migrate.resolve import MigrationError, load_config
from conftest import ROOT, run_cli


class Project:
    """A throwaway migration project: flyway.conf plus the two locations."""

    def __init__(self, root: Path, placeholders: dict[str, str] | None = None):
        self.root = root
        (root / "db" / "migrations").mkdir(parents=True)
        (root / "db" / "functions").mkdir(parents=True)
        self.write_conf(placeholders or {})

    def write_conf(self, placeholders: dict[str, str]) -> None:
        lines = ["flyway.locations=filesystem:db/migrations,filesystem:db/functions"]
        lines += [f"flyway.placeholders.{k}={v}" for k, v in placeholders.items()]
        (self.root / "flyway.conf").write_text("\n".join(lines) + "\n")

    def add(self, name: str, sql: str) -> Path:
        folder = "functions" if name.startswith("R__") else "migrations"
        path = self.root / "db" / folder / name
        path.write_text(textwrap.dedent(sql))
        return path

    def migrator(self, url: str) -> Migrator:
        return Migrator(url, load_config(self.root / "flyway.conf"), out=lambda _: None)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def history(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT installed_rank, version, description, type, script, checksum, success "
                            "FROM flyway_schema_history ORDER BY installed_rank").fetchall()


def test_versions_apply_in_numeric_order(project: Project, scratch_db: str):
    project.add("V1_10__tenth.sql", "INSERT INTO log VALUES ('1.10');")
    project.add("V1_9__ninth.sql", "INSERT INTO log VALUES ('1.9');")
    project.add("V1__create_log.sql", "CREATE TABLE log (v text, at serial);")
    project.add("V2.0.1__dotted.sql", "INSERT INTO log VALUES ('2.0.1');")
    project.add("V1_2__second_part.sql", "INSERT INTO log VALUES ('1.2');")
    assert project.migrator(scratch_db).migrate() == 5
    with psycopg.connect(scratch_db) as conn:
        assert [r[0] for r in conn.execute("SELECT v FROM log ORDER BY at")] == ["1.2", "1.9", "1.10", "2.0.1"]
    rows = history(scratch_db)
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        ("1", "create log", "SQL", "V1__create_log.sql"),
        ("1.2", "second part", "SQL", "V1_2__second_part.sql"),
        ("1.9", "ninth", "SQL", "V1_9__ninth.sql"),
        ("1.10", "tenth", "SQL", "V1_10__tenth.sql"),
        ("2.0.1", "dotted", "SQL", "V2.0.1__dotted.sql"),
    ]
    assert all(r[6] for r in rows)
    assert project.migrator(scratch_db).migrate() == 0  # nothing pending the second time


def test_history_table_has_flyways_exact_shape(project: Project, scratch_db: str):
    project.add("V1__x.sql", "SELECT 1;")
    project.migrator(scratch_db).migrate()
    with psycopg.connect(scratch_db) as conn:
        cols = conn.execute("""
            SELECT column_name, data_type, character_maximum_length, is_nullable
            FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'flyway_schema_history'
            ORDER BY ordinal_position""").fetchall()
        pk = conn.execute("SELECT conname FROM pg_constraint WHERE contype = 'p' "
                          "AND conrelid = 'public.flyway_schema_history'::regclass").fetchone()
        idx = conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'flyway_schema_history_s_idx'").fetchone()
        installed_by, exec_time = conn.execute(
            "SELECT installed_by, execution_time FROM flyway_schema_history").fetchone()
    assert cols == [
        ("installed_rank", "integer", None, "NO"), ("version", "character varying", 50, "YES"),
        ("description", "character varying", 200, "NO"), ("type", "character varying", 20, "NO"),
        ("script", "character varying", 1000, "NO"), ("checksum", "integer", None, "YES"),
        ("installed_by", "character varying", 100, "NO"),
        ("installed_on", "timestamp without time zone", None, "NO"),
        ("execution_time", "integer", None, "NO"), ("success", "boolean", None, "NO"),
    ]
    assert pk == ("flyway_schema_history_pk",) and idx
    assert installed_by == "postgres" and exec_time >= 0


def test_lock_key_is_flyways_for_the_default_table():
    assert lock_key("public", "flyway_schema_history") == 77433833903597


def test_repeatables_run_after_versioned_by_description_and_again_when_changed(project: Project, scratch_db: str):
    project.add("R__b_second.sql", "INSERT INTO log VALUES ('b');")
    project.add("R__a_first.sql", "INSERT INTO log VALUES ('a');")
    project.add("V1__log.sql", "CREATE TABLE log (v text, at serial);")
    assert project.migrator(scratch_db).migrate() == 3
    assert project.migrator(scratch_db).migrate() == 0  # unchanged repeatables are not re-run
    project.add("R__b_second.sql", "INSERT INTO log VALUES ('b2');")
    assert project.migrator(scratch_db).migrate() == 1
    with psycopg.connect(scratch_db) as conn:
        assert [r[0] for r in conn.execute("SELECT v FROM log ORDER BY at")] == ["a", "b", "b2"]
    rows = history(scratch_db)
    assert [(r[1], r[2], r[4]) for r in rows] == [
        ("1", "log", "V1__log.sql"), (None, "a first", "R__a_first.sql"),
        (None, "b second", "R__b_second.sql"), (None, "b second", "R__b_second.sql")]
    states = {(r.script, r.state) for r in project.migrator(scratch_db).info()}
    assert ("R__b_second.sql", "Superseded") in states and ("R__b_second.sql", "Success") in states


def test_placeholders_are_replaced_and_repeatable_checksum_follows_their_value(tmp_path: Path, scratch_db: str):
    project = Project(tmp_path, {"greeting": "hello"})
    project.add("V1__t.sql", "CREATE TABLE t (v text); INSERT INTO t VALUES ('${greeting} ${flyway:database}');")
    project.add("R__view.sql", "CREATE OR REPLACE VIEW v AS SELECT '${greeting}'::text AS g;")
    project.migrator(scratch_db).migrate()
    dbname = scratch_db.split("dbname=")[1].split()[0]
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT v FROM t").fetchone()[0] == f"hello {dbname}"
        assert conn.execute("SELECT g FROM v").fetchone()[0] == "hello"
    project.write_conf({"greeting": "bonjour"})
    # the versioned checksum is over the raw text, so it still validates; the repeatable is outdated and re-runs
    assert project.migrator(scratch_db).validate() == ["R__view.sql: outdated repeatable migration should be re-applied"]
    assert project.migrator(scratch_db).migrate() == 1
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT g FROM v").fetchone()[0] == "bonjour"


def test_unknown_placeholder_is_an_error_naming_the_file(project: Project, scratch_db: str):
    project.add("V1__p.sql", "SELECT '${nope}';")
    with pytest.raises(MigrationError, match=r"V1__p.sql: no value provided for placeholder \$\{nope\}"):
        project.migrator(scratch_db).migrate()


def test_failing_migration_rolls_back_entirely_and_is_reported_with_file_and_line(project: Project, scratch_db: str):
    project.add("V1__ok.sql", "CREATE TABLE a (id int);")
    project.add("V2__broken.sql", "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n\nSELEC oops;\n")
    project.add("V3__after.sql", "CREATE TABLE c (id int);")
    with pytest.raises(MigrationError) as err:
        project.migrator(scratch_db).migrate()
    message = str(err.value)
    assert "V2__broken.sql" in message and "line 4" in message and "42601" in message and "SELEC" in message
    assert [r[4] for r in history(scratch_db)] == ["V1__ok.sql"]  # no row for the failed one, nothing after it
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT to_regclass('b'), to_regclass('c')").fetchone() == (None, None)
        assert conn.execute("SELECT to_regclass('a')").fetchone()[0] == "a"


def test_cli_reports_failure_with_nonzero_exit(project: Project, scratch_db: str):
    project.add("V1__broken.sql", "CREATE TABLE x (id nosuchtype);")
    r = run_cli("migrate", env={"DATABASE_URL": scratch_db, "DL_FLYWAY_CONF": str(project.root / "flyway.conf")})
    assert r.returncode == 1
    assert "V1__broken.sql" in r.stderr and 'type "nosuchtype" does not exist' in r.stderr


def test_concurrent_migrators_apply_each_migration_exactly_once(project: Project, scratch_db: str):
    project.add("V1__counter.sql", "CREATE TABLE runs (script text);")
    for n in range(2, 12):
        # each migration is slow enough that the two processes overlap
        project.add(f"V{n}__step.sql", f"SELECT pg_sleep(0.3); INSERT INTO runs VALUES ('V{n}');")
    project.add("R__rep.sql", "INSERT INTO runs VALUES ('R');")
    env = {"DATABASE_URL": scratch_db, "DL_FLYWAY_CONF": str(project.root / "flyway.conf")}
    import os
    procs = [subprocess.Popen([sys.executable, "-m", "app", "migrate"], cwd=ROOT, env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with psycopg.connect(scratch_db) as conn:
        runs = [r[0] for r in conn.execute("SELECT script FROM runs")]
    assert sorted(runs) == sorted(["R"] + [f"V{n}" for n in range(2, 12)])
    rows = history(scratch_db)
    assert [r[0] for r in rows] == list(range(1, 13))
    applied_counts = [int(o[0].rsplit("applied ", 1)[1].split()[0]) for o in outs]
    assert sum(applied_counts) == 12 and all(c > 0 for c in applied_counts), "both migrators should have worked"


def test_validate_names_an_edited_or_deleted_migration(project: Project, scratch_db: str):
    v1 = project.add("V1__one.sql", "CREATE TABLE one (id int);")
    v2 = project.add("V2__two.sql", "CREATE TABLE two (id int);")
    project.migrator(scratch_db).migrate()
    assert project.migrator(scratch_db).validate() == []
    v1.write_text("CREATE TABLE one (id bigint);")
    problems = project.migrator(scratch_db).validate()
    assert len(problems) == 1 and problems[0].startswith("V1__one.sql: checksum mismatch")
    # migrate refuses to run on top of an edited migration, and changes nothing
    project.add("V3__three.sql", "CREATE TABLE three (id int);")
    with pytest.raises(MigrationError, match="V1__one.sql"):
        project.migrator(scratch_db).migrate()
    assert len(history(scratch_db)) == 2
    v1.write_text("CREATE TABLE one (id int);")
    v2.unlink()
    problems = project.migrator(scratch_db).validate()
    assert any(p.startswith("V2__two.sql: applied migration version 2 is missing") for p in problems)
    r = run_cli("validate", env={"DATABASE_URL": scratch_db, "DL_FLYWAY_CONF": str(project.root / "flyway.conf")})
    assert r.returncode == 1 and "V2__two.sql" in r.stderr


def test_validate_reports_pending_and_info_lists_states(project: Project, scratch_db: str):
    project.add("V1__one.sql", "SELECT 1;")
    project.migrator(scratch_db).migrate()
    project.add("V2__two.sql", "SELECT 2;")
    assert project.migrator(scratch_db).validate() == ["V2__two.sql: resolved migration not applied to the database"]
    rows = {(r.version, r.state) for r in project.migrator(scratch_db).info()}
    assert rows == {("1", "Success"), ("2", "Pending")}


def test_real_schema_migrates_and_validates(scratch_db: str):
    env = {"DATABASE_URL": scratch_db}
    assert run_cli("migrate", env=env).returncode == 0
    r = run_cli("validate", env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("info", env=env)
    assert "V1__foundation" not in r.stdout and "foundation" in r.stdout and "Success" in r.stdout


def test_repeatable_reapplied_alone_must_not_drop_what_another_owns(project: Project, scratch_db: str):
    """The check make test runs over db/functions: a repeatable that drops another file's function is caught
    (from empty, name order hides it; a deploy that changed only that file loses the function for good)."""
    from repeatables import check_each

    project.add("V1__schema.sql", "CREATE SCHEMA core;")
    project.add("R__a_items.sql", """
        DROP FUNCTION IF EXISTS core.lock_item(bigint);
        CREATE OR REPLACE FUNCTION core.priority(p bigint) RETURNS bigint LANGUAGE sql AS 'SELECT p';""")
    project.add("R__b_guards.sql",
                "CREATE OR REPLACE FUNCTION core.lock_item(p bigint) RETURNS bigint LANGUAGE sql AS 'SELECT p';")
    project.migrator(scratch_db).migrate()
    problems = check_each(scratch_db, project.root / "flyway.conf")
    # each file in turn, as successive deploys: the first loses the function, re-applying its owner brings it back
    assert problems == {"R__a_items.sql": ["lost function core.lock_item(bigint)"],
                        "R__b_guards.sql": ["added function core.lock_item(bigint)"]}

    # without the stray DROP every file owns what it creates, and re-applying any of them alone changes nothing
    project.add("R__a_items.sql",
                "CREATE OR REPLACE FUNCTION core.priority(p bigint) RETURNS bigint LANGUAGE sql AS 'SELECT p';")
    project.migrator(scratch_db).migrate()
    assert check_each(scratch_db, project.root / "flyway.conf") == {}


def test_a_repeatable_split_into_others_deploys_and_validates(project: Project, scratch_db: str):
    """A repeatable removed from the files (ours stay behind as a comment, for Flyway; our applier copes either
    way): its history row stays (Missing), its functions come from the new files, nothing else is applied again,
    and validate is satisfied."""
    project.add("V1__schema.sql", "CREATE SCHEMA core;")
    whole = project.add("R__whole.sql", """
        CREATE OR REPLACE FUNCTION core.one() RETURNS int LANGUAGE sql AS 'SELECT 1';
        CREATE OR REPLACE FUNCTION core.two() RETURNS int LANGUAGE sql AS 'SELECT 2';""")
    project.migrator(scratch_db).migrate()
    whole.unlink()
    project.add("R__part_one.sql", "CREATE OR REPLACE FUNCTION core.one() RETURNS int LANGUAGE sql AS 'SELECT 1';")
    project.add("R__part_two.sql", "CREATE OR REPLACE FUNCTION core.two() RETURNS int LANGUAGE sql AS 'SELECT 2';")
    assert project.migrator(scratch_db).migrate() == 2
    assert project.migrator(scratch_db).validate() == []
    states = {r.script: r.state for r in project.migrator(scratch_db).info()}
    assert states == {"V1__schema.sql": "Success", "R__whole.sql": "Missing", "R__part_one.sql": "Success",
                      "R__part_two.sql": "Success"}
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT core.one() + core.two()").fetchone()[0] == 3

