"""Click-to-segment: POST /items/{item_id}/segment forwards an annotator's clicks to the segment service and answers
the mask (docs/segmentation.md). SQL (api.segment_source) decides whether the caller may open the item and whether
the prompt is sound; this module moves the bytes and checks what the service answered before passing it on."""
from __future__ import annotations

import asyncio
import base64
import logging
import math
import time

import httpx
import msgspec
import psycopg
from litestar import Request, Response, post
from litestar.datastructures import State

from ..auth.tokens import identify
from ..images.storage import StorageError
from ..rpc import calls as rpc
from ..server import errors
from ..server.errors import JSON, ApiError
from ..server.request import client_ip, json_body, request_id
from . import rle

log = logging.getLogger("dermlabel.segment")


class _Unusable(Exception):
    """The service's answer cannot be passed on (502); `status` is the service's HTTP status when it refused, `said`
    what its body said (for the log only: an annotator need not read the service's internals)."""

    def __init__(self, message: str, status: int | None = None, said: str = ""):
        super().__init__(message)
        self.status, self.said = status, said


@post("/items/{item_id:int}/segment", status_code=200, request_max_body_size=64 * 1024)
async def segment(request: Request, state: State, item_id: int) -> Response[bytes]:
    rid = request_id(request)
    caller = identify(request, state.tokens)
    cfg = state.segment
    if cfg.mode == "off":
        raise ApiError(503, "PT503", "click-to-segment is off in this deployment (DL_AI_SEGMENT=off)")
    raw = await request.body()
    prompt = json_body(raw) if raw.strip() else None
    if not isinstance(prompt, dict):
        raise ApiError(400, "PGRST102", 'send a JSON object {"points": [[x, y, 1|0], …], "box": [x, y, w, h] | null}')
    # each click counts against the caller's request budget, like an RPC: it costs the service real work
    limit = rpc.Limit(state.rpc_limit, f"user:{caller.user_id}" if caller.user_id else
                      f"key:{caller.key[:11]}" if caller.key else f"ip:{client_ip(request)}")
    try:
        out = await rpc.call(state.pool, state.catalog.get("segment_source"), caller,
                             {"item_id": item_id, "prompt": prompt}, rid, limit)
    except psycopg.Error as exc:
        return errors.from_sql(exc, caller.anonymous, rid)
    src = msgspec.json.decode(out)
    h, w = src["height"], src["width"]
    ask = {"points": src["points"], "box": src["box"], "size": [h, w]}
    t0 = time.perf_counter()
    try:
        embedding = await _stored(state, src.get("embedding_key")) if src.get("embedding_key") else None
        answer = None
        if embedding is not None:
            try:
                answer = await _ask(state.http, cfg, {"embedding": embedding.decode(errors="replace"), **ask},
                                    h, w)
            except _Unusable as exc:
                if exc.status is None or not 400 <= exc.status < 500:
                    raise
                # the embedding was refused (made by another model or version, say): the image itself, once
                log.info("request %s: the segment service refused item %s's embedding (%s %s); sending the image",
                         rid, item_id, exc, exc.said)
        if answer is None:
            image = await _stored(state, src["storage_key"])
            if image is None:
                raise ApiError(404, "PT404", f"the bytes of item {item_id}'s image are missing from storage")
            answer = await _ask(state.http, cfg, {"image_base64": base64.b64encode(image).decode(),
                                                  "media_type": src["media_type"], **ask}, h, w)
    except httpx.TimeoutException:
        log.warning("request %s: the segment service %s did not answer within %g s", rid, cfg.url, cfg.timeout)
        raise ApiError(504, "PT504", f"the segment service did not answer within {cfg.timeout:g} s") from None
    except httpx.HTTPError as exc:
        log.warning("request %s: the segment service %s cannot be reached: %r", rid, cfg.url, exc)
        raise ApiError(502, "PT502", "the segment service cannot be reached") from None
    except _Unusable as exc:
        log.warning("request %s: unusable answer from the segment service %s: %s %s", rid, cfg.url, exc, exc.said)
        raise ApiError(502, "PT502", f"the segment service's answer is unusable: {exc}",
                       details={"service_status": exc.status} if exc.status else None) from None
    answer["latency_ms"] = round((time.perf_counter() - t0) * 1000)
    return Response(msgspec.json.encode(answer), media_type=JSON, headers={"X-Request-Id": rid})


async def _stored(state: State, key: str) -> bytes | None:
    try:
        return await state.storage.get(key)
    except StorageError:
        raise ApiError(503, "PT503", "image storage is unavailable; try again") from None


async def _ask(client: httpx.AsyncClient, cfg, body: dict, h: int, w: int) -> dict:
    """POST /v1/segment; the answer checked: a JSON object, an RLE of the image's size that decodes, a score."""
    r = await client.post(cfg.url.rstrip("/") + "/v1/segment", content=msgspec.json.encode(body),
                          headers={"content-type": JSON}, timeout=cfg.timeout)
    if r.status_code != 200:
        raise _Unusable(f"HTTP {r.status_code}", r.status_code, r.text[:300])
    try:
        doc = msgspec.json.decode(r.content)
    except msgspec.MsgspecError:  # not JSON, or a number beyond what JSON decoding holds
        raise _Unusable("not JSON") from None
    if not isinstance(doc, dict):
        raise _Unusable("not a JSON object")
    try:
        await asyncio.to_thread(rle.decode, doc.get("rle"), h, w)  # a full-size mask: off the event loop
    except rle.BadRle as exc:
        raise _Unusable(f"rle: {exc}") from None
    score = doc.get("score")
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score) \
            or not 0 <= score <= 1:
        raise _Unusable("score: must be a number between 0 and 1")
    return {"rle": {"size": [h, w], "counts": doc["rle"]["counts"]}, "score": score,
            "model": str(doc.get("model") or "unknown")[:200], "version": str(doc.get("version") or "unknown")[:100]}
