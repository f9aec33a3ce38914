"""/metrics in Prometheus text format: request counts and latencies (Litestar's middleware, by route template),
connection-pool usage, and work-item queue sizes read from SQL at scrape time."""
from __future__ import annotations

import msgspec
import psycopg
from litestar import Response, get
from litestar.datastructures import State
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from . import rpc
from .auth import ANONYMOUS

config = PrometheusConfig(app_name="dermlabel", prefix="dermlabel", group_path=True, exclude=["/metrics"],
                          buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])

POOL = Gauge("dermlabel_db_pool_connections", "database connections of the app's pool", ["state"])
QUEUE = Gauge("dermlabel_work_items", "work items by project and status", ["project_id", "status"])


@get("/metrics", include_in_schema=False)
async def metrics(state: State) -> Response[bytes]:
    stats = state.pool.get_stats()
    POOL.labels("size").set(stats.get("pool_size", 0))
    POOL.labels("available").set(stats.get("pool_available", 0))
    POOL.labels("waiting").set(stats.get("requests_waiting", 0))
    try:
        out = await rpc.call(state.pool, state.catalog.get("queue_stats"), ANONYMOUS, {}, "metrics")
        QUEUE.clear()
        for row in msgspec.json.decode(out):
            QUEUE.labels(str(row["project_id"]), row["status"]).set(row["items"])
    except psycopg.Error:
        pass  # the database being down shows in the pool gauges and in /healthz; the rest still scrapes
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
