"""`python -m app worker`: takes AI jobs from PostgreSQL and runs them with bounded concurrency.

SQL decides everything about a job (which is ready, retries and backoff, what comes next); the worker fetches
bytes, calls the stage's model, stores derived images, and reports. It wakes on NOTIFY dl_ai_job and polls as a
fallback; on SIGTERM/SIGINT it stops taking jobs, lets running ones finish for a grace period, and gives the rest
back to the queue."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import uuid

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..images import purge
from ..images.storage import Storage, StorageError
from ..ops import webhooks
from . import stages
from .breaker import Breaker
from .config import WorkerConfig
from .stages import Result, StageError, StageSkipped

log = logging.getLogger("dermlabel.ai")


async def _as_worker(conn: psycopg.AsyncConnection) -> None:
    await conn.execute("SET ROLE dl_ai_worker")


class Worker:
    def __init__(self, conninfo: str, storage: Storage, cfg: WorkerConfig, name: str | None = None):
        self.conninfo, self.storage, self.cfg = conninfo, storage, cfg
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.breakers = {s: Breaker(cfg.breaker_failures, cfg.breaker_reset_seconds) for s in cfg.stages}
        self.inflight: dict[asyncio.Task, int] = {}
        self.wake = asyncio.Event()
        self.hook_wake = asyncio.Event()  # webhook deliveries are sent by this process too (app/ops/webhooks.py)
        self.purge_wake = asyncio.Event()  # and removed images' bytes deleted (app/images/purge.py)
        self.done = self.failed = 0
        self.sagemaker = (stages.SageMaker(cfg.stages["classify"])
                          if cfg.stages["classify"].mode == "sagemaker" else None)

    # -- database -------------------------------------------------------------------------------------------------
    async def _call(self, sql: str, params: tuple) -> object:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            row = await cur.fetchone()
            return row[0] if row else None

    async def _claim(self, stage_names: list[str], n: int) -> list[dict]:
        return await self._call("SELECT ai.claim_jobs(%s, %s::text[], %s, %s, %s)",
                                (self.name, stage_names, n, self.cfg.lease_seconds, self.cfg.max_attempts)) or []

    async def _listen(self) -> None:
        """Sets `wake` on every NOTIFY; reconnects when the connection drops (polling covers the gap)."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                    await conn.execute("LISTEN dl_ai_job")
                    await conn.execute("LISTEN dl_webhook")
                    await conn.execute("LISTEN dl_purge")
                    async for note in conn.notifies():
                        {"dl_webhook": self.hook_wake, "dl_purge": self.purge_wake}.get(note.channel, self.wake).set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarting: try again shortly
                log.warning("listener lost its connection (%s); polling until it is back", exc)
                await asyncio.sleep(2)

    # -- one job --------------------------------------------------------------------------------------------------
    async def _bytes(self, key: str) -> bytes:
        data = await self.storage.get(key)
        if data is None:
            raise StageError(f"no bytes stored under {key}", permanent=True)
        return data

    async def _run_stage(self, job: dict) -> Result:
        stage, cfg = job["stage"], self.cfg.stages[job["stage"]]
        if stage == "crop":
            return await stages.crop_http(self.http, cfg, job, await self._bytes(job["storage_key"]))
        if stage == "segment":
            return await stages.segment_prepare(self.http, cfg, job, await self._bytes(job["storage_key"]))
        if stage == "classify":
            std = job.get("standardised")
            if cfg.options["input"] == "standardised" and std and std.get("storage_key"):
                data, media_type, ppm = await self._bytes(std["storage_key"]), std.get("media_type", "image/png"), None
            else:
                data, media_type, ppm = await self._bytes(job["storage_key"]), job["media_type"], job.get("pixels_per_mm")
            if self.sagemaker:
                return await self.sagemaker.classify(data, media_type)
            return await stages.classify_http(self.http, cfg, job, data, media_type, ppm)
        return await stages.recommend_chat(self.http, cfg, job)

    async def _process(self, job: dict) -> None:
        stage, cfg, jid = job["stage"], self.cfg.stages[job["stage"]], job["job_id"]
        breaker = self.breakers[stage]
        stored: list[str] = []
        try:
            if cfg.mode == "off":
                await self._call("SELECT ai.skip_job(%s, %s, %s)", (jid, self.name, f"stage {stage} is off here"))
                return
            if stage == "recommend" and cfg.mode == "taxonomy":
                out = await self._call("SELECT ai.recommend_from_taxonomy(%s, %s)", (jid, self.name))
            else:
                try:
                    result = await self._run_stage(job)
                except StageSkipped as exc:  # the service answered that it has nothing to do for this stage
                    breaker.success()
                    await self._call("SELECT ai.skip_job(%s, %s, %s)", (jid, self.name, str(exc)))
                    return
                for key, data, media_type in result.files:  # bytes first: a recorded result never points nowhere
                    await self.storage.put(key, data, media_type)
                    stored.append(key)
                out = await self._call("SELECT ai.complete_job(%s, %s, %s, %s, %s::jsonb, %s)",
                                       (jid, self.name, result.model, result.version,
                                        json.dumps(result.payload), result.latency_ms))
            breaker.success()
            self.done += 1
            log.info("ai job %s %s image %s: %s", jid, stage, job["image_id"], (out or {}).get("status"))
        except (StageError, StorageError) as exc:
            permanent = isinstance(exc, StageError) and exc.permanent
            if not permanent:
                breaker.failure()
            await self._fail(job, str(exc), permanent)
        except psycopg.errors.InvalidParameterValue as exc:  # SQL refused the result's shape: it will not improve
            await self._fail(job, f"result refused: {exc.diag.message_primary}", True)
        except psycopg.Error as exc:
            if exc.diag.sqlstate == "P0002" and stored:
                # the job is gone: its image was erased meanwhile, and nothing derived from it may stay behind
                await self._discard(stored)
            # lost lease (PT409) or the database went away: the lease lapses and the job is taken again
            log.warning("ai job %s: could not record (%s); its lease will lapse", jid, exc)

    async def _discard(self, keys: list[str]) -> None:
        for key in keys:
            try:
                await self.storage.delete(key)
            except (StorageError, ValueError) as exc:
                log.error("could not delete %s of an erased image: %s", key, exc)

    async def _fail(self, job: dict, message: str, permanent: bool) -> None:
        self.failed += 1
        log.warning("ai job %s %s image %s failed%s: %s", job["job_id"], job["stage"], job["image_id"],
                    " for good" if permanent else "", message)
        try:
            await self._call("SELECT ai.fail_job(%s, %s, %s, %s, %s::numeric, %s::numeric)",
                             (job["job_id"], self.name, message, permanent, self.cfg.backoff_seconds,
                              self.cfg.backoff_cap_seconds))
        except psycopg.Error as exc:
            log.warning("ai job %s: could not record the failure (%s)", job["job_id"], exc)

    # -- the loop -------------------------------------------------------------------------------------------------
    def _start(self, job: dict) -> None:
        task = asyncio.create_task(self._process(job))
        self.inflight[task] = job["job_id"]

        def finished(t: asyncio.Task) -> None:
            self.inflight.pop(t, None)
            self.wake.set()
        task.add_done_callback(finished)

    async def _fill(self) -> int:
        free = self.cfg.concurrency - len(self.inflight)
        taken = 0
        if free <= 0:
            return 0
        closed = [s for s, b in self.breakers.items() if b.state == "closed" or self.cfg.stages[s].mode == "off"]
        if closed:
            for job in await self._claim(closed, free):
                self._start(job)
                taken += 1
        for s, b in self.breakers.items():
            n = b.allowance(self.cfg.concurrency - len(self.inflight)) if s not in closed else 0
            if n:
                jobs = await self._claim([s], n)
                b.taken(len(jobs))
                for job in jobs:
                    self._start(job)
                    taken += 1
        return taken

    async def run(self, stop: asyncio.Event) -> None:
        self.pool = AsyncConnectionPool(self.conninfo, min_size=1, max_size=self.cfg.concurrency + 2,
                                        kwargs={"autocommit": True}, configure=_as_worker, open=False,
                                        name="dermlabel-ai")
        await self.pool.open(wait=False)
        self.http = httpx.AsyncClient(limits=httpx.Limits(max_connections=self.cfg.concurrency * 2))
        listener = asyncio.create_task(self._listen())
        hooks = asyncio.create_task(webhooks.deliver_forever(self.pool, self.http, stop, self.hook_wake,
                                                             self.cfg.poll_seconds))
        purges = asyncio.create_task(purge.purge_forever(self.pool, self.storage, stop, self.purge_wake,
                                                         self.cfg.poll_seconds))
        log.info("ai worker %s: stages %s, concurrency %s", self.name,
                 {s: c.mode for s, c in self.cfg.stages.items()}, self.cfg.concurrency)
        stopper = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                self.wake.clear()  # before taking: a NOTIFY that arrives meanwhile is not lost
                try:
                    await self._fill()
                except (psycopg.Error, PoolTimeout) as exc:
                    log.warning("ai worker: cannot take jobs (%s); retrying", exc)
                waiter = asyncio.create_task(self.wake.wait())
                await asyncio.wait({waiter, stopper}, timeout=self.cfg.poll_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
        finally:
            stopper.cancel()
            listener.cancel()
            hooks.cancel()
            purges.cancel()
            await self._drain()
            await self.http.aclose()
            await self.pool.close()
            log.info("ai worker %s stopped: %s done, %s failed", self.name, self.done, self.failed)

    async def _drain(self) -> None:
        if not self.inflight:
            return
        log.info("ai worker: finishing %s running jobs (up to %g s)", len(self.inflight),
                 self.cfg.shutdown_grace_seconds)
        _, pending = await asyncio.wait(set(self.inflight), timeout=self.cfg.shutdown_grace_seconds)
        if pending:
            ids = [self.inflight[t] for t in pending if t in self.inflight]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            try:
                n = await self._call("SELECT ai.return_jobs(%s, %s::bigint[])", (self.name, ids))
                log.info("ai worker: gave back %s unfinished jobs", n)
            except psycopg.Error as exc:
                log.warning("ai worker: could not give jobs back (%s); their leases will lapse", exc)


def serve(conninfo: str, storage: Storage, cfg: WorkerConfig) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Worker(conninfo, storage, cfg).run(stop)

    asyncio.run(main())
