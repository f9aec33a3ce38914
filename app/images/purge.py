"""Deleting stored objects of removed and erased images, in the worker process (`python -m app worker`).

SQL decides what goes (core.storage_purge, filled by resolve_flag's remove_image, api.erase_image and retention);
the worker claims due rows under a lease (ops.claim_purges, SKIP LOCKED), deletes each object (local folder or S3)
and reports it (ops.report_purge: done, or again later with backoff). Wakes on NOTIFY dl_purge, polls otherwise."""
from __future__ import annotations

import asyncio
import json
import logging

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from .storage import Storage, StorageError

log = logging.getLogger("dermlabel.purge")
BATCH = 64
LEASE_SECONDS = 120


async def purge_due(pool: AsyncConnectionPool, storage: Storage) -> int:
    """Deletes one batch of due objects; returns how many were claimed."""
    async with pool.connection() as conn:
        due = json.loads((await (await conn.execute("SELECT ops.claim_purges(%s, %s)::text",
                                                    (BATCH, LEASE_SECONDS))).fetchone())[0])
    for p in due:
        error = None
        try:
            await storage.delete(p["key"])  # an object already gone is not an error
        except (StorageError, ValueError) as exc:
            error = str(exc)[:500]
            log.warning("purge %s of %s failed: %s", p["id"], p["key"], error)
        async with pool.connection() as conn:
            await conn.execute("SELECT ops.report_purge(%s, %s)", (p["id"], error))
    return len(due)


async def purge_forever(pool: AsyncConnectionPool, storage: Storage, stop: asyncio.Event, wake: asyncio.Event,
                        poll_seconds: float) -> None:
    while not stop.is_set():
        wake.clear()
        try:
            if await purge_due(pool, storage) == BATCH:
                continue
        except (psycopg.Error, PoolTimeout) as exc:
            log.warning("purge: cannot take objects to delete (%s); retrying", exc)
        try:
            await asyncio.wait_for(wake.wait(), timeout=poll_seconds)
        except asyncio.TimeoutError:
            pass
