"""The RPC surface: one endpoint per api function, read from the catalog; each call is role + claims + call,
pipelined in one transaction, and the JSON the function built is passed through as bytes."""
from __future__ import annotations

import asyncio
import json
import logging
import random
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

import msgspec
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ..auth.tokens import ROLE_ORDER, Caller
from ..server import strictjson
from ..server.db import BEGIN_KEY_REQUEST, BEGIN_REQUEST, claims_params
from ..server.errors import RETRYABLE, ApiError
from ..server.ratelimit import RateLimit

log = logging.getLogger("dermlabel.rpc")
DB_ROLES = ("dl_anon", "dl_annotator", "dl_reviewer", "dl_admin", "dl_analyst", "dl_member", "dl_partner")

CATALOG = """
SELECT p.proname, p.provolatile = 'v', coalesce(obj_description(p.oid, 'pg_proc'), ''),
       coalesce(p.proargnames[1:p.pronargs], '{}'), p.proargtypes::regtype[]::text[], p.pronargdefaults,
       format_type(p.prorettype, NULL),
       array(SELECT r FROM unnest(%s::text[]) r WHERE has_function_privilege(r, p.oid, 'EXECUTE'))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'api' AND p.prokind = 'f'
 ORDER BY p.proname
"""

# JSON shapes accepted for a SQL argument type; anything else is a 400 naming the argument.
_INTS = {"bigint", "integer", "smallint"}
_NUMS = {"numeric", "real", "double precision"}
_TEXTS = {"text", "citext", "character varying", "uuid", "date", "timestamp with time zone"}


@dataclass
class Arg:
    name: str
    type: str
    required: bool

    def check(self, value: Any) -> Any:
        """Validate a JSON value for this argument; returns what psycopg should bind."""
        t = self.type
        if value is None:
            return None
        if t in _INTS and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t in _NUMS and isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if t == "boolean" and isinstance(value, bool):
            return value
        if t in _TEXTS and isinstance(value, str):
            if "\x00" in value:  # PostgreSQL text cannot hold NUL: say so instead of failing in the driver
                raise ApiError(400, "PGRST400", f"argument {self.name} must not contain NUL characters",
                               details={"argument": self.name})
            return value
        if t in ("jsonb", "json"):
            return Jsonb(value)
        if t.endswith("[]") and isinstance(value, list):
            element = Arg(self.name, t[:-2], False)
            return [element.check(v) for v in value]
        raise ApiError(400, "PGRST400", f"argument {self.name} must be {describe(t)}",
                       details={"argument": self.name, "expected": t})

    def parse_query(self, text: str) -> Any:
        """A GET query-string value as the JSON value it stands for, by the argument's SQL type (bind() then
        checks it like a POST body's)."""
        t = self.type
        try:
            if t in _INTS:
                return int(text)
            if t in _NUMS:
                return float(text)
            if t == "boolean":
                if text.lower() not in ("true", "false"):
                    raise ValueError
                return text.lower() == "true"
            if t in ("jsonb", "json") or t.endswith("[]"):
                return strictjson.decode(text.encode())
        except ValueError as exc:  # strictjson.Refused is one
            if isinstance(exc, strictjson.Refused) and exc.key is not None:  # a key named twice: say which
                raise ApiError(400, "PGRST400", f"argument {self.name}: {exc}",
                               details={"argument": self.name, "key": exc.key}, hint=exc.hint) from None
            raise ApiError(400, "PGRST400", f"argument {self.name} must be {describe(t)}",
                           details={"argument": self.name, "expected": t}) from None
        return text


def describe(t: str) -> str:
    if t in _INTS:
        return "an integer"
    if t in _NUMS:
        return "a number"
    if t == "boolean":
        return "true or false"
    if t in ("jsonb", "json"):
        return "JSON"
    if t.endswith("[]"):
        return f"a list of {describe(t[:-2])}s"
    return "a string"


