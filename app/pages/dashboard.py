"""The metrics dashboard (admins, analysts): charts of the metrics views drawn on the server as inline SVG, the views
as tables and each table as CSV. People by name, times in the viewer's locale (each in a <time datetime>, written by
the browser), figures rounded for the eye only (the views and the CSV keep full precision), a period for the
time-based views, and for admins a button that refreshes the views now. Every number, the list of views and who may
see which project come from SQL: api.metrics, api.dashboard_context and api.agreement_interval."""
from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
from collections import OrderedDict
from datetime import date, datetime
from urllib.parse import urlencode

import msgspec
import psycopg
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.response import Template
from markupsafe import Markup, escape

from ..auth.tokens import Caller, identify
from ..rpc import calls as rpc
from ..server import errors
from ..server.errors import ApiError
from ..server.request import request_id
from . import period as periods
from .charts import Bucket, Estimate, Row, columns, hbars, intervals, num, rates
from .chrome import caller_of, me_of, nav, roles_of, to_login

log = logging.getLogger("dermlabel.dashboard")

# the views whose rows have a date, and which column holds it: the period applies to them
TIME_VIEWS = {"throughput": "bucket", "annotator_daily": "day"}
# columns that hold a person's id: shown by name
PERSON_COLUMNS = {"annotator_id", "annotator_a", "annotator_b"}
TITLES = {
    "queue_by_status": "Queue by status", "annotator_daily": "Annotators per day", "review_outcome": "Review outcome",
    "class_distribution": "Final classes", "flags_by_reason": "Rejected images by reason",
    "throughput": "Throughput", "agreement_pair": "Agreement per annotator pair (Cohen's kappa)",
    "agreement_project": "Agreement per dimension (Fleiss' kappa)", "agreement_alpha": "Krippendorff's alpha",
    "quality_by_stratum": "Quality by stratum", "region_agreement_pair": "Region agreement per annotator pair",
    "region_agreement_project": "Region agreement per label", "ai_model_quality": "AI model quality",
    "gold_accuracy": "Gold accuracy", "review_hints": "Review hints", "ai_agreement": "AI agreement",
}
STRATA = {"fitzpatrick": "Fitzpatrick skin type", "body_site": "body site"}
SCOPE = {"queue_by_status": "Now.", "review_outcome": "All time (this view has no dates; the period's review "
                                                      "decisions are in the activity above)."}
# columns of proportions and coefficients: decimals even when a value is whole (JSON writes 1.0 as 1)
DECIMAL = re.compile(r"(^|_)(rate|kappa|alpha|accuracy|dice|iou|share|agreement|distance|probability)($|_)")
# the columns that say what a row is about come first (jsonb orders an object's keys by length)
LEADING = ["day", "granularity", "bucket", "status", "dimension", "metric", "stratum", "value", "label", "source",
           "model_name", "model_version", "annotator_id", "annotator_a", "annotator_b", "subject", "code", "name",
           "kind", "reason"]
INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
INTERVAL_BUDGET_SECONDS = 2.0  # the page waits this long for bootstrap intervals; the rest are kept for the next view


async def _call(state: State, caller: Caller, fn: str, args: dict, rid: str):
    try:
        out = await rpc.call(state.pool, state.catalog.get(fn), caller, args, rid)
    except psycopg.Error as exc:
        raise errors.as_api_error(exc, caller.anonymous, rid) from None
    return msgspec.json.decode(out)


