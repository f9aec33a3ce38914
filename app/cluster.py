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

DEBIAN_PACKAGE = "postgresql-15"


def pg_bin() -> Path:
    """The directory holding initdb/pg_ctl: $DL_PG_BIN, pg_config --bindir, or the newest /usr/lib/postgresql/*/bin."""
    if env := os.environ.get("DL_PG_BIN"):
        return Path(env)
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


def init(datadir: Path, socket_dir: Path) -> bool:
    """Create the cluster once; returns True when it was created now."""
    if (datadir / "PG_VERSION").exists():
        return False
    datadir.mkdir(parents=True, exist_ok=True)
    socket_dir.mkdir(parents=True, exist_ok=True)
    _chown(datadir, socket_dir)
    subprocess.run([*_run_as(), str(pg_bin() / "initdb"), "-D", str(datadir), "-U", "postgres",
                    "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, stdout=subprocess.DEVNULL)
    return True


def start(datadir: Path, socket_dir: Path, port: int, log: Path, extra: str = "") -> None:
    if status(datadir):
        return
    socket_dir.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    _chown(socket_dir, log)
    extra = extra or os.environ.get("DL_PG_OPTIONS", "")
    opts = f"-p {port} -k {socket_dir} -c listen_addresses='' -c unix_socket_permissions=0777 {extra}"
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
