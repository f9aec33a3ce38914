"""Limits on what a request may bring before any handler runs: the size of its head (headers)."""
from __future__ import annotations

from . import errors


def header_limit(app, max_bytes: int):
    """ASGI middleware: a request whose headers add up to more than `max_bytes` (DL_MAX_HEADER_KB, 32 KB) gets 431
    in the JSON error shape. Uvicorn's httptools parser sets no limit of its own (h11's is 16 KB); a reverse proxy in
    front should refuse such heads even earlier, this keeps the app honest without one."""

    async def middleware(scope, receive, send):
        if scope["type"] == "http":
            size = sum(len(k) + len(v) + 4 for k, v in scope.get("headers") or [])
            if size > max_bytes:
                body = errors.body("PT431", f"request headers larger than {max_bytes // 1024} KB")
                await send({"type": "http.response.start", "status": 431,
                            "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return middleware