@get("/dashboard", include_in_schema=False)
async def dashboard(request: Request, state: State) -> Response:
    caller = caller_of(request, state)
    if caller.anonymous:
        return to_login(request)
    me = await me_of(request, state, caller)
    if me is None:
        return to_login(request)
    rid = request_id(request)
    base = {"me": me, "nav": nav(roles_of(me), None), "project": None, "projects": [], "active": "/dashboard",
            "title": "Metrics"}
    raw = (request.query_params.get("project") or "").strip()
    if raw and not (raw.isdigit() and len(raw) <= 18):
        return _refused(base, 400, "No such project", f"'{raw[:40]}' is not a project id.")
    try:
        ctx = await _call(state, caller, "dashboard_context", {"project_id": int(raw) if raw else None}, rid)
    except ApiError as exc:
        if exc.status == 403:
            return _refused(base, 403, "Not for your role",
                            "Metrics are for a project's admins and its organization's analysts.")
        if exc.status == 404:
            return _refused(base, 404, "Not your project",
                            "You may not read this project's metrics (or it does not exist).")
        raise
    project = ctx["project"]
    if project is None:
        return _refused(base, 403, "No metrics for you",
                        "Metrics are for a project's admins and its organization's analysts.")
    pid, min_shared = project["id"], project["agreement_min_shared"]
    context = {**base, "nav": nav(roles_of(me), pid), "project": pid, "project_name": project["name"],
               "projects": [p["id"] for p in ctx["projects"]],
               "project_names": {p["id"]: p["name"] for p in ctx["projects"]},
               "title": f"Metrics · {project['name']}", "can_refresh": ctx["admin"], "min_shared": min_shared}
    params = dict(request.query_params)
    try:
        period = periods.parse(params)
    except periods.PeriodError as exc:
        return Template(template_name="dashboard.html", status_code=400,
                        context={**context, **_period_controls(pid, None, params), "error": str(exc),
                                 "error_field": exc.field})
    views = await _call(state, caller, "metrics", {"project_id": pid}, rid)  # every view, one call
    rows = {name: v["rows"] for name, v in views.items()}
    names = {p["id"]: p["display_name"] for p in ctx["people"]}
    found = await _intervals(state, caller, pid, rows.get("agreement_alpha", []), rid)
    refreshed = max((v["refreshed_at"] or "" for v in views.values()), default="") or None
    context.update(_period_controls(pid, period, params))
    context.update(_activity(rows, period, names))
    context.update(_agreement(rows, found, min_shared))
    context.update(_quality(rows, project, min_shared, names))
    context["now_charts"] = {
        "queue": hbars("queue", "Work items by status", [(r["status"], r["items"]) for r in
                                                         sorted(rows.get("queue_by_status", []),
                                                                key=lambda r: r["status"])]),
        "classes": hbars("classes", "Final classes of approved items",
                         [(f'{r["code"]} {r["name"]}', r["items"]) for r in
                          sorted(rows.get("class_distribution", []), key=lambda r: -r["items"])[:15]]),
    }
    context["tables"] = _tables(rows, period, names, pid)
    context["refreshed"] = refreshed
    return Template(template_name="dashboard.html", context=context)


def _refused(base: dict, status: int, title: str, reason: str) -> Template:
    return Template(template_name="forbidden.html", status_code=status,
                    context={**base, "title": title, "reason": reason})


def _period_controls(pid: int, period: periods.Period | None, params: dict) -> dict:
    links = [{"label": label, "href": "/dashboard?" + urlencode({"project": pid, "period": value}),
              "current": period is not None and period.name == value} for value, label in periods.CHOICES.items()]
    custom = period is not None and period.name == "custom"
    return {"period": period, "period_links": links, "custom": custom,
            "from_value": params.get("from", "") if period is None or custom else "",
            "to_value": params.get("to", "") if period is None or custom else ""}


# --- activity in the period -------------------------------------------------------------------------------------

def _activity(rows: dict, period: periods.Period, names: dict) -> dict:
    through = rows.get("throughput", [])
    days = [r for r in through if r["granularity"] == "day"]
    first = min((date.fromisoformat(r["bucket"][:10]) for r in days), default=None)
    span = periods.span(period, first)
    buckets: list[Bucket] = []
    if span is not None:
        source = [r for r in through if r["granularity"] == ("hour" if span.granularity == "hour" else "day")]
        acc = {t: [0, 0] for t in span.starts}
        for r in source:
            if not period.holds_instant(r["bucket"]):
                continue  # a week or month bucket may begin before the period does
            t = span.bucket_of(periods.instant(r["bucket"]))
            if t in acc:
                acc[t][0] += r["submitted"]
                acc[t][1] += r["approved"]
        buckets = [Bucket(_bucket_label(t, span.granularity), acc[t], t.isoformat(), span.granularity)
                   for t in span.starts]
    in_period = [r for r in days if period.holds_day(r["bucket"])]
    totals = {k: sum(r[k] for r in in_period) for k in ("submitted", "approved", "changes_requested", "rejected")}
    decided = totals["approved"] + totals["changes_requested"]
    totals["acceptance"] = totals["approved"] / decided if decided else None
    if not any(sum(b.values) for b in buckets):
        buckets = []
    desc = (f"{period.label}: {totals['submitted']:,} revisions submitted and {totals['approved']:,} approved"
            + (f", per {span.granularity} (UTC) from {span.starts[0].date().isoformat()}" if span and buckets else ""))
    if buckets:
        peak = max(buckets, key=lambda b: b.values[0])
        desc += f"; most submitted in one {span.granularity}: {peak.values[0]:,} ({peak.label})"
    per = {}
    for r in rows.get("annotator_daily", []):
        if period.holds_day(r["day"]):
            a = per.setdefault(r["annotator_id"], {"submitted": 0, "approved_first_review": 0, "changes_requested": 0,
                                                   "rejected_images": 0})
            for k in a:
                a[k] += r[k] or 0
    people = sorted(({"name": _who(names, uid), **v} for uid, v in per.items()),
                    key=lambda p: (-p["submitted"], p["name"]))
    return {
        "granularity": span.granularity if span else "day", "totals": totals, "annotators": people,
        "activity_charts": {
            "throughput": columns("throughput", f"Revisions submitted and approved, {period.label}", buckets,
                                  ["Submitted", "Approved"], desc),
            "annotators": hbars("annotators", f"Revisions submitted per annotator, {period.label}",
                                [(p["name"], p["submitted"]) for p in people[:20]]),
        },
    }


