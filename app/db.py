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


# The one statement that makes a transaction act as the caller (PostgREST's shape: parameters bound, local).
# The session check comes first, while the statement still runs as the login role that may execute it: a token
# whose session was revoked (sign-out, password change, deactivated account) fails here with PT401.
SET_CLAIMS = ("SELECT auth.check_session(%s, %s), set_config('role', %s, true), "
              "set_config('request.jwt.claims', %s, true)")


def claims_params(role: str, claims: dict[str, Any]) -> tuple[Any, ...]:
    """SET_CLAIMS's parameters for a caller's role and claims (sub and sid identify the session)."""
    return claims.get("sub"), claims.get("sid"), role, json.dumps(claims)


async def call_as(conn: AsyncConnection, role: str, claims: dict[str, Any], query: sql.Composable,
                  params: dict[str, Any] | None = None) -> Any:
    """Run one api call as `role` with `claims` inside the connection's current transaction."""
    await conn.execute(SET_CLAIMS, claims_params(role, claims))
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return row[0] if row else None
