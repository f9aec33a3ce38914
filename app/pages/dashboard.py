"""The metrics dashboard (admins, analysts): the metrics views as tables and inline SVG charts, and each table as
CSV. Every number, the list of views and who may see which project come from api.metrics."""
from __future__ import annotations

import csv
import io

import msgspec
import psycopg
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.response import Template

from ..auth.tokens import identify
from ..rpc import calls as rpc
from ..server import errors
from ..server.errors import ApiError
from ..server.request import request_id
from .charts import bars, hbars


async def _metrics(request: Request, state: State, args: dict) -> dict:
    caller = identify(request, state.tokens)
    rid = request_id(request)
    try:
        out = await rpc.call(state.pool, state.catalog.get("metrics"), caller, args, rid)
    except psycopg.Error as exc:
        raise errors.as_api_error(exc, caller.anonymous, rid) from None
    return msgspec.json.decode(out)


@get("/dashboard")
async def dashboard(request: Request, state: State, project: int) -> Template:
    views = await _metrics(request, state, {"project_id": project})  # every view, one call
    rows = {name: v["rows"] for name, v in views.items()}
    daily = sorted((r for r in rows["throughput"] if r["granularity"] == "day"), key=lambda r: r["bucket"])[-30:]
    charts = {
        "queue": hbars([(r["status"], r["items"]) for r in sorted(rows["queue_by_status"], key=lambda r: r["status"])]),
        "submitted": bars([(r["bucket"][:10], r["submitted"]) for r in daily]),
        "approved": bars([(r["bucket"][:10], r["approved"]) for r in daily]),
        "classes": hbars([(r["code"], r["items"]) for r in sorted(rows["class_distribution"],
                                                                   key=lambda r: -r["items"])[:15]]),
    }
    refreshed = max((v["refreshed_at"] or "" for v in views.values()), default="") or None
    return Template(template_name="dashboard.html",
                    context={"project": project, "rows": rows, "charts": charts, "refreshed": refreshed})


@get("/dashboard/{filename:str}")
async def dashboard_csv(request: Request, state: State, filename: str, project: int) -> Response[bytes]:
    if not filename.endswith(".csv"):
        raise ApiError(404, "PT404", f"no download {filename}", hint="/dashboard/<view>.csv?project=<id>")
    view = filename.removesuffix(".csv")
    rows = (await _metrics(request, state, {"project_id": project, "view": view}))["rows"]
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return Response(out.getvalue().encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{view}-project-{project}.csv"'})
