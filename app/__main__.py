"""Command line: python -m app run | serve | worker | ai-reference | migrate | info | validate | seed | export |
import-labels | cluster {start,stop,status}."""
from __future__ import annotations

import argparse
import logging
import sys

from . import config
from .migrate.apply import Migrator
from .migrate.resolve import MigrationError, load_config
from .ops import cluster


def _migrator(s: config.Settings) -> Migrator:
    return Migrator(s.database_url, load_config(s.flyway_conf))


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
    log = s.data_dir / "log" / "postgresql.log"
    if action == "start":
        cluster.init(s.pg_data, s.socket_dir)
        cluster.start(s.pg_data, s.socket_dir, s.pg_port, log)
        print(f"PostgreSQL running: socket {s.socket_dir}, port {s.pg_port}, log {log}")
    elif action == "stop":
        cluster.stop(s.pg_data)
        print("PostgreSQL stopped")
    else:
        print("running" if cluster.status(s.pg_data) else "stopped")
    return 0


def cmd_seed(s: config.Settings) -> int:
    from .seed import seed
    from .images.storage import from_env

    seed(s.database_url, from_env(s.data_dir))
    return 0


def cmd_serve(s: config.Settings) -> int:
    import os

    import uvicorn

    from .server.logs import configure
    from .server.main import create_app

    configure(os.environ.get("DL_LOG_FORMAT", "json"))
    uvicorn.run(create_app(s), host=s.http_host, port=s.http_port, log_config=None, access_log=False,
                lifespan="on")
    return 0


def cmd_worker(s: config.Settings) -> int:
    """The AI worker: jobs from SQL, models over HTTP (or SageMaker), results back to SQL."""
    import os

    from .ai import config as ai_config
    from .ai.worker import serve
    from .server.db import app_conninfo
    from .server.logs import configure
    from .images.storage import from_env

    configure(os.environ.get("DL_LOG_FORMAT", "json"))
    serve(app_conninfo(s.database_url, s.app_db_user, s.app_db_password), from_env(s.data_dir), ai_config.load())
    return 0


def cmd_ai_reference(s: config.Settings) -> int:
    """The reference AI service (crop + ABCD pre-classifier), its own small ASGI app and port."""
    import os

    import uvicorn

    from .ai_reference.service import create_reference_app
    from .server.logs import configure

    configure(os.environ.get("DL_LOG_FORMAT", "json"))
    uvicorn.run(create_reference_app(), host=os.environ.get("DL_AI_HOST", "127.0.0.1"),
                port=int(os.environ.get("DL_AI_PORT", "8001")), log_config=None, access_log=False)
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


def _companions() -> list:
    """`run` starts the reference AI service and the AI worker next to the app, and stops them with it."""
    import atexit
    import os
    import subprocess

    procs = []
    if os.environ.get("DL_AI_REFERENCE", "on") != "off":
        procs.append(subprocess.Popen([sys.executable, "-m", "app", "ai-reference"]))
        _wait_listening(int(os.environ.get("DL_AI_PORT", "8001")), procs[-1])  # before the worker calls it
    if os.environ.get("DL_AI_WORKER", "on") != "off":
        procs.append(subprocess.Popen([sys.executable, "-m", "app", "worker"]))

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

    from .images.storage import from_env as storage_from_env

    if args.format not in WRITERS:
        print("error: --format is jsonl, csv, coco, isic or dicom_seg", file=sys.stderr)
        return 2
    filters = filters_from({"classes": args.classes, "rule_ids": args.rule_ids, "image_ids": args.image_ids,
                            "batch": args.batch, "from": args.date_from, "to": args.date_to, "gold": args.gold})
    out = Path(args.out)
    with out.open("wb") as f:  # the mask archives read stored files: the app's storage settings (DL_STORAGE, …)
        manifest = asyncio.run(export_to_file(s.database_url, args.project, args.format, args.as_user, filters, f,
                                              storage_from_env(s.data_dir)))
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
    import os

    os.environ.setdefault("DL_LOG_FORMAT", "text")  # a person reads this console; `serve` logs JSON
    if s.embedded:
        cmd_cluster(s, "start")
        cluster.ensure_database(lambda db: config.embedded_url(s.socket_dir, s.pg_port, db), "dermlabel")
    cluster.wait_ready(s.database_url)
    cmd_migrate(s)
    cmd_seed(s)
    from .seed import OPERATOR, ORGANIZATION, PASSWORD, USERS

    _companions()
    logins = "\n".join([f"  {OPERATOR[0]:<26} operator (creates organizations)"] + [
        f"  {email:<26} {', '.join(roles)}" for email, _, roles, _, _ in USERS])
    print(f"\nDermLabel is up: http://{s.http_host}:{s.http_port}/healthz\n"
          f"Demo logins in '{ORGANIZATION}' (password '{PASSWORD}'):\n{logins}\n"
          f"AI: reference service and worker started (jobs: SELECT stage, status, count(*) FROM core.ai_job "
          f"GROUP BY 1, 2)\n"
          f"psql: psql '{s.database_url}'\nCtrl-C stops the app; `make stop` stops PostgreSQL.\n", flush=True)
    return cmd_serve(s)


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
    args = p.parse_args(argv)
    s = config.load()
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
