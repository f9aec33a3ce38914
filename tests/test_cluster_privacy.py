"""The embedded cluster is private: its socket directory is the server's OS user's alone, and on that socket the
roles of the CLI and the app take only the OS user who started the cluster (as root: root, and `postgres`, the OS
user the server runs as); any other role needs its password; nothing is trusted. Checked on the cluster `make test`
started (the same code as `make run`), and on a cluster left by an older version, made private by its next start."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from app import config
from app.ops import cluster
from conftest import free_port

INTRUDER = "dl_intruder"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates the OS user dl_intruder and runs "
                                                        "psql as that user with runuser")


def as_user(database_url: str, user: str, **extra: str) -> str:
    return make_conninfo(database_url, user=user, **extra)


def socket_dir(database_url: str) -> Path:
    return Path(conninfo_to_dict(database_url)["host"])


def private(path: Path) -> bool:
    return not path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)


def intruder() -> str:
    """A throwaway OS user that neither started the cluster nor runs it."""
    try:
        import pwd

        pwd.getpwnam(INTRUDER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", INTRUDER],
                       check=True)
    return INTRUDER


def psql_as(os_user: str, url: str) -> subprocess.CompletedProcess[str]:
    """psql as another OS user, never prompting (a password would be asked for, not found, refused)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run(["runuser", "-u", os_user, "--", "psql", "-X", "-w", "-Atc", "SELECT current_user", url],
                          capture_output=True, text=True, env=env, cwd="/", timeout=30)


def test_the_socket_directory_and_the_log_are_the_servers_alone(database_url):
    run = socket_dir(database_url)
    assert private(run), oct(run.stat().st_mode)
    sockets = [p for p in run.iterdir() if stat.S_ISSOCK(p.stat().st_mode)]
    assert sockets and all(private(p) for p in sockets)
    log = Path(os.environ["DL_DATA_DIR"]) / "log"
    assert private(log) and private(log / "postgresql.log")


def test_nothing_is_trusted_and_only_the_starting_user_is_mapped(database_url):
    with psycopg.connect(database_url) as conn:
        rules = conn.execute("SELECT type, user_name, auth_method, options, error FROM pg_hba_file_rules").fetchall()
        mapped = conn.execute("SELECT DISTINCT sys_name, pg_username FROM pg_ident_file_mappings "
                              "WHERE map_name = 'dermlabel'").fetchall()
    assert rules and [r for r in rules if r[4]] == []
    assert {r[2] for r in rules} == {"peer", "scram-sha-256"}
    assert all(r[3] == ["map=dermlabel"] and set(r[1]) == {"postgres", "dl_authenticator"}
               for r in rules if r[2] == "peer")
    assert {u for u, _ in mapped} == set(cluster.os_users())
    assert {r for _, r in mapped} == {"postgres", "dl_authenticator"}


def test_the_starting_user_connects_as_the_cli_and_as_the_app(database_url):
    for role in ("postgres", "dl_authenticator"):  # migrations and CLI; the app (the app_server fixture, too)
        with psycopg.connect(as_user(database_url, role)) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == role


def test_any_other_role_needs_its_password(database_url):
    role, password = f"dl_probe_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(as_user(database_url, role, password=""), connect_timeout=5).close()
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(as_user(database_url, role, password="wrong"), connect_timeout=5).close()
        with psycopg.connect(as_user(database_url, role, password=password)) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == role
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")


@as_root
def test_another_os_user_cannot_reach_the_socket(database_url):
    user = intruder()
    for role in ("postgres", "dl_authenticator"):
        r = psql_as(user, as_user(database_url, role))
        assert r.returncode != 0 and "Permission denied" in r.stderr, (r.stdout, r.stderr)


@as_root
def test_another_os_user_given_the_socket_is_still_refused(database_url):
    """Past the directory (as if it were opened by mistake), authentication holds: peer names the OS user, and
    dl_intruder is not in the map."""
    user = intruder()
    run = socket_dir(database_url)
    sock = next(p for p in run.iterdir() if stat.S_ISSOCK(p.stat().st_mode))
    modes = {p: p.stat().st_mode & 0o777 for p in (run, sock)}
    run.chmod(0o711)
    sock.chmod(0o777)
    try:
        for role in ("postgres", "dl_authenticator"):
            r = psql_as(user, as_user(database_url, role))
            assert r.returncode != 0 and "Peer authentication failed" in r.stderr, (r.stdout, r.stderr)
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert private(run) and private(sock)


def test_a_cluster_left_by_an_older_version_is_made_private_at_its_next_start():
    """Older versions trusted every local connection and left the socket directory (and the socket) open to all."""
    tmp = Path(tempfile.mkdtemp(prefix="dermlabel-old-"))
    tmp.chmod(0o711)  # as root the server runs as `postgres`, which must get through
    pg, run, log, port = tmp / "pg", tmp / "run", tmp / "log" / "postgresql.log", free_port()
    try:
        cluster.init(pg, run)
        (pg / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        (pg / "pg_ident.conf").write_text("")
        run.chmod(0o755)
        log.parent.mkdir(mode=0o755)
        log.touch(mode=0o644)
        cluster.start(pg, run, port, log, "-c fsync=off -c max_connections=10")
        assert private(run) and private(log.parent) and private(log)
        url = config.embedded_url(run, port, "postgres")
        with psycopg.connect(url) as conn:
            methods = {r[0] for r in conn.execute("SELECT auth_method FROM pg_hba_file_rules")}
        assert methods == {"peer", "scram-sha-256"}
        # started again while it runs (a second `make run`): the rules are rewritten and reloaded, nothing breaks
        cluster.start(pg, run, port, log)
        psycopg.connect(url).close()
    finally:
        cluster.stop(pg, "immediate")
        shutil.rmtree(tmp, ignore_errors=True)
