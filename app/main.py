"""create_app(): everything the HTTP layer is, wired in one place."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from litestar import Litestar

from . import config
from .db import app_conninfo, make_pool
from .health import healthz


def create_app(settings: config.Settings | None = None) -> Litestar:
    settings = settings or config.load()
    log = logging.getLogger("dermlabel")

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = make_pool(app_conninfo(settings.database_url, settings.app_db_user, settings.app_db_password))
        await pool.open(wait=False)
        app.state.pool = pool
        app.state.log = log
        try:
            yield
        finally:
            await pool.close()

    return Litestar(route_handlers=[healthz], lifespan=[lifespan], debug=False)