def _bucket_label(t: datetime, granularity: str) -> str:
    if granularity == "hour":
        return t.strftime("%H:%M")
    if granularity == "month":
        return t.strftime("%b %Y")
    return f"{t.strftime('%b')} {t.day}"


def _who(names: dict, uid) -> str:
    return names.get(uid) or f"person {uid}"


# --- agreement: Krippendorff's alpha with its bootstrap interval ------------------------------------------------

class _IntervalCache:
    """api.agreement_interval's answers, kept per project, dimension and metric for as long as the figure of
    metrics.agreement_alpha they go with is unchanged: a bootstrap costs images x resamples, too much to redo at
    every page view. Its readers are api.metrics's (the project's admins, its organization's analysts), so an answer
    is shown only after the page's own api.metrics call for that project succeeded."""

    def __init__(self, size: int = 512):
        self.size = size
        self.done: OrderedDict[tuple, dict] = OrderedDict()
        self.running: dict[tuple, asyncio.Task] = {}
        self.gate = asyncio.Semaphore(2)  # a bootstrap keeps a core busy: two at a time

    async def compute(self, key: tuple, state: State, caller: Caller, args: dict, rid: str) -> dict | None:
        try:
            async with self.gate:
                result = await _call(state, caller, "agreement_interval", args, rid)
            self.done[key] = result
            while len(self.done) > self.size:
                self.done.popitem(last=False)
            return result
        except Exception as exc:  # shown without whiskers; the next view tries again
            log.warning("request %s: agreement_interval %s failed: %s", rid, args, exc)
            return None
        finally:
            self.running.pop(key, None)


async def _intervals(state: State, caller: Caller, pid: int, alpha_rows: list[dict], rid: str) -> dict:
    cache = getattr(state, "dashboard_intervals", None)
    if cache is None:
        cache = state.dashboard_intervals = _IntervalCache()
    out, pending = {}, []
    for r in alpha_rows:
        if r["metric"] not in ("nominal", "taxonomy", "interval") or (r["images"] or 0) < 2:
            continue
        key = (pid, r["dimension"], r["metric"], r["images"], r["ratings"], r["alpha"])
        if key in cache.done:
            cache.done.move_to_end(key)
            out[(r["dimension"], r["metric"])] = cache.done[key]
            continue
        task = cache.running.get(key)
        if task is None:
            args = {"project_id": pid, "dimension": r["dimension"], "metric": r["metric"]}
            task = cache.running[key] = asyncio.create_task(cache.compute(key, state, caller, args, rid))
        pending.append(((r["dimension"], r["metric"]), task))
    if pending:
        await asyncio.wait([t for _, t in pending], timeout=INTERVAL_BUDGET_SECONDS)
        for dm, task in pending:
            if task.done() and task.result() is not None:
                out[dm] = task.result()
    out["_missing"] = sum(1 for dm, _ in pending if dm not in out)
    return out


def _dimension_label(dimension: str, metric: str | None = None) -> str:
    if dimension == "class":
        return f"Class ({metric})" if metric else "Class"
    key = dimension.removeprefix("descriptor:")
    return _pretty(key) + (f" ({metric})" if metric and metric != "nominal" else "")


def _pretty(key: str) -> str:
    text = STRATA.get(key, key.replace("_", " "))
    return text[:1].upper() + text[1:]


