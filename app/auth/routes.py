"""Password sign-in and sign-out: the session's token, and the session and CSRF cookies the web UI uses."""
from __future__ import annotations

import secrets
import unicodedata

import msgspec
import psycopg
from litestar import Request, Response, post
from litestar.datastructures import Cookie, State

from ..rpc import calls as rpc
from ..server import errors
from ..server.errors import JSON, ApiError
from ..server.request import client_ip, json_body, request_id
from .tokens import ANONYMOUS, CSRF_COOKIE, SESSION_COOKIE, identify


class Credentials(msgspec.Struct, forbid_unknown_fields=True):
    email: str
    password: str


@post("/auth/login", status_code=200)
async def login(request: Request, state: State) -> Response[bytes]:
    rid = request_id(request)
    body = json_body(await request.body())
    try:
        creds = msgspec.convert(body, type=Credentials)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "PGRST102", f"expected {{email, password}}: {exc}"[:300]) from None
    # per address and per account: guessing many passwords for one account, or many accounts from one place
    # the account's key as SQL would compare it: ＡＤＭＩＮ@… and admin@… share one budget
    account = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", creds.email).strip().casefold())
    await state.login_limit.hit(state.pool, f"ip:{client_ip(request)}", f"email:{account}")
    try:
        out = await rpc.call(state.pool, state.catalog.get("login"), ANONYMOUS,
                             {"email": creds.email, "password": creds.password}, rid)
    except psycopg.Error as exc:
        return errors.from_sql(exc, True, rid)
    result = msgspec.json.decode(out)
    if not result.get("ok"):  # the SQL decided; we only choose the status code for it
        raise ApiError(401, "invalid_credentials", result.get("message", "sign-in failed"))
    token, cookies = session_cookies(state, result["user"], result["session"])
    csrf = next(c.value for c in cookies if c.key == CSRF_COOKIE)
    return Response(msgspec.json.encode({"token": token, "user": result["user"], "csrf_token": csrf}),
                    media_type=JSON, cookies=cookies, headers={"X-Request-Id": rid})


def session_cookies(state: State, user: dict, session: str) -> tuple[str, list[Cookie]]:
    """A token for the user's new session, and the session + CSRF cookies the web UI uses (password and OIDC
    sign-in alike)."""
    token = state.tokens.issue(user, session)
    secure = state.settings.auth.secure_cookies
    return token, [
        Cookie(key=SESSION_COOKIE, value=token, httponly=True, samesite="lax", secure=secure, path="/",
               max_age=state.tokens.ttl),
        Cookie(key=CSRF_COOKIE, value=secrets.token_urlsafe(24), httponly=False, samesite="lax", secure=secure,
               path="/", max_age=state.tokens.ttl),
    ]


@post("/auth/logout", status_code=200)
async def logout(request: Request, state: State) -> Response[bytes]:
    """Ends the session in SQL (the token stops working everywhere, not only in this browser) and clears the
    cookies. A token that is already invalid or ended just gets its cookies cleared."""
    gone = [Cookie(key=k, value="", max_age=0, path="/") for k in (SESSION_COOKIE, CSRF_COOKIE)]
    rid = request_id(request)
    try:
        caller = identify(request, state.tokens)  # a cookie sign-out needs the CSRF header like any write
    except ApiError as exc:
        if exc.status != 401:
            raise
        caller = ANONYMOUS
    if not caller.anonymous:
        try:
            await rpc.call(state.pool, state.catalog.get("logout"), caller, {}, rid)
        except psycopg.Error as exc:
            if exc.diag.sqlstate != "PT401":  # already ended: signing out again is not an error
                return errors.from_sql(exc, False, rid)
    return Response(b"", status_code=204, cookies=gone, headers={"X-Request-Id": rid})
