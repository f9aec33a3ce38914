"""The RPC routes: POST and GET /rpc/<fn> for every api function in the catalog, and the API description
(/schema, /schema/openapi.json)."""
from __future__ import annotations

import msgspec
import psycopg
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.response import Template

from ..auth.tokens import identify
from ..pages.chrome import top_bar
from ..server import errors, strictjson
from ..server.errors import JSON, ApiError
from ..server.request import MAX_JSON_DEPTH, client_ip, json_body, request_id
from . import calls as rpc
from .openapi import document


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


def too_deep(value: object, limit: int) -> bool:
    """True when lists/objects nest more than `limit` levels (iterative: a bomb cannot exhaust the stack here)."""
    try:
        strictjson.count_keys(value, limit)
    except strictjson.Refused:
        return True
    return False


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


@get("/schema")
async def schema_page(request: Request, state: State) -> Template:
    """The API reference for people, from the same document as /schema/openapi.json (no CDN), under the app's top
    bar: the way back to the pages and sign-out for someone signed in, a sign-in link for anyone else."""
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
    return Template(template_name="schema.html",
                    context={**await top_bar(request, state), "title": "API", "doc": doc, "paths": paths})


@get("/schema/openapi.json")
async def openapi_json(state: State) -> Response[bytes]:
    return Response(msgspec.json.encode(document(state.catalog)), media_type=JSON)