def _agreement(rows: dict, found: dict, min_shared: int) -> dict:
    alpha_rows = sorted(rows.get("agreement_alpha", []),
                        key=lambda r: (r["dimension"] != "class", r["dimension"], r["metric"] != "nominal",
                                       r["metric"]))
    estimates = []
    for r in alpha_rows:
        got = found.get((r["dimension"], r["metric"]))
        note = ""
        if got and r["alpha"] is not None and got.get("alpha") is not None and abs(got["alpha"] - r["alpha"]) > 1e-9:
            note = "interval from data newer than the figure: refresh"
        estimates.append(Estimate(_dimension_label(r["dimension"], r["metric"]), r["alpha"],
                                  got.get("low") if got else None, got.get("high") if got else None,
                                  r["images"] or 0, (r["images"] or 0) >= min_shared, note))
    resamples = next((g["resamples"] for k, g in found.items() if k != "_missing" and g), 1000)
    return {"alpha_chart": intervals("alpha", "Krippendorff's alpha per dimension, with 95 % bootstrap intervals",
                                     estimates, min_shared),
            "alpha_notes": [f"{e.label}: {e.note}" for e in estimates if e.note],
            "intervals_missing": found.get("_missing", 0), "resamples": resamples}


# --- quality by stratum, regions, AI models ---------------------------------------------------------------------

def _quality(rows: dict, project: dict, min_shared: int, names: dict) -> dict:
    strata_rows = rows.get("quality_by_stratum", [])
    order = list(project.get("quality_strata") or [])
    keys = order + sorted({r["stratum"] for r in strata_rows} - set(order))
    strata = []
    for key in keys:
        mine = sorted((r for r in strata_rows if r["stratum"] == key), key=lambda r: r["value"])
        if not mine:
            continue
        chart_rows = [Row(r["value"], [r["class_alpha"], r["gold_accuracy"], r["ai_agreement_rate"]],
                          f'{r["images"]:,} images, {r["images_read_twice"]:,} read twice',
                          ["too few images" if r["images_read_twice"] < min_shared and r["class_alpha"] is not None
                           else "", "", ""]) for r in mine]
        label = STRATA.get(key, key.replace("_", " "))
        strata.append({"key": key, "label": label,
                       "chart": rates(f"stratum-{key}", f"Quality by {label}", [("", chart_rows)],
                                      ["Class alpha", "Gold accuracy", "AI agreement"])})
    region_rows = sorted(rows.get("region_agreement_project", []), key=lambda r: r["label"])
    per_label = rates("regions", "Mean Dice per region label",
                      [("", [Row(r["label"], [r["mean_dice"]],
                                 f'{r["images_compared"]:,} of {r["images_drawn"]:,} images compared',
                                 ["too few images" if r["images_compared"] < min_shared and r["mean_dice"] is not None
                                  else ""])
                             for r in region_rows])], ["Mean Dice"])
    pairs: dict[str, list[Row]] = {}
    for r in sorted(rows.get("region_agreement_pair", []),
                    key=lambda r: (r["label"], _who(names, r["annotator_a"]), _who(names, r["annotator_b"]))):
        pairs.setdefault(r["label"], []).append(Row(
            f'{_who(names, r["annotator_a"])} & {_who(names, r["annotator_b"])}', [r["mean_dice"]],
            f'{r["images"]:,} images, lowest {num(r["min_dice"])}',
            ["too few images" if r["images"] < min_shared else ""]))
    per_pair = rates("region-pairs", "Mean Dice per annotator pair", list(pairs.items()), ["Mean Dice"], left=230)
    models = rows.get("ai_model_quality", [])

    def model_rows(source: str) -> list[Row]:
        return [Row(f'{r["model_name"]} {r["model_version"]}',
                    [r["acceptance_rate"], r["agreement_rate"], r["cohen_kappa"]], f'{r["items"]:,} items')
                for r in sorted(models, key=lambda r: (r["model_name"], r["model_version"])) if r["source"] == source]
    ai = rates("ai-models", "AI suggestions per model version: acceptance, agreement with the final class, kappa",
               [("Models", model_rows("model")), ("Imported labels", model_rows("import"))],
               ["Acceptance", "Agreement", "Cohen's kappa"], width=680, left=170)
    return {"strata": strata, "region_charts": {"labels": per_label, "pairs": per_pair}, "ai_chart": ai}


