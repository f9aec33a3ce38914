"""/healthz: is the database reachable, and which schema version is applied."""
from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State
from psycopg import sql

from .db import call_as

JSON = "application/json"


@get("/healthz")
async def healthz(state: State) -> Response[bytes]:
    try:
        async with state.pool.connection(timeout=3) as conn:
            body = await call_as(conn, "dl_anon", {}, sql.SQL("SELECT api.health()::text"))
        return Response(body.encode(), media_type=JSON, status_code=200)
    except Exception as exc:  # any failure here means "not healthy"; the reason stays in the log
        state.log.warning("healthz: database unreachable: %s", exc)
        return Response(b'{"status":"unavailable","database":"unreachable","schema_version":null}',
                        media_type=JSON, status_code=503)
