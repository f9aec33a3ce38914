"""Command line: python -m app run | serve | worker | ai-reference | migrate | info | validate | seed | export |
import-labels | cluster {start,stop,status} | settings."""
from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
import time
from dataclasses import replace

from . import config
from .migrate.apply import Migrator
from .migrate.resolve import MigrationError, load_config
from .ops import cluster


def _migrator(s: config.Settings) -> Migrator:
    return Migrator(s.database_url, load_config(s.database.flyway_conf))


def cmd_migrate(s: config.Settings) -> int:
    _migrator(s).migrate()
    return 0


def cmd_info(s: config.Settings) -> int:
    rows = _migrator(s).info()
    print(f"{'Version':<10} {'Description':<40} {'Type':<11} {'Installed on':<20} State")
    for r in rows:
        on = r.installed_on.strftime("%Y-%m-%d %H:%M:%S") if r.installed_on else ""
        print(f"{r.version:<10} {r.description[:40]:<40} {r.type:<11} {on:<20} {r.state}")
    return 0


def cmd_validate(s: config.Settings) -> int:
    problems = _migrator(s).validate()
    if problems:
        print("validate failed:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("validate: all applied migrations match the files on disk; nothing pending")
    return 0


def cmd_cluster(s: config.Settings, action: str) -> int:
    c = s.cluster
    log = c.data_dir / "log" / "postgresql.log"
    if action == "start":
        cluster.init(c.pg_data, c.socket_dir)
        cluster.start(c.pg_data, c.socket_dir, c.pg_port, log, c.pg_options, ["postgres", s.database.app_db_user])
        print(f"PostgreSQL running: socket {c.socket_dir}, port {c.pg_port}, log {log}")
    elif action == "stop":
        cluster.stop(c.pg_data)
        print("PostgreSQL stopped")
    else:
        print("running" if cluster.status(c.pg_data) else "stopped")
    return 0


def cmd_seed(s: config.Settings) -> int:
    from .images.storage import from_settings
    from .seed import seed

    seed(s.database_url, from_settings(s.storage))
    return 0


def cmd_serve(s: config.Settings) -> int:
    import uvicorn

    from .server.logs import configure
    from .server.main import create_app

    configure(s.server.log_format or "json")
    uvicorn.run(create_app(s), host=s.server.host, port=s.server.port, log_config=None, access_log=False,
                lifespan="on")
    return 0


def cmd_worker(s: config.Settings) -> int:
    """The AI worker: jobs from SQL, models over HTTP (or SageMaker), results back to SQL."""
    from .ai import config as ai_config
    from .ai.worker import serve
    from .images.storage import from_settings
    from .server.db import app_conninfo
    from .server.logs import configure

    configure(s.server.log_format or "json")
    serve(app_conninfo(s.database_url, s.database.app_db_user, s.database.app_db_password),
          from_settings(s.storage), ai_config.load(s))
    return 0


def cmd_ai_reference(s: config.Settings) -> int:
    """The reference AI service (crop + ABCD pre-classifier), its own small ASGI app and port."""
    import uvicorn

    from .ai_reference.service import create_reference_app
    from .server.logs import configure

    configure(s.server.log_format or "json")
    uvicorn.run(create_reference_app(), host=s.ai.host, port=s.ai.port, log_config=None, access_log=False)
    return 0


def _wait_listening(port: int, proc, seconds: float = 20) -> None:
    import socket
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)


def _companions(s: config.Settings) -> list:
    """`run` starts the reference AI service and the AI worker next to the app, and stops them with it. They read
    the same environment, and log in the same format as `run`."""
    import atexit
    import os
    import subprocess

    env = {**os.environ, "DL_LOG_FORMAT": s.server.log_format}
    procs = []
    if s.ai.reference:
        procs.append(subprocess.Popen([sys.executable, "-m", "app", "ai-reference"], env=env))
        _wait_listening(s.ai.port, procs[-1])  # before the worker calls it
    if s.ai.worker:
        procs.append(subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env))

    def stop() -> None:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    atexit.register(stop)
    return procs


def cmd_export(s: config.Settings, args) -> int:
    """python -m app export: the dataset export to a file (and its manifest beside it)."""
    import asyncio
    import json
    from pathlib import Path

    from .datasets.export import WRITERS, export_to_file, filters_from
    from .images.storage import from_settings

    if args.format not in WRITERS:
        print("error: --format is jsonl, csv, coco, isic or dicom_seg", file=sys.stderr)
        return 2
    filters = filters_from({"classes": args.classes, "rule_ids": args.rule_ids, "image_ids": args.image_ids,
                            "batch": args.batch, "from": args.date_from, "to": args.date_to, "gold": args.gold})
    out = Path(args.out)
    with out.open("wb") as f:  # the mask archives read stored files: the app's storage settings (DL_STORAGE, …)
        manifest = asyncio.run(export_to_file(s.database_url, args.project, args.format, args.as_user, filters, f,
                                              from_settings(s.storage)))
    Path(f"{out}.manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    print(f"exported {manifest['items']} items of {manifest['images']} images to {out} "
          f"(manifest: {out}.manifest.json)")
    return 0


