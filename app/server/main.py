"""create_app(): everything the HTTP layer is, wired in one place."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

import httpx
import psycopg

from litestar import Litestar, Request, Response
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware

from .. import auth, config, datasets, dicom, images, ops, pages, rpc, segmentation
from ..ai import config as ai_config
from ..auth.oidc import OidcConfig
from ..auth.tokens import Tokens, load_secret
from ..images.storage import from_settings as storage_from_settings
from ..ops.metrics import config as prometheus
from ..ops.refresher import refresh_forever
from ..rpc.calls import Catalog, listen_for_reload
from . import errors
from .db import app_conninfo, make_pool
from .errors import JSON, ApiError
from .limits import header_limit
from .logs import access_log
from .ratelimit import RateLimit

# Every package of the HTTP layer hands over its own handlers (route_handlers() in its __init__.py, imported on
# call, so that the worker, the seed and the CLI use those packages without loading the HTTP layer).
PACKAGES = (ops, auth, rpc, images, dicom, segmentation, datasets, pages)

log = logging.getLogger("dermlabel")


def _api_error(_: Request, exc: ApiError) -> Response[bytes]:
    return errors.from_api(exc)


def _http_error(_: Request, exc: HTTPException) -> Response[bytes]:
    # Litestar's own refusals (unknown route, body too large, bad method) in our error shape
    return Response(errors.body(f"PT{exc.status_code}", str(exc.detail)), status_code=exc.status_code,
                    media_type=JSON, headers=exc.headers)


def _database_error(request: Request, exc: psycopg.Error) -> Response[bytes]:
    # a handler that did not map its own SQL error (a page, a stream): the same mapping as the RPC routes
    return errors.from_api(errors.as_api_error(exc, False, request.scope.get("state", {}).get("request_id", "")))


def _unexpected(_: Request, exc: Exception) -> Response[bytes]:
    log.exception("unhandled error")
    return Response(errors.body("XX000", "internal error"), status_code=500, media_type=JSON)


def create_app(settings: config.Settings | None = None) -> Litestar:
    """The app for `settings` (by default config.load(): the environment's)."""
    settings = settings or config.load()
    conninfo = app_conninfo(settings.database_url, settings.database.app_db_user, settings.database.app_db_password)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = make_pool(conninfo, max_size=settings.database.pool_size)
        await pool.open(wait=False)
        catalog = Catalog()
        app.state.pool, app.state.catalog, app.state.log = pool, catalog, log
        app.state.settings = settings  # what handlers read of the configuration (limits, /metrics's token, cookies)
        app.state.tokens = Tokens(load_secret(settings.auth.jwt_secret, settings.cluster.data_dir),
                                  settings.auth.jwt_ttl_seconds)
        app.state.storage = storage_from_settings(settings.storage)
        app.state.oidc = OidcConfig(settings.oidc)
        app.state.login_limit = RateLimit(settings.limits.rate_login, "sign-in attempts", "login")
        app.state.rpc_limit = RateLimit(settings.limits.rate_rpc, "requests", "rpc")
        app.state.segment = ai_config.segment(settings)  # click-to-segment's service (DL_AI_SEGMENT*)
        app.state.http = httpx.AsyncClient()
        try:
            await catalog.load(pool, timeout=3)
        except Exception as exc:  # the database may not be up yet: the listener retries and loads it then
            log.warning("route table not loaded at start-up: %s", exc)
        tasks = [asyncio.create_task(listen_for_reload(conninfo, catalog, pool))]
        if (every := settings.metrics.refresh_seconds) > 0:
            tasks.append(asyncio.create_task(refresh_forever(pool, every)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.http.aclose()
            await pool.close()

    handlers = [handler for package in PACKAGES for handler in package.route_handlers(settings)]
    static = create_static_files_router(path="/static", directories=[config.ROOT / "web" / "static"])
    return Litestar(
        route_handlers=[*handlers, static],
        template_config=TemplateConfig(directory=config.ROOT / "web" / "templates", engine=JinjaTemplateEngine),
        middleware=[DefineMiddleware(header_limit, max_bytes=settings.limits.max_header_kb * 1024), access_log,
                    prometheus.middleware],
        lifespan=[lifespan],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, psycopg.Error: _database_error,
                            Exception: _unexpected},
        openapi_config=None,
        logging_config=None,  # app.server.logs configures logging; Litestar's own would disable our loggers
        debug=False,
    )
