"""OpenAPI 3.1 for the RPC surface, built from the same catalog as the route table (names, types, comments)."""
from __future__ import annotations

from .calls import Catalog, Function, describe

_JSON_TYPES = {"bigint": {"type": "integer", "format": "int64"}, "integer": {"type": "integer", "format": "int32"},
               "smallint": {"type": "integer"}, "numeric": {"type": "number"}, "real": {"type": "number"},
               "double precision": {"type": "number"}, "boolean": {"type": "boolean"}, "text": {"type": "string"},
               "jsonb": {}, "json": {}, "timestamp with time zone": {"type": "string", "format": "date-time"},
               "date": {"type": "string", "format": "date"}, "uuid": {"type": "string", "format": "uuid"}}
ERROR = {"$ref": "#/components/schemas/Error"}


def json_schema(sql_type: str) -> dict:
    if sql_type.endswith("[]"):
        return {"type": "array", "items": json_schema(sql_type[:-2])}
    return dict(_JSON_TYPES.get(sql_type, {"type": "string"}))


def _responses() -> dict:
    err = {"content": {"application/json": {"schema": ERROR}}}
    return {"200": {"description": "the JSON the function returns", "content": {"application/json": {"schema": {}}}},
            **{code: {"description": text, **err} for code, text in [
                ("400", "bad input: the message names the argument or field"), ("401", "sign in first"),
                ("403", "your role may not call this"), ("404", "unknown function, or nothing you may see"),
                ("409", "lost lock or wrong state"), ("503", "database unavailable, retry")]}}


def _operation(fn: Function, method: str) -> dict:
    roles = ", ".join(r.removeprefix("dl_") for r in fn.roles) or "nobody"
    op = {"operationId": f"{fn.name}_{method}", "summary": fn.name, "tags": ["rpc"],
          "description": f"{fn.comment}\n\nRoles: {roles}.", "responses": _responses()}
    if method == "post":
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False,
            "properties": {a.name: {**json_schema(a.type), "description": f"{a.type}: {describe(a.type)}"}
                           for a in fn.args},
            "required": [a.name for a in fn.args if a.required]}}}}
    else:
        op["parameters"] = [{"name": a.name, "in": "query", "required": a.required, "schema": json_schema(a.type)}
                            for a in fn.args]
    if "dl_anon" not in fn.roles:
        op["security"] = [{"bearer": []}, {"cookie": []}]
    return op


def document(catalog: Catalog) -> dict:
    paths: dict = {
        "/auth/login": {"post": {"operationId": "login", "tags": ["auth"], "summary": "sign in",
                                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                                     "type": "object", "required": ["email", "password"],
                                     "properties": {"email": {"type": "string"}, "password": {"type": "string"}}}}}},
                                 "responses": {"200": {"description": "{token, user, csrf_token}; sets cookies"},
                                               "401": {"description": "wrong email or password",
                                                       "content": {"application/json": {"schema": ERROR}}}}}},
        "/auth/logout": {"post": {"operationId": "logout", "tags": ["auth"], "summary": "clear the session cookies",
                                  "responses": {"204": {"description": "signed out"}}}},
        "/healthz": {"get": {"operationId": "healthz", "tags": ["ops"], "summary": "database and schema version",
                             "responses": {"200": {"description": "ok"}, "503": {"description": "unavailable"}}}},
    }
    for fn in catalog.functions.values():
        ops = {"post": _operation(fn, "post")}
        if not fn.volatile:
            ops["get"] = _operation(fn, "get")
        paths[f"/rpc/{fn.name}"] = ops
    return {
        "openapi": "3.1.0",
        "info": {"title": "DermLabel API", "version": str(catalog.version),
                 "description": "Every /rpc endpoint is a function of the database's api schema; this document is "
                                "built from the catalog and rebuilt when a migration adds one."},
        "paths": paths,
        "components": {
            "schemas": {"Error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "details": {}, "hint": {}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                                "cookie": {"type": "apiKey", "in": "cookie", "name": "dl_session"}}},
    }
