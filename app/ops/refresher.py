"""The metrics refresh schedule: every DL_METRICS_REFRESH_SECONDS (default 60; 0 turns it off) the app asks SQL to
refresh the metrics views. SQL lets one refresher run at a time, so any number of app processes may schedule it."""
from __future__ import annotations

import asyncio
import logging

from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("dermlabel.metrics")


async def refresh_forever(pool: AsyncConnectionPool, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT metrics.refresh_all('schedule')::text")
                out = (await cur.fetchone())[0]
                await conn.commit()
                # retention: images whose project keeps them no longer are erased (audited, in SQL)
                erased = (await (await conn.execute("SELECT ops.apply_retention()")).fetchone())[0]
                await conn.commit()
                if erased:
                    log.info("retention: erased %s images", erased)
            log.info("metrics refresh: %s", out)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be restarting: try again next time
            log.warning("metrics refresh failed: %s", exc)
