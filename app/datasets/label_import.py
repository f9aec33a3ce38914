"""python -m app import-labels: label records in JSON Lines (the export's format) into a project as suggestions.
Reads the file in batches and calls api.import_labels for each, as the named admin (a trusted local operator,
like psql; the same function and audit as over HTTP)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg.types.json import Jsonb

from ..server import strictjson


def batches(path: Path, size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:  # strictly, as the HTTP bodies: a key named twice in a record is refused, not resolved
                batch.append(strictjson.decode(line.encode()))
            except strictjson.Refused as exc:
                why = f"not JSON ({exc.details})" if exc.message == "not valid JSON" else exc.message
                raise SystemExit(f"{path}:{number}: {why}") from None
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def import_file(database_url: str, project: int, path: Path, email: str, source: str, size: int = 1000) -> dict:
    """Each batch in its own transaction: a refused batch (a record without sha256 or class) stops the import
    there, and the batches before it stay imported (the summary says how far it got)."""
    total = {"imported": 0, "unmatched_images": 0, "unmapped_classes": Counter()}
    with psycopg.connect(database_url) as conn:
        row = conn.execute('SELECT id FROM auth."user" WHERE email = %s AND active', (email,)).fetchone()
        if not row:
            raise SystemExit(f"no active user {email}")
        claims = json.dumps({"sub": row[0], "role": "dl_admin", "request_id": "cli-import-labels"})
        conn.commit()
        for batch in batches(path, size):
            with conn.transaction():
                conn.execute("SELECT set_config('role', 'dl_admin', true), "
                             "set_config('request.jwt.claims', %s, true)", (claims,))
                out = conn.execute("SELECT api.import_labels(%s, %s, %s)",
                                   (project, Jsonb(batch), source)).fetchone()[0]
            total["imported"] += out["imported"]
            total["unmatched_images"] += len(out["unmatched_images"])
            total["unmapped_classes"].update(out["unmapped_classes"])
    total["unmapped_classes"] = dict(total["unmapped_classes"])
    return total
