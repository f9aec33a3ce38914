"""A local PostgreSQL cluster for the embedded default and for tests: find the server, initdb once, start, stop."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .. import config

DEBIAN_PACKAGE = "postgresql-15"


def pg_bin(configured: Path | None = None) -> Path:
    """The directory holding initdb/pg_ctl: `configured`, else DL_PG_BIN, pg_config --bindir, or the newest
    /usr/lib/postgresql/*/bin."""
    configured = configured or config.load().cluster.pg_bin
    if configured:
        return configured
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if out:
            candidates.append(Path(out))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                           key=lambda p: int(Path(p).parent.name), reverse=True)]
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"PostgreSQL server not found; installing {DEBIAN_PACKAGE} with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", DEBIAN_PACKAGE], check=True)
        return pg_bin()
    sys.exit(f"PostgreSQL server binaries not found. Install the Debian package '{DEBIAN_PACKAGE}' "
             f"(sudo apt-get install {DEBIAN_PACKAGE}) or set DL_PG_BIN to the directory holding initdb.")


def _run_as() -> list[str]:
    """initdb and postgres refuse to run as root: run them as the 'postgres' system user instead."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return ["runuser", "-u", "postgres", "--"]


def _chown(*paths: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for p in paths:
            os.chown(p, pw.pw_uid, pw.pw_gid)


def _private(*paths: Path) -> None:
    """Owned by the server's OS user, and by nobody else's business: directories 0700, files 0600. (Root reaches
    them anyway, which is how root's CLI reaches a server that runs as `postgres`.)"""
    _chown(*paths)
    for p in paths:
        p.chmod(0o700 if p.is_dir() else 0o600)


# Who may connect to the embedded cluster. Only its socket listens (listen_addresses is empty), in a directory only
# the server's OS user can enter; on that socket the roles the CLI and the app log in as (postgres, and the
# authenticator) need peer authentication by an OS user of pg_ident.conf's map, and every other role its password.
# Written at every start, so that a cluster created by an older version (local trust, a socket directory anyone
# could enter) is made private by its next start.
HBA_HEADER = "# Written by DermLabel (app/ops/cluster.py) at every start of the embedded cluster: edits are replaced.\n"


def os_users() -> list[str]:
    """The OS users who may connect without a password: whoever starts the cluster; when that is root, also
    `postgres`, the OS user the server then runs as."""
    users = [pwd.getpwuid(os.geteuid()).pw_name]
    if os.geteuid() == 0 and "postgres" not in users:
        users.append("postgres")
    return users


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def write_access(datadir: Path, roles: list[str]) -> None:
    """pg_hba.conf and pg_ident.conf of the embedded cluster: `roles` by peer authentication (os_users() only),
    any other role by password (scram-sha-256); nobody by trust."""
    roles = list(dict.fromkeys(roles))
    hba = (HBA_HEADER
           + "# The roles of the CLI and the app: only the OS users of the map 'dermlabel' (pg_ident.conf).\n"
           + "# Any other role (an analyst's, say): its password. Nothing is trusted.\n"
           + "# TYPE  DATABASE     USER  ADDRESS  METHOD\n"
           + f"local   all          {','.join(map(_quoted, roles))}  peer map=dermlabel\n"
           + f"local   replication  {','.join(map(_quoted, roles))}  peer map=dermlabel\n"
           + "local   all          all  scram-sha-256\n"
           + "host    all          all  127.0.0.1/32  scram-sha-256\n"
           + "host    all          all  ::1/128  scram-sha-256\n")
    ident = (HBA_HEADER + "# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\n"
             + "".join(f"dermlabel  {_quoted(u)}  {_quoted(r)}\n" for u in os_users() for r in roles))
    for name, text in (("pg_hba.conf", hba), ("pg_ident.conf", ident)):
        path = datadir / name
        tmp = path.with_name(f".{name}.new")
        tmp.write_text(text)
        _private(tmp)
        os.replace(tmp, path)


def init(datadir: Path, socket_dir: Path) -> bool:
    """Create the cluster once; returns True when it was created now."""
    if (datadir / "PG_VERSION").exists():
        return False
    datadir.mkdir(parents=True, exist_ok=True)
    socket_dir.mkdir(parents=True, exist_ok=True)
    _private(datadir, socket_dir)
    # peer until start() writes the real rules (write_access): never trust, not even in between
    subprocess.run([*_run_as(), str(pg_bin() / "initdb"), "-D", str(datadir), "-U", "postgres",
                    "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, stdout=subprocess.DEVNULL)
    return True


def start(datadir: Path, socket_dir: Path, port: int, log: Path, extra: str = "",
          roles: list[str] | None = None) -> None:
    """Start the cluster (or, when it runs, reload its access rules). `extra`: more server options, by default
    DL_PG_OPTIONS; `roles`: the login roles that authenticate as the OS user (peer), by default postgres and the app's
    DL_APP_DB_USER."""
    if roles is None:
        roles = ["postgres", config.load().database.app_db_user]
    socket_dir.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    # the log quotes statements and their errors, so values: private like the data directory
    _private(socket_dir, log.parent, log)
    if (datadir / "PG_VERSION").exists():  # else pg_ctl below says there is no cluster
        write_access(datadir, roles)
    if status(datadir):
        subprocess.run([*_run_as(), str(pg_bin() / "pg_ctl"), "-D", str(datadir), "reload"], check=False,
                       stdout=subprocess.DEVNULL)
        return
    extra = extra or config.load().cluster.pg_options
    opts = f"-p {port} -k {socket_dir} -c listen_addresses='' -c unix_socket_permissions=0700 {extra}"
    r = subprocess.run([*_run_as(), str(pg_bin() / "pg_ctl"), "-D", str(datadir), "-l", str(log), "-o", opts,
                        "-w", "-t", "60", "start"], capture_output=True, text=True)
    if r.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        sys.exit(f"PostgreSQL did not start (port {port} in use? set DL_PG_PORT):\n{r.stderr}\n{tail}")


def stop(datadir: Path, mode: str = "fast") -> None:
    if not status(datadir):
        return
    subprocess.run([*_run_as(), str(pg_bin() / "pg_ctl"), "-D", str(datadir), "-m", mode, "-w", "stop"],
                   check=False, stdout=subprocess.DEVNULL)


def status(datadir: Path) -> bool:
    if not (datadir / "PG_VERSION").exists():
        return False
    r = subprocess.run([*_run_as(), str(pg_bin() / "pg_ctl"), "-D", str(datadir), "status"],
                       capture_output=True, text=True)
    return r.returncode == 0


def ensure_database(admin_url_for: callable, dbname: str) -> None:
    """Create the application database when absent (connects to 'postgres' to do so)."""
    import psycopg

    with psycopg.connect(admin_url_for("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            conn.execute(f'CREATE DATABASE "{dbname}"')


def wait_ready(url: str, seconds: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + seconds
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