def cmd_import_labels(s: config.Settings, args) -> int:
    """python -m app import-labels: label records (JSON Lines, the export's format) as suggestions."""
    from pathlib import Path

    import psycopg

    from .datasets.label_import import import_file

    try:
        out = import_file(s.database_url, args.project, Path(args.file), args.as_user, args.source)
    except psycopg.Error as exc:
        print(f"error: {exc.diag.message_primary or exc}", file=sys.stderr)
        return 1
    print(f"imported {out['imported']} labels as suggestions 'import:{args.source}'; "
          f"{out['unmatched_images']} records name an image not in the project; "
          f"class codes not in the taxonomy: {out['unmapped_classes'] or 'none'}")
    return 0


def cmd_run(s: config.Settings) -> int:
    """The embedded default: cluster (created once), database, migrations, then the app until Ctrl-C."""
    # a person reads this console (and the companions' lines in it): text unless DL_LOG_FORMAT says; `serve` logs JSON
    s = replace(s, server=replace(s.server, log_format=s.server.log_format or "text"))
    if s.embedded:
        cmd_cluster(s, "start")
        cluster.ensure_database(lambda db: config.embedded_url(s.cluster.socket_dir, s.cluster.pg_port, db),
                                "dermlabel")
    cluster.wait_ready(s.database_url)
    cmd_migrate(s)
    cmd_seed(s)
    from .seed import OPERATOR, ORGANIZATION, PASSWORD, USERS

    if not _port_free(s.server.host, s.server.port):
        print(f"error: port {s.server.port} on {s.server.host} is taken (another DermLabel, or another program): "
              f"stop it, or choose another with DL_PORT", file=sys.stderr)
        return 2
    _companions(s)
    logins = "\n".join([f"  {OPERATOR[0]:<26} operator (creates organizations)"] + [
        f"  {email:<26} {', '.join(roles)}" for email, _, roles, _, _ in USERS])
    banner = (f"\nDermLabel is up: http://{s.server.host}:{s.server.port}/healthz\n"
              f"Demo logins in '{ORGANIZATION}' (password '{PASSWORD}'):\n{logins}\n"
              f"AI: reference service and worker started (jobs: SELECT stage, status, count(*) FROM core.ai_job "
              f"GROUP BY 1, 2)\n"
              f"psql: psql '{s.database_url}'\nCtrl-C stops the app; `make stop` stops PostgreSQL.\n")
    # "up" only once the port answers: a newcomer who opens the link at once must not meet a refused connection
    threading.Thread(target=_announce, args=(s.server.host, s.server.port, banner), daemon=True).start()
    return cmd_serve(s)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _announce(host: str, port: int, banner: str, wait: float = 120.0) -> None:
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            socket.create_connection((target, port), timeout=1).close()
        except OSError:
            time.sleep(0.1)
            continue
        print(banner, flush=True)
        return


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    p = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("run", "serve", "worker", "ai-reference", "migrate", "info", "validate", "seed"):
        sub.add_parser(name)
    e = sub.add_parser("export", help="export approved annotations (jsonl, csv, coco, isic, dicom_seg)")
    e.add_argument("--project", type=int, required=True)
    e.add_argument("--format", default="jsonl", choices=["jsonl", "csv", "coco", "isic", "dicom_seg"])
    e.add_argument("--as", dest="as_user", required=True, help="email of an admin of the project (audited as them)")
    e.add_argument("--out", required=True)
    e.add_argument("--classes", help="comma-separated taxonomy codes (descendants included)")
    e.add_argument("--rule-ids", dest="rule_ids")
    e.add_argument("--image-ids", dest="image_ids", help="comma-separated image ids")
    e.add_argument("--batch")
    e.add_argument("--from", dest="date_from")
    e.add_argument("--to", dest="date_to")
    e.add_argument("--gold", choices=["exclude", "include", "only"])
    i = sub.add_parser("import-labels", help="import label records (JSON Lines) as suggestions")
    i.add_argument("--project", type=int, required=True)
    i.add_argument("--file", required=True, help="JSON Lines: one record per line with sha256 and class (code)")
    i.add_argument("--as", dest="as_user", required=True, help="email of an admin of the project (audited as them)")
    i.add_argument("--source", default="import", help="names the suggestions import:<source>")
    c = sub.add_parser("cluster")
    c.add_argument("action", choices=["start", "stop", "status"])
    sub.add_parser("settings", help="every setting: its variable, default and what it does (the README's table)")
    args = p.parse_args(argv)
    if args.cmd == "settings":
        print(config.markdown(), end="")
        return 0
    try:
        s = config.load()
    except config.SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.cmd == "cluster":
            return cmd_cluster(s, args.action)
        if args.cmd == "export":
            return cmd_export(s, args)
        if args.cmd == "import-labels":
            return cmd_import_labels(s, args)
        return {"run": cmd_run, "serve": cmd_serve, "migrate": cmd_migrate, "info": cmd_info,
                "validate": cmd_validate, "seed": cmd_seed, "worker": cmd_worker,
                "ai-reference": cmd_ai_reference}[args.cmd](s)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
