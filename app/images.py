"""Image routes: upload (many files at once) and download of the bytes a caller may see."""
from __future__ import annotations

import asyncio
import os

import msgspec
import psycopg
from litestar import Request, Response, get, post
from litestar.datastructures import State, UploadFile

from . import errors, rpc
from .auth import identify
from .errors import JSON, ApiError
from .imaging import Rejected, clean
from .routes import request_id
from .storage import StorageError

MAX_BYTES = int(os.environ.get("DL_MAX_UPLOAD_MB", "40")) * 1024 * 1024
MAX_REQUEST_BYTES = int(os.environ.get("DL_MAX_REQUEST_MB", "1024")) * 1024 * 1024


# the whole request (many files) is bounded too: each file by MAX_BYTES, the request by DL_MAX_REQUEST_MB
@post("/projects/{project_id:int}/images", status_code=200, request_max_body_size=MAX_REQUEST_BYTES)
async def upload(request: Request, state: State, project_id: int) -> Response[bytes]:
    rid = request_id(request)
    caller = identify(request, state.tokens)
    register = state.catalog.get("register_image")
    register.role_for(caller)  # 401/403 before reading any bytes
    form = await request.form()
    files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
    if not files:
        raise ApiError(400, "PGRST400", "send one or more files in a multipart field named 'files'")
    source_class = form.get("source_class") or None
    batch = form.get("batch") or None
    results = []
    for f in files:
        name = os.path.basename(f.filename or "upload")[:200]
        raw = await f.read(MAX_BYTES + 1)
        try:
            img = await asyncio.to_thread(clean, raw, MAX_BYTES)
        except Rejected as exc:
            results.append({"filename": name, "status": exc.status, "error": str(exc)})
            continue
        key = f"images/{project_id}/{img.sha256}.{img.ext}"
        try:
            # bytes first, the row second: a registered image always has its bytes
            await state.storage.put(key, img.data, img.media_type)
            await state.storage.put(f"thumbs/{project_id}/{img.sha256}.jpg", img.thumb, "image/jpeg")
        except StorageError:
            raise ApiError(503, "PT503", "image storage is unavailable, nothing was saved; try again") from None
        try:
            out = await rpc.call(state.pool, register, caller, {
                "project_id": project_id, "storage_key": key, "sha256": img.sha256, "width": img.width,
                "height": img.height, "media_type": img.media_type, "source_class": source_class,
                "upload_batch": batch, "metadata": {"original_filename": name, "removed_metadata": img.removed}},
                rid)
        except psycopg.Error as exc:
            return errors.from_sql(exc, caller.anonymous, rid)
        results.append({"filename": name, "status": 200, **msgspec.json.decode(out), "width": img.width,
                        "height": img.height, "media_type": img.media_type, "removed_metadata": img.removed})
    ok = [r for r in results if r["status"] == 200]
    status = 200 if ok else max(r["status"] for r in results)
    if not ok:
        first = results[0]
        return Response(errors.body(f"PT{status}", f"{first['filename']}: {first['error']}", results),
                        status_code=status, media_type=JSON)
    return Response(msgspec.json.encode({"files": results}), media_type=JSON, headers={"X-Request-Id": rid})


async def _serve(request: Request, state: State, image_id: int, variant: str) -> Response[bytes]:
    """The bytes of an image the caller may see: the original, its thumbnail, or the AI's standardised crop."""
    rid = request_id(request)
    caller = identify(request, state.tokens)
    try:
        out = await rpc.call(state.pool, state.catalog.get("image_file"), caller, {"image_id": image_id}, rid)
    except psycopg.Error as exc:
        return errors.from_sql(exc, caller.anonymous, rid)
    info = msgspec.json.decode(out)
    if variant == "standardised":
        key, media_type = info.get("standardised_key"), "image/png"
        if not key:
            raise ApiError(404, "PT404", f"image {image_id} has no standardised crop (yet)")
        etag = f'"{key.rsplit("/", 1)[-1]}"'  # the key names the crop's own hash: a rerun changes it
    else:
        key = info["thumb_key"] if variant == "thumb" else info["storage_key"]
        media_type = "image/jpeg" if variant == "thumb" else info["media_type"]
        etag = f'"{info["sha256"]}{"-t" if variant == "thumb" else ""}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers)
    try:
        data = await state.storage.get(key)
    except StorageError:
        raise ApiError(503, "PT503", "image storage is unavailable; try again") from None
    if data is None:
        raise ApiError(404, "PT404", f"the bytes of image {image_id} are missing from storage")
    return Response(data, media_type=media_type, headers=headers)


@get("/images/{image_id:int}")
async def image(request: Request, state: State, image_id: int) -> Response[bytes]:
    return await _serve(request, state, image_id, "original")


@get("/images/{image_id:int}/thumb")
async def thumbnail(request: Request, state: State, image_id: int) -> Response[bytes]:
    return await _serve(request, state, image_id, "thumb")


@get("/images/{image_id:int}/standardised")
async def standardised(request: Request, state: State, image_id: int) -> Response[bytes]:
    return await _serve(request, state, image_id, "standardised")
