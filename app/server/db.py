"""The pool and the one way the app talks to PostgreSQL: role + claims + call, in one transaction."""
from __future__ import annotations

import json
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool


def app_conninfo(database_url: str, user: str, password: str | None) -> str:
    """DATABASE_URL names the database; the app itself always logs in as the authenticator role."""
    params = conninfo_to_dict(database_url)
    if params.get("user") != user:
        params.pop("password", None)  # never reuse the owner's password for the authenticator
    if password:
        params["password"] = password
    params["user"] = user
    params.setdefault("application_name", "dermlabel")
    return make_conninfo(**params)


def make_pool(conninfo: str, min_size: int = 2, max_size: int = 16, timeout: float = 5) -> AsyncConnectionPool:
    # timeout: how long a request waits for a connection before answering 503 (the database is down or saturated);
    # a client retrying after Retry-After beats one hanging for the library's default 30 s.
    return AsyncConnectionPool(conninfo, min_size=min_size, max_size=max_size, open=False, timeout=timeout,
                               kwargs={"autocommit": False}, name="dermlabel")


# The one statement that makes a transaction act as the caller, run as the login role: SQL checks the session is
# live (PT401 for a token of a revoked session: sign-out, password change, deactivated account), picks the role
# from the membership tables among the kinds of caller the function is granted to (so a role granted or revoked
# applies at the next request, whatever the token says), and sets it with the claims for this transaction.
BEGIN_REQUEST = "SELECT auth.begin_request(%s, %s, %s, %s, %s, %s, %s)"
# The same for a partner's API key: SQL proves the key, counts it against its quota, audits it, acts as dl_partner.
BEGIN_KEY_REQUEST = "SELECT auth.begin_key_request(%s, %s, %s, %s, %s, %s)"


def claims_params(candidates: list[str], claims: dict[str, Any]) -> tuple[Any, ...]:
    """BEGIN_REQUEST's parameters: the roles the call may run as (in order of preference) and the claims (sub and
    sid identify the session)."""
    return claims.get("sub"), claims.get("sid"), candidates, json.dumps(claims)


async def call_as(conn: AsyncConnection, candidates: list[str], claims: dict[str, Any], query: sql.Composable,
                  params: dict[str, Any] | None = None) -> Any:
    """Run one api call as the first of `candidates` the caller holds, with `claims`, inside the connection's
    current transaction."""
    await conn.execute(BEGIN_REQUEST, (*claims_params(candidates, claims), None, None, None))
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return row[0] if row else None
