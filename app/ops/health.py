"""/healthz: is the database reachable (and at which schema version), and does the image storage answer."""
from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from psycopg import sql

from ..images.storage import StorageError
from ..server.db import call_as
from ..server.errors import JSON


@get("/healthz")
async def healthz(state: State) -> Response[bytes]:
    body: dict = {"status": "ok", "database": "ok", "schema_version": None, "storage": "ok"}
    try:
        async with state.pool.connection(timeout=3) as conn:
            body.update(msgspec.json.decode(await call_as(conn, ["dl_anon"], {}, sql.SQL("SELECT api.health()::text"))))
    except Exception as exc:  # any failure here means "not healthy"; the reason stays in the log
        state.log.warning("healthz: database unreachable: %s", exc)
        body.update(status="unavailable", database="unreachable")
    try:
        await state.storage.ping()
    except StorageError as exc:
        state.log.warning("healthz: storage unavailable: %s", exc)
        body.update(status="unavailable", storage="unavailable")
    return Response(msgspec.json.encode(body), media_type=JSON, status_code=200 if body["status"] == "ok" else 503)
