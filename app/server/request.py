"""What every handler asks of its request: the id the access log gave it, the client's address, a JSON body read
strictly."""
from __future__ import annotations

import uuid

from litestar import Request

from . import strictjson
from .errors import ApiError

MAX_JSON_DEPTH = strictjson.MAX_DEPTH


def request_id(request: Request) -> str:
    """The id the access-log middleware gave this request (it also goes into the claims and the audit log)."""
    return request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def json_body(raw: bytes) -> object:
    """A request's JSON body, strictly: not JSON, nested too deep or a key named twice in an object is 400 (a
    duplicate is never resolved to its last value; nothing is called)."""
    try:
        return strictjson.decode(raw, MAX_JSON_DEPTH)
    except strictjson.Refused as exc:
        message = "the request body is not valid JSON" if exc.message == "not valid JSON" else exc.message
        raise ApiError(400, "PGRST102", message, details=exc.details, hint=exc.hint) from None
