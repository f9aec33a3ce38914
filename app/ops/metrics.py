"""/metrics in Prometheus text format: request counts and latencies (Litestar's middleware, by route template),
connection-pool usage, and work-item queue sizes and the AI pipeline's jobs, failures and model latency read from
SQL at scrape time (the AI worker is another process: its figures live in the database it reports to).

The figures span every organization (project ids and counts), so they are the operator's: /metrics answers a
request that carries `Authorization: Bearer $DL_METRICS_TOKEN` when that is set, else only clients on this machine
(a Prometheus beside the app, or a sidecar)."""
from __future__ import annotations

import hmac
import ipaddress

import msgspec
import psycopg
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from ..server.errors import ApiError

config = PrometheusConfig(app_name="dermlabel", prefix="dermlabel", group_path=True, exclude=["/metrics"],
                          buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])

POOL = Gauge("dermlabel_db_pool_connections", "database connections of the app's pool", ["state"])
QUEUE = Gauge("dermlabel_work_items", "work items by project and status", ["project_id", "status"])
AI_JOBS = Gauge("dermlabel_ai_jobs", "AI jobs by stage and status", ["stage", "status"])
AI_ERRORS = Gauge("dermlabel_ai_failed_attempts", "failed AI attempts (errors, lapsed leases) ever, by stage",
                  ["stage"])
AI_LATENCY = Gauge("dermlabel_ai_latency_ms", "model latency over the last hour, by stage", ["stage", "quantile"])


def _allowed(request: Request, token: str) -> bool:
    if token:
        sent = request.headers.get("authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    try:
        return ipaddress.ip_address(request.client.host if request.client else "").is_loopback
    except ValueError:
        return False


@get("/metrics", include_in_schema=False)
async def metrics(request: Request, state: State) -> Response[bytes]:
    if not _allowed(request, state.settings.metrics.token):
        raise ApiError(403, "PT403", "/metrics is for the operator's monitoring",
                       hint="Send Authorization: Bearer <DL_METRICS_TOKEN>, or scrape from this machine.")
    stats = state.pool.get_stats()
    POOL.labels("size").set(stats.get("pool_size", 0))
    POOL.labels("available").set(stats.get("pool_available", 0))
    POOL.labels("waiting").set(stats.get("requests_waiting", 0))
    try:
        async with state.pool.connection() as conn:  # as the login role: ops.* is granted to it alone
            queue, ai_doc = await (await conn.execute(
                "SELECT ops.queue_stats()::text, ops.ai_queue_stats()::text")).fetchone()
            await conn.rollback()
        QUEUE.clear()
        for row in msgspec.json.decode(queue):
            QUEUE.labels(str(row["project_id"]), row["status"]).set(row["items"])
        ai = msgspec.json.decode(ai_doc)
        for g in (AI_JOBS, AI_ERRORS, AI_LATENCY):
            g.clear()
        for row in ai["jobs"]:
            AI_JOBS.labels(row["stage"], row["status"]).set(row["n"])
        for stage, n in ai["attempt_errors"].items():
            AI_ERRORS.labels(stage).set(n)
        for stage, q in ai["latency_ms"].items():
            AI_LATENCY.labels(stage, "0.5").set(q["p50"])
            AI_LATENCY.labels(stage, "0.95").set(q["p95"])
    except psycopg.Error:
        pass  # the database being down shows in the pool gauges and in /healthz; the rest still scrapes
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
