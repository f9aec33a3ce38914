"""Apply, describe and validate migrations against one database, interchangeably with Flyway 10."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import psycopg
from psycopg import sql as q

from .resolve import Config, Migration, MigrationError, Version, resolve

_LOCK_BASE = 77431708279161  # Flyway's PostgreSQL advisory-lock base; the table's Java hashCode is added


def _java_hash(s: str) -> int:
    """java.lang.String.hashCode: over UTF-16 code units, wrapping at 32 bits."""
    units = s.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def lock_key(schema: str, table: str) -> int:
    return _LOCK_BASE + _java_hash(f'"{schema}"."{table}"')


@dataclass
class Applied:
    installed_rank: int
    version: str | None
    description: str
    type: str
    script: str
    checksum: int | None
    installed_on: object
    success: bool


@dataclass
class Row:
    """One line of `info`: a migration on disk, in the history, or both."""
    version: str
    description: str
    type: str
    script: str
    state: str
    installed_on: object = None


class Migrator:
    def __init__(self, url: str, config: Config, out: Callable[[str], None] = print):
        self.url = url
        self.config = config
        self.out = out
        self.table = q.Identifier(config.schema, config.table)
        self.key = lock_key(config.schema, config.table)

    # --- history -------------------------------------------------------------------------------------------
    def _history_exists(self, conn: psycopg.Connection) -> bool:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                           (f'"{self.config.schema}"."{self.config.table}"',)).fetchone()
        return bool(row and row[0])

    def _create_history(self, conn: psycopg.Connection) -> None:
        # Exactly Flyway's PostgreSQL definition, so Flyway can take over this database.
        conn.execute(q.SQL("""
            CREATE TABLE IF NOT EXISTS {t} (
                "installed_rank" INT NOT NULL,
                "version" VARCHAR(50),
                "description" VARCHAR(200) NOT NULL,
                "type" VARCHAR(20) NOT NULL,
                "script" VARCHAR(1000) NOT NULL,
                "checksum" INTEGER,
                "installed_by" VARCHAR(100) NOT NULL,
                "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
                "execution_time" INTEGER NOT NULL,
                "success" BOOLEAN NOT NULL,
                CONSTRAINT {pk} PRIMARY KEY ("installed_rank")
            );
            CREATE INDEX IF NOT EXISTS {idx} ON {t} ("success");
        """).format(t=self.table, pk=q.Identifier(f"{self.config.table}_pk"),
                    idx=q.Identifier(f"{self.config.table}_s_idx")))

    def _applied(self, conn: psycopg.Connection) -> list[Applied]:
        if not self._history_exists(conn):
            return []
        rows = conn.execute(q.SQL(
            "SELECT installed_rank, version, description, type, script, checksum, installed_on, success "
            "FROM {t} ORDER BY installed_rank").format(t=self.table)).fetchall()
        return [Applied(*r) for r in rows]

    def _lock(self, conn: psycopg.Connection) -> None:
        """Flyway's transaction-scoped advisory lock (same key, so Flyway and we exclude each other).

        Flyway polls pg_try_advisory_xact_lock; we wait in the lock queue instead, which is fair: a migrator
        that re-locks right after each commit cannot starve another one waiting.
        """
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.key,))

    def _builtins(self, conn: psycopg.Connection) -> dict[str, str]:
        user, db = conn.execute("SELECT current_user, current_database()").fetchone()
        return {"flyway:defaultSchema": self.config.schema, "flyway:user": user,
                "flyway:database": db, "flyway:table": self.config.table}

    # --- planning ------------------------------------------------------------------------------------------
    @staticmethod
    def _pending(local: list[Migration], applied: list[Applied]) -> list[Migration]:
        ok = [a for a in applied if a.success]
        done_versions = {Version(a.version) for a in ok if a.version is not None}
        top = max(done_versions, default=None)
        latest_rep: dict[str, int | None] = {}
        for a in ok:
            if a.version is None:
                latest_rep[a.description] = a.checksum
        pending = []
        for m in local:
            if m.version is not None:
                if m.version not in done_versions and (top is None or m.version > top):
                    pending.append(m)
            elif latest_rep.get(m.description, "absent") != m.checksum:
                pending.append(m)
        return pending

    def _problems(self, local: list[Migration], applied: list[Applied], strict: bool) -> list[str]:
        """What `validate` reports (strict) and what stops `migrate` before it changes anything."""
        problems = []
        by_version = {m.version: m for m in local if m.version is not None}
        for a in applied:
            if not a.success:
                problems.append(f"{a.script}: failed migration recorded in {self.config.table} (version {a.version})")
            elif a.version is not None and a.type == "SQL":
                m = by_version.get(Version(a.version))
                if m is None:
                    problems.append(f"{a.script}: applied migration version {a.version} is missing locally")
                elif m.checksum != a.checksum:
                    problems.append(f"{m.script}: checksum mismatch for version {a.version} "
                                    f"(applied {a.checksum}, local {m.checksum}): an applied migration was edited")
        if strict:
            done = {Version(a.version) for a in applied if a.success and a.version is not None}
            top = max(done, default=None)
            for m in local:
                if m.version is not None and m.version not in done:
                    if top is not None and m.version < top:
                        problems.append(f"{m.script}: version {m.version} is older than the applied {top} "
                                        f"and was never applied")
                    else:
                        problems.append(f"{m.script}: resolved migration not applied to the database")
            for m in self._pending(local, applied):
                if m.version is None:
                    problems.append(f"{m.script}: outdated repeatable migration should be re-applied")
        return problems

    # --- commands ------------------------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply every pending migration, each in its own transaction under Flyway's advisory lock."""
        count = 0
        with psycopg.connect(self.url, autocommit=False) as conn:
            with conn.transaction():
                self._lock(conn)
                self._create_history(conn)
                builtins = self._builtins(conn)
            local = resolve(self.config, builtins)
            problems = self._problems(local, self._applied(conn), strict=False)
            conn.commit()
            if problems:
                raise MigrationError("validate failed:\n  " + "\n  ".join(problems))
            while True:
                with conn.transaction():
                    self._lock(conn)
                    # Re-read under the lock: another migrator may have applied what we planned.
                    applied = self._applied(conn)
                    pending = self._pending(local, applied)
                    if not pending:
                        break
                    m = pending[0]
                    self._apply_one(conn, m, applied)
                    count += 1
            if count:
                conn.execute("NOTIFY dl_reload")
                conn.commit()
        self.out(f"applied {count} migration(s); schema version {self.current_version() or 'empty'}")
        return count

    def _apply_one(self, conn: psycopg.Connection, m: Migration, applied: list[Applied]) -> None:
        started = time.monotonic()
        try:
            with conn.transaction():  # a savepoint, so a failure can be reported before the outer rollback
                conn.execute(m.sql.encode("utf-8"))
        except psycopg.Error as exc:
            raise MigrationError(_describe_failure(m, exc)) from None
        elapsed = int((time.monotonic() - started) * 1000)
        rank = max((a.installed_rank for a in applied), default=0) + 1
        conn.execute(q.SQL(
            "INSERT INTO {t} (installed_rank, version, description, type, script, checksum, installed_by,"
            " execution_time, success) VALUES (%s, %s, %s, 'SQL', %s, %s, current_user, %s, true)"
        ).format(t=self.table), (rank, m.version.text if m.version else None, m.description[:200],
                                 m.script, m.checksum, elapsed))
        self.out(f"applied {m.script} ({elapsed} ms)")

    def current_version(self) -> str | None:
        with psycopg.connect(self.url) as conn:
            versions = [Version(a.version) for a in self._applied(conn) if a.success and a.version]
        return max(versions).text if versions else None

    def info(self) -> list[Row]:
        with psycopg.connect(self.url) as conn:
            applied = self._applied(conn)
            local = resolve(self.config, self._builtins(conn))
        pending = {m.script for m in self._pending(local, applied)}
        rows: list[Row] = []
        local_versions = {m.version for m in local if m.version is not None}
        local_reps = {m.description: m for m in local if m.version is None}
        for a in applied:
            if a.version is not None:
                state = "Success" if a.success else "Failed"
                if Version(a.version) not in local_versions:
                    state = "Missing"
            else:
                m = local_reps.get(a.description)
                state = "Missing" if m is None else ("Success" if m.checksum == a.checksum else "Outdated")
                if not a.success:
                    state = "Failed"
            rows.append(Row(a.version or "", a.description, "Repeatable" if a.version is None else "Versioned",
                            a.script, state, a.installed_on))
        # A repeatable applied several times: only its latest row is current, older ones are superseded.
        seen: set[str] = set()
        for r in reversed(rows):
            if r.type == "Repeatable":
                if r.description in seen:
                    r.state = "Superseded"
                seen.add(r.description)
        for m in local:
            if m.script in pending:
                rows.append(Row(m.version.text if m.version else "", m.description,
                                "Repeatable" if m.repeatable else "Versioned", m.script, "Pending"))
        return rows

    def validate(self) -> list[str]:
        with psycopg.connect(self.url) as conn:
            applied = self._applied(conn)
            local = resolve(self.config, self._builtins(conn))
        return self._problems(local, applied, strict=True)


def _describe_failure(m: Migration, exc: psycopg.Error) -> str:
    diag = exc.diag
    where = ""
    if diag.statement_position:
        line = m.sql[: int(diag.statement_position) - 1].count("\n") + 1
        where = f" at line {line}"
    msg = f"{m.script}: migration failed{where}: {diag.sqlstate or ''} {diag.message_primary or exc}".rstrip()
    if diag.context:
        msg += f"\n  context: {diag.context.strip()}"
    return msg + "\n  the migration was rolled back; no history row was written"