@dataclass
class Function:
    name: str
    volatile: bool
    comment: str
    args: list[Arg]
    returns: str
    roles: list[str]  # SQL roles granted EXECUTE
    _sql: dict[frozenset[str], sql.Composed] = field(default_factory=dict)

    def bind(self, given: dict[str, Any]) -> tuple[sql.Composed, dict[str, Any]]:
        by_name = {a.name: a for a in self.args}
        unknown = sorted(set(given) - set(by_name))
        if unknown:
            raise ApiError(400, "PGRST400", f"unknown argument {unknown[0]} for {self.name}",
                           details={"argument": unknown[0], "accepted": [a.name for a in self.args]})
        missing = [a.name for a in self.args if a.required and a.name not in given]
        if missing:
            raise ApiError(400, "PGRST400", f"missing argument {missing[0]} for {self.name}",
                           details={"argument": missing[0]})
        params = {k: by_name[k].check(v) for k, v in given.items()}
        key = frozenset(given)
        if key not in self._sql:  # one composed statement per argument set, built once
            named = sql.SQL(", ").join(
                sql.SQL("{} => {}::{}").format(sql.Identifier(a.name), sql.Placeholder(a.name), sql.SQL(a.type))
                for a in self.args if a.name in given)
            self._sql[key] = sql.SQL("SELECT api.{}({})::text").format(sql.Identifier(self.name), named)
        return self._sql[key], params

    def role_for(self, caller: Caller) -> list[str]:
        """The SQL roles the call may run under, in order of preference; SQL picks the first the caller holds now
        (auth.request_role). Anonymous callers are turned away here when the function is not granted to dl_anon."""
        if caller.key:  # a partner key acts as dl_partner, and only where that is granted
            if "dl_partner" in self.roles:
                return ["dl_partner"]
            raise ApiError(403, "42501", f"permission denied: an API key cannot call {self.name}")
        if caller.anonymous:
            if "dl_anon" in self.roles:
                return ["dl_anon"]
            raise ApiError(401, "42501", "sign in first", headers={"WWW-Authenticate": "Bearer"})
        candidates = [f"dl_{role}" for role in ROLE_ORDER if f"dl_{role}" in self.roles]
        if not candidates:
            raise ApiError(403, "42501", f"permission denied for function {self.name}")
        return candidates


class Catalog:
    """The route table, rebuilt at start-up and on NOTIFY dl_reload."""

    def __init__(self) -> None:
        self.functions: dict[str, Function] = {}
        self.version = 0

    async def load(self, pool: AsyncConnectionPool, timeout: float = 30) -> None:
        async with pool.connection(timeout=timeout) as conn:
            cur = await conn.execute(CATALOG, (list(DB_ROLES),))
            rows = await cur.fetchall()
            await conn.rollback()
        functions = {}
        for name, volatile, comment, argnames, argtypes, ndefaults, returns, roles in rows:
            required = len(argtypes) - ndefaults
            args = [Arg(n, t, i < required) for i, (n, t) in enumerate(zip(argnames, argtypes))]
            functions[name] = Function(name, volatile, comment, args, returns, list(roles))
        self.functions = functions
        self.version += 1
        log.info("route table loaded: %d api functions", len(functions))

    def get(self, name: str) -> Function:
        fn = self.functions.get(name)
        if fn is None:
            raise ApiError(404, "PGRST202", f"no function api.{name}", hint="GET /schema lists them.")
        return fn


@dataclass(frozen=True)
class Limit:
    """The rate limit a call is counted against: its budget and the caller's bucket."""
    rate: RateLimit
    bucket: str


def _begin(fn: Function, candidates: list[str], caller: Caller, request_id: str,
           limit: Limit | None) -> tuple[str, tuple[Any, ...]]:
    """The request's first statement and its parameters: the session or key checked, a token taken from the
    caller's bucket, the role picked in SQL among `candidates`, the claims set."""
    capacity, per_second = limit.rate.budget() if limit else (None, None)
    bucket = limit.rate.bucket(limit.bucket) if capacity else None
    if caller.key:  # the key itself goes to SQL as a parameter, never into the claims
        return BEGIN_KEY_REQUEST, (caller.key, candidates, json.dumps({"request_id": request_id, "call": fn.name}),
                                   bucket, capacity, per_second)
    claims = {"sub": caller.user_id, "sid": caller.session, "request_id": request_id}
    return BEGIN_REQUEST, (*claims_params(candidates, claims), bucket, capacity, per_second)


# Pipelining a large argument can deadlock (psycopg/psycopg#685 and kin): the server waits for the rest of the
# message while the client waits for results, seen here as a request that never answers under concurrent 1 MB
# bodies. Above this size a call takes three round trips instead of one; annotations stay far below it.
PIPELINE_MAX_BYTES = 16 * 1024


def _payload_bytes(params: dict[str, Any]) -> int:
    """About how many bytes the call's arguments take on the wire."""
    size = 0
    for v in params.values():
        if isinstance(v, str):
            size += len(v)
        elif isinstance(v, Jsonb):
            try:
                size += len(msgspec.json.encode(v.obj))
            except (OverflowError, TypeError, msgspec.EncodeError):  # an integer beyond 64 bits, say
                size += PIPELINE_MAX_BYTES + 1
        elif isinstance(v, list):
            size += sum(len(x) if isinstance(x, str) else 8 for x in v)
        else:
            size += 8
    return size


