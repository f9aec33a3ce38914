"""The HTTP routes that are not pages: sign-in, RPC, the API description."""
from __future__ import annotations

import secrets
import unicodedata
import uuid

import msgspec
import psycopg
from litestar import Request, Response, get, post
from litestar.response import Template
from litestar.datastructures import Cookie, State

from . import calls as rpc
from ..server import errors, strictjson
from ..auth.tokens import ANONYMOUS, CSRF_COOKIE, SESSION_COOKIE, identify
from ..server.errors import JSON, ApiError
from .openapi import document

def request_id(request: Request) -> str:
    """The id the access-log middleware gave this request (it also goes into the claims and the audit log)."""
    return request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _rpc(request: Request, state: State, fn_name: str, args: dict) -> Response[bytes]:
    rid = request_id(request)
    caller = identify(request, state.tokens)
    fn = state.catalog.get(fn_name)
    limit = rpc.Limit(state.rpc_limit, f"user:{caller.user_id}" if caller.user_id else
                      f"key:{caller.key[:11]}" if caller.key else f"ip:{client_ip(request)}")
    try:
        out = await rpc.call(state.pool, fn, caller, args, rid, limit)
    except psycopg.Error as exc:
        return errors.from_sql(exc, caller.anonymous, rid)
    return Response(out, media_type=JSON, headers={"X-Request-Id": rid})


MAX_JSON_DEPTH = strictjson.MAX_DEPTH


def too_deep(value: object, limit: int) -> bool:
    """True when lists/objects nest more than `limit` levels (iterative: a bomb cannot exhaust the stack here)."""
    try:
        strictjson.count_keys(value, limit)
    except strictjson.Refused:
        return True
    return False


def json_body(raw: bytes) -> object:
    """A request's JSON body, strictly: not JSON, nested too deep or a key named twice in an object is 400 (a
    duplicate is never resolved to its last value; nothing is called)."""
    try:
        return strictjson.decode(raw, MAX_JSON_DEPTH)
    except strictjson.Refused as exc:
        message = "the request body is not valid JSON" if exc.message == "not valid JSON" else exc.message
        raise ApiError(400, "PGRST102", message, details=exc.details, hint=exc.hint) from None


@post("/rpc/{fn:str}", status_code=200)
async def rpc_post(request: Request, state: State, fn: str) -> Response[bytes]:
    raw = await request.body()
    args = json_body(raw) if raw.strip() else {}
    if not isinstance(args, dict):
        raise ApiError(400, "PGRST102", "the request body must be a JSON object of named arguments")
    return await _rpc(request, state, fn, args)


@get("/rpc/{fn:str}")
async def rpc_get(request: Request, state: State, fn: str) -> Response[bytes]:
    function = state.catalog.get(fn)
    if function.volatile:
        raise ApiError(405, "PGRST101", f"{fn} changes data: call it with POST", headers={"Allow": "POST"})
    by_name = {a.name: a for a in function.args}
    args = {}
    for key, value in request.query_params.items():
        if key not in by_name:
            raise ApiError(400, "PGRST400", f"unknown argument {key} for {fn}", details={"argument": key})
        args[key] = by_name[key].parse_query(value)
    if too_deep(args, MAX_JSON_DEPTH):
        raise ApiError(400, "PGRST102", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return await _rpc(request, state, fn, args)


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
    secure = state.settings_secure_cookies
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


@get("/schema")
async def schema_page(state: State) -> Template:
    """The API reference for people, from the same document as /schema/openapi.json (no scripts, no CDN)."""
    doc = document(state.catalog)
    paths = []
    for path, ops in doc["paths"].items():
        op = ops.get("post") or ops.get("get")
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        props = body.get("properties") or {}
        args = [{"name": n, "type": (p.get("description") or "").split(":")[0] or p.get("type", ""),
                 "required": n in body.get("required", [])} for n, p in props.items()]
        if not args and "parameters" in op:
            args = [{"name": p["name"], "type": p["schema"].get("type", ""), "required": p["required"]}
                    for p in op["parameters"]]
        paths.append({"path": path, "id": path.strip("/").replace("/", "-"), "name": path.rsplit("/", 1)[-1],
                      "methods": [m.upper() for m in ops], "description": op.get("description") or op["summary"],
                      "args": args})
    return Template(template_name="schema.html", context={"doc": doc, "paths": paths})


@get("/schema/openapi.json")
async def openapi_json(state: State) -> Response[bytes]:
    return Response(msgspec.json.encode(document(state.catalog)), media_type=JSON)
