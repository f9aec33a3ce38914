"""Webhook deliveries, sent by the worker process (`python -m app worker`).

SQL queues one delivery per event and webhook, in the transaction that caused the event; here the worker claims due
deliveries under a lease (ops.claim_webhook_deliveries, FOR UPDATE SKIP LOCKED), POSTs each body signed with the
webhook's secret, and reports the answer (ops.report_webhook_delivery), which decides delivered, retry with backoff,
or failed. It wakes on NOTIFY dl_webhook and polls as a fallback.

A receiver checks `X-DermLabel-Signature: t=<unix time>,v1=<hex>` where hex = HMAC-SHA256(secret, "<t>.<body>") and
refuses old timestamps (replays)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

log = logging.getLogger("dermlabel.webhooks")
TIMEOUT_SECONDS = 10
LEASE_SECONDS = 60
BATCH = 16


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-DermLabel-Signature header's value for a body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


async def send(http: httpx.AsyncClient, d: dict) -> tuple[int | None, str | None]:
    """POST one delivery; (HTTP status, error) - status None when the receiver could not be reached."""
    body = d["body"].encode()
    t = int(time.time())
    headers = {"content-type": "application/json", "user-agent": "DermLabel-Webhooks",
               "x-dermlabel-event": d["event"], "x-dermlabel-delivery": str(d["id"]),
               "x-dermlabel-signature": signature(d["secret"], t, body)}
    try:
        r = await http.post(d["url"], content=body, headers=headers, timeout=TIMEOUT_SECONDS,
                            follow_redirects=False)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    return r.status_code, None if r.is_success else f"answered {r.status_code}"


async def deliver_due(pool: AsyncConnectionPool, http: httpx.AsyncClient) -> int:
    """Claims and sends one batch of due deliveries; returns how many were sent."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT ops.claim_webhook_deliveries(%s, %s)::text", (BATCH, LEASE_SECONDS))
        due = json.loads((await cur.fetchone())[0])
    if not due:
        return 0
    answers = await asyncio.gather(*(send(http, d) for d in due))
    async with pool.connection() as conn:
        for d, (status, error) in zip(due, answers):
            outcome = (await (await conn.execute("SELECT ops.report_webhook_delivery(%s, %s, %s)",
                                                 (d["id"], status, error))).fetchone())[0]
            if outcome != "delivered":
                log.warning("webhook delivery %s (%s) to %s: %s, %s", d["id"], d["event"], d["url"],
                            error or status, outcome)
    return len(due)


async def deliver_forever(pool: AsyncConnectionPool, http: httpx.AsyncClient, stop: asyncio.Event,
                          wake: asyncio.Event, poll_seconds: float) -> None:
    """Sends deliveries until `stop`: a full batch is followed at once by the next, else waits for a NOTIFY or the
    poll interval (retries fall due with time, which only polling notices)."""
    while not stop.is_set():
        wake.clear()
        try:
            if await deliver_due(pool, http) == BATCH:
                continue
        except (psycopg.Error, PoolTimeout) as exc:
            log.warning("webhooks: cannot take deliveries (%s); retrying", exc)
        try:
            await asyncio.wait_for(wake.wait(), timeout=poll_seconds)
        except asyncio.TimeoutError:
            pass