# --- the tables -------------------------------------------------------------------------------------------------

def _in_period(view: str, rows: list[dict], period: periods.Period | None) -> list[dict]:
    column = TIME_VIEWS.get(view)
    if period is None or column is None or period.name == "all":
        return rows
    return [r for r in rows if r.get(column) and period.holds_day(r[column])]


def _ordered(view: str, rows: list[dict], names: dict) -> list[dict]:
    """A view's rows in reading order: the newest first in the time-based views, else by what they are about."""
    if view in TIME_VIEWS:
        column = TIME_VIEWS[view]
        rows = sorted(rows, key=lambda r: (str(r.get("granularity", "")), _who(names, r.get("annotator_id", 0))))
        return sorted(rows, key=lambda r: r.get(column) or "", reverse=True)
    keys = [c for c in LEADING if rows and c in rows[0]]
    return sorted(rows, key=lambda r: tuple(_who(names, r[c]) if c in PERSON_COLUMNS else str(r[c] or "")
                                            for c in keys))


def _tables(rows: dict, period: periods.Period, names: dict, pid: int) -> list[dict]:
    tables = []
    for view in sorted(rows, key=lambda v: TITLES.get(v, v).lower()):
        shown = _ordered(view, _in_period(view, rows[view], period), names)
        query = {"project": pid, **(period.query() if view in TIME_VIEWS else {})}
        columns_ = sorted(shown[0], key=lambda c: LEADING.index(c) if c in LEADING else len(LEADING)) if shown else []
        decimal = {c for c in columns_ if DECIMAL.search(c) or any(isinstance(r.get(c), float) for r in shown)}
        tables.append({
            "view": view, "title": TITLES.get(view, _pretty(view)),
            "scope": f"In the period: {period.label}." if view in TIME_VIEWS else SCOPE.get(view, "All time."),
            "csv": f"/dashboard/{view}.csv?{urlencode(query)}",
            "head": [_heading(c) for c in columns_],
            "body": [[_cell(c, r.get(c), r, names, c in decimal) for c in columns_] for r in shown[:200]],
            "more": max(0, len(shown) - 200)})
    return tables


def _heading(column: str) -> str:
    if column in PERSON_COLUMNS:
        return column.removesuffix("_id").replace("_", " ")
    return column.replace("_", " ")


def _cell(column: str, value, row: dict, names: dict, decimal: bool = False) -> Markup:
    if value is None:
        return Markup("")
    if column in PERSON_COLUMNS and isinstance(value, int):
        return Markup(f'<span title="person {value}">{escape(_who(names, value))}</span>')
    if isinstance(value, bool):
        return Markup("yes" if value else "no")
    if isinstance(value, (int, float)) and decimal:
        value = float(value)
    if isinstance(value, float):
        digits = 1 if column.endswith(("_seconds", "_per_hour", "_ms")) else 3
        return Markup(f'<span title="{value!r}">{escape(num(value, digits))}</span>')
    if isinstance(value, int):
        return Markup(escape(num(value)))
    if isinstance(value, str) and INSTANT.match(value):
        fmt = "date" if column == "bucket" and row.get("granularity") == "day" else "datetime"
        return Markup(f'<time datetime="{escape(value)}" data-format="{fmt}">{escape(value)}</time>')
    if isinstance(value, str) and DAY.fullmatch(value):
        return Markup(f'<time datetime="{escape(value)}" data-format="date">{escape(value)}</time>')
    return Markup(escape(value if isinstance(value, str) else msgspec.json.encode(value).decode()))


@get("/dashboard/{filename:str}")
async def dashboard_csv(request: Request, state: State, filename: str, project: int) -> Response[bytes]:
    if not filename.endswith(".csv"):
        raise ApiError(404, "PT404", f"no download {filename}", hint="/dashboard/<view>.csv?project=<id>")
    view = filename.removesuffix(".csv")
    period = None
    if any(request.query_params.get(k) for k in ("period", "from", "to")):
        try:
            period = periods.parse(dict(request.query_params))
        except periods.PeriodError as exc:
            raise ApiError(400, "PT400", str(exc), {"field": exc.field}) from None
    caller = identify(request, state.tokens)
    rows = (await _call(state, caller, "metrics", {"project_id": project, "view": view}, request_id(request)))["rows"]
    rows = _in_period(view, rows, period)
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return Response(out.getvalue().encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{view}-project-{project}.csv"'})
