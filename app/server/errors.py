"""SQL errors to HTTP: the mapping of docs/architecture.md, and the one JSON error body every failure has."""
from __future__ import annotations

import logging

import msgspec
import psycopg
from litestar import Response

log = logging.getLogger("dermlabel.errors")
JSON = "application/json"
RETRYABLE = {"40001", "40P01"}  # serialization failure, deadlock: retried by the caller, then 503


class ApiError(Exception):
    """An error the HTTP layer itself raises (bad JSON, unknown function, missing token, ...)."""

    def __init__(self, status: int, code: str, message: str, details: object = None, hint: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.hint, self.headers = details, hint, headers or {}


def body(code: str, message: str, details: object = None, hint: str | None = None) -> bytes:
    return msgspec.json.encode({"code": code, "message": message, "details": details, "hint": hint})


def status_for(sqlstate: str, anonymous: bool) -> int:
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate == "P0001":
        return 400
    if sqlstate == "P0002":
        return 404
    if sqlstate == "42501":
        return 401 if anonymous else 403
    if sqlstate.startswith("28"):
        return 403
    if sqlstate in ("23503", "23505"):
        return 409
    if sqlstate.startswith("22") or sqlstate in ("23502", "23514"):
        return 400
    if sqlstate == "25006":
        return 405
    if sqlstate in RETRYABLE or sqlstate.startswith(("08", "53")) or sqlstate == "57P01":
        return 503
    return 500


def from_sql(exc: psycopg.Error, anonymous: bool, request_id: str) -> Response[bytes]:
    return from_api(as_api_error(exc, anonymous, request_id))


def as_api_error(exc: psycopg.Error, anonymous: bool, request_id: str) -> ApiError:
    """The HTTP error for a SQL error (docs/architecture.md's mapping), for handlers that raise rather than return."""
    diag = exc.diag
    state = diag.sqlstate or ""
    # no SQLSTATE on an OperationalError: the connection broke or none could be had (PostgreSQL restarting, the
    # pool timed out). An outage, not a bug: 503 and try again.
    # A DataError without one was raised by the driver adapting an argument (the database never saw it): 400.
    if not state and isinstance(exc, psycopg.OperationalError):
        status = 503
    elif not state and isinstance(exc, psycopg.DataError):
        status = 400
    else:
        status = status_for(state, anonymous)
    if status >= 500 and status != 503:
        # details only in the log: never row contents, never internals, to the client
        log.error("request %s: unexpected SQL error %s: %s", request_id, state or type(exc).__name__,
                  diag.message_primary or exc)
        return ApiError(500, state or "XX000", "internal error", {"request_id": request_id})
    if status == 503:
        why = diag.message_primary or (str(exc).strip().splitlines() or [""])[0]
        log.warning("request %s: database unavailable (%s): %s", request_id, state or type(exc).__name__, why)
        return ApiError(503, state or "PT503", "the database is unavailable, try again shortly",
                        headers={"Retry-After": "1"})
    details: object = diag.message_detail
    if diag.column_name:  # our validation errors name the field here
        details = {"field": diag.column_name, "detail": diag.message_detail}
    if state in ("23503", "23505", "23502", "23514") and not diag.column_name:
        details = None  # constraint details can quote row values: keep them out of responses
    message = diag.message_primary or str(exc) or "error"
    headers = None
    if state == "PT429":  # SQL's rate limits and quotas say how long to wait in DETAIL
        headers = {"Retry-After": diag.message_detail if (diag.message_detail or "").isdigit() else "1"}
        details = None
    return ApiError(status, state or "PGRST400", message, details, diag.message_hint, headers=headers)


def from_api(exc: ApiError) -> Response[bytes]:
    return Response(body(exc.code, exc.message, exc.details, exc.hint), status_code=exc.status, media_type=JSON,
                    headers=exc.headers)