async def call(pool: AsyncConnectionPool, fn: Function, caller: Caller, args: dict[str, Any],
               request_id: str, limit: Limit | None = None) -> bytes:
    """role + claims + call + commit in one pipeline; serialization failures and deadlocks retried. A call that
    fails (not for the limit itself) still takes its token from the caller's bucket: refused requests count."""
    try:
        return await _call(pool, fn, caller, args, request_id, limit)
    except psycopg.Error as exc:
        if exc.diag.sqlstate not in ("PT429", "PT401", None):  # refused after the caller was known: it counts
            try:
                if limit is not None:
                    await limit.rate.take(pool, limit.bucket)
                if caller.key:  # the key's use: audited and counted against its quota, though the call failed
                    await _key_use(pool, caller.key, fn.name, request_id)
            except psycopg.Error:
                pass  # the original error is what the caller needs to hear about
        raise


async def _key_use(pool: AsyncConnectionPool, key: str, call_name: str, request_id: str) -> None:
    async with pool.connection() as conn:
        await conn.execute("SELECT set_config('request.jwt.claims', %s, true)",
                           (json.dumps({"request_id": request_id}),))
        await conn.execute("SELECT auth.key_request(%s, '{dl_partner}', %s)", (key, call_name))
        await conn.commit()


async def _may_call(pool: AsyncConnectionPool, caller: Caller, candidates: list[str]) -> None:
    """Raises what the request's first statement would (PT401, 42501) when the caller holds none of the roles."""
    async with pool.connection() as conn:
        await conn.execute("SELECT auth.request_role(%s, %s, %s)", (caller.user_id, caller.session, candidates))
        await conn.rollback()


async def _call(pool: AsyncConnectionPool, fn: Function, caller: Caller, args: dict[str, Any],
                request_id: str, limit: Limit | None) -> bytes:
    candidates = fn.role_for(caller)  # who you are is decided before what you sent is checked
    try:
        query, params = fn.bind(args)
    except ApiError:
        if caller.user_id is not None:  # bad arguments: but may this person call it at all? (SQL decides)
            await _may_call(pool, caller, candidates)
        raise
    begin, as_caller = _begin(fn, candidates, caller, request_id, limit)
    pipelined = _payload_bytes(params) <= PIPELINE_MAX_BYTES
    for attempt in range(4):
        try:
            async with pool.connection() as conn:
                if pipelined:
                    async with conn.pipeline():
                        await conn.execute(begin, as_caller)
                        cur = await conn.execute(query, params)
                        await conn.commit()
                else:
                    await conn.execute(begin, as_caller)
                    cur = await conn.execute(query, params)
                    await conn.commit()
                row = await cur.fetchone()
            return b"null" if row is None or row[0] is None else row[0].encode()
        except psycopg.Error as exc:
            if exc.diag.sqlstate in RETRYABLE and attempt < 3:
                await asyncio.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
                continue
            raise
    raise AssertionError("unreachable")


@asynccontextmanager
async def snapshot(pool: AsyncConnectionPool, caller: Caller, role_of: Function,
                   request_id: str) -> AsyncIterator[Callable[[Function, dict[str, Any]], Awaitable[Any]]]:
    """One REPEATABLE READ transaction as the caller, for many calls that must see the same data (a streamed export
    reads page after page of one snapshot). Yields `call(fn, args)` returning decoded JSON. Read only, but for a
    partner key, whose use the first statement counts and audits."""
    begin, as_caller = _begin(role_of, role_of.role_for(caller), caller, request_id, None)
    async with pool.connection() as conn:
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ" + ("" if caller.key else ", READ ONLY"))
        await conn.execute(begin, as_caller)

        async def call_in(fn: Function, args: dict[str, Any]) -> Any:
            query, params = fn.bind(args)
            row = await (await conn.execute(query, params)).fetchone()
            return None if row is None or row[0] is None else json.loads(row[0])

        try:
            yield call_in
            if caller.key:
                await conn.commit()  # the key's use, counted and audited
        finally:
            if not conn.closed:
                await conn.rollback()  # read only: nothing else to keep


async def listen_for_reload(conninfo: str, catalog: Catalog, pool: AsyncConnectionPool) -> None:
    """LISTEN dl_reload on a connection of its own; reconnects if it drops."""
    reconnecting = False
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute("LISTEN dl_reload")
                if reconnecting or not catalog.functions:
                    await catalog.load(pool)  # whatever changed while we were not listening
                reconnecting = True
                async for _ in conn.notifies():
                    await catalog.load(pool)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be restarting: keep trying
            log.warning("dl_reload listener: %s; retrying in 1 s", exc)
            await asyncio.sleep(1)
