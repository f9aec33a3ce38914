"""create_app(): everything the HTTP layer is, wired in one place."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from contextlib import asynccontextmanager
from typing import AsyncIterator

import httpx
import psycopg

from litestar import Litestar, Request, Response
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.exceptions import HTTPException

from .. import auth, config, datasets, dicom, images, ops, pages, rpc, segmentation
from ..ai import config as ai_config
from ..auth.oidc import OidcConfig
from ..auth.tokens import Tokens, load_secret
from ..images.storage import from_env as storage_from_env
from ..ops.metrics import config as prometheus
from ..ops.refresher import interval_from_env, refresh_forever
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
    settings = settings or config.load()
    conninfo = app_conninfo(settings.database_url, settings.app_db_user, settings.app_db_password)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = make_pool(conninfo, max_size=int(os.environ.get("DL_POOL_SIZE", "16")))
        await pool.open(wait=False)
        catalog = Catalog()
        app.state.pool, app.state.catalog, app.state.log = pool, catalog, log
        app.state.tokens = Tokens(load_secret(settings.data_dir), int(os.environ.get("DL_JWT_TTL_SECONDS", "28800")))
        app.state.storage = storage_from_env(settings.data_dir)
        app.state.oidc = OidcConfig()
        app.state.login_limit = RateLimit(os.environ.get("DL_RATE_LOGIN", "20/60"), "sign-in attempts", "login")
        app.state.rpc_limit = RateLimit(os.environ.get("DL_RATE_RPC", "1200/60"), "requests", "rpc")
        app.state.settings_secure_cookies = os.environ.get("DL_SECURE_COOKIES", "false").lower() == "true"
        app.state.segment = ai_config.segment()  # click-to-segment's service (DL_AI_SEGMENT*)
        app.state.http = httpx.AsyncClient()
        try:
            await catalog.load(pool, timeout=3)
        except Exception as exc:  # the database may not be up yet: the listener retries and loads it then
            log.warning("route table not loaded at start-up: %s", exc)
        tasks = [asyncio.create_task(listen_for_reload(conninfo, catalog, pool))]
        if (every := interval_from_env()) > 0:
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

    handlers = [handler for package in PACKAGES for handler in package.route_handlers()]
    static = create_static_files_router(path="/static", directories=[config.ROOT / "web" / "static"])
    return Litestar(
        route_handlers=[*handlers, static],
        template_config=TemplateConfig(directory=config.ROOT / "web" / "templates", engine=JinjaTemplateEngine),
        middleware=[header_limit, access_log, prometheus.middleware],
        lifespan=[lifespan],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, psycopg.Error: _database_error,
                            Exception: _unexpected},
        openapi_config=None,
        logging_config=None,  # app.server.logs configures logging; Litestar's own would disable our loggers
        debug=False,
    )
