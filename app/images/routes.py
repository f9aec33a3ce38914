"""Image routes: upload (many files at once, photographs or DICOM) and download of the bytes a caller may see."""
from __future__ import annotations

import asyncio
import logging
import os
import weakref

import msgspec
import psycopg
from litestar import Request, Response, get, post
from litestar.datastructures import State, UploadFile

from ..auth.tokens import identify
from ..config import MB
from ..dicom.deid import Key
from ..dicom.intake import clean_dicom, frame_payload, is_dicom
from ..rpc import calls as rpc
from ..server import errors, strictjson
from ..server.errors import JSON, ApiError
from ..server.request import request_id
from .imaging import Rejected, clean
from .storage import StorageError

log = logging.getLogger("dermlabel.images")
AUDITED = {"original", "thumb", "standardised", "dicom", "frame"}  # what audit.access calls each route
# one upload at a time per image in this process: a refused upload deleting the files it created must not delete
# those a concurrent upload of the same image has just registered
_LOCKS: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


class Intake:
    """What one request needs to store and register images in a project; the project's DICOM key is asked for
    once, on the first DICOM file."""

    def __init__(self, state: State, caller, project_id: int, rid: str):
        self.state, self.caller, self.project_id, self.rid = state, caller, project_id, rid
        self.max_bytes = state.settings.limits.max_upload_mb * MB  # one file (DL_MAX_UPLOAD_MB)
        # a partner's key registers cases under their external id (idempotent); people register images
        self.register = state.catalog.get("register_partner_image" if caller.key else "register_image")
        self.register.role_for(caller)  # 401/403 before any bytes are read
        self._key: Key | None = None
        self.external_id: str | None = None
        self.consent_ref: str | None = None
        self.case_metadata: dict = {}

    async def deid_key(self) -> Key:
        if self._key is None:
            out = await rpc.call(self.state.pool, self.state.catalog.get("dicom_deid_key"), self.caller,
                                 {"project_id": self.project_id}, self.rid)
            doc = msgspec.json.decode(out)
            self._key = Key(doc["secret"], doc["date_offset_days"])
        return self._key

    async def _store_and_register(self, files: list[tuple[str, bytes, str]], args: dict) -> bytes:
        """Bytes first, the row second (a registered image always has its bytes, and the AI worker the row wakes
        finds them); when SQL then refuses (project not found, a conflict, any error) the files this upload
        created are deleted again, so a refused upload leaves nothing behind. Files that were there before (the
        same image uploaded earlier) are left alone."""
        created: list[str] = []
        storage = self.state.storage
        try:
            for key, data, media_type in files:
                if not await storage.exists(key):
                    created.append(key)
                await storage.put(key, data, media_type)
        except StorageError:
            await self._discard(created)
            raise ApiError(503, "PT503", "image storage is unavailable, nothing was saved; try again") from None
        try:
            return await rpc.call(self.state.pool, self.register, self.caller, args, self.rid)
        except BaseException:
            await self._discard(created)
            raise

    async def _discard(self, keys: list[str]) -> None:
        for key in keys:
            try:
                await self.state.storage.delete(key)
            except (StorageError, ValueError) as exc:
                log.error("request %s: could not delete %s after a refused upload: %s", self.rid, key, exc)

    async def add(self, name: str, raw: bytes, source_class: str | None, batch: str | None) -> dict:
        """One file: cleaned (or de-identified and rendered, for DICOM), bytes stored, then registered. Returns the
        file's result; a refused file is a result with its 4xx status, not an exception."""
        pid = self.project_id
        try:
            if is_dicom(raw):
                if self.caller.key:  # the project's de-identification key is its admins' alone
                    raise Rejected(415, "DICOM files are uploaded by the project's admins, not with an API key")
                key = await self.deid_key()
                img = await asyncio.to_thread(clean_dicom, raw, self.max_bytes, key)
            else:
                img = await asyncio.to_thread(clean, raw, self.max_bytes)
        except Rejected as exc:
            return {"filename": name, "status": exc.status, "error": str(exc)}
        key = f"images/{pid}/{img.sha256}.{img.ext}"
        files = [(key, img.data, img.media_type), (f"thumbs/{pid}/{img.sha256}.jpg", img.thumb, "image/jpeg")]
        if img.dicom is not None:
            files.append((f"dicom/{pid}/{img.sha256}.dcm", img.dicom, "application/dicom"))
        # the name the file had is not data: it is answered to the uploader below, and kept nowhere (a photo's
        # name is often the patient's: 'Doe_Jane_MRN….jpg')
        metadata = {"removed_metadata": img.removed, **img.metadata}
        args = {"project_id": pid, "storage_key": key, "sha256": img.sha256, "width": img.width,
                "height": img.height, "media_type": img.media_type, "metadata": metadata,
                "consent_ref": self.consent_ref}
        if self.caller.key:
            args.update(external_id=self.external_id, metadata={**self.case_metadata, **metadata},
                        source_class=source_class)
        else:
            args.update(source_class=source_class, upload_batch=batch)
        async with _LOCKS.setdefault(f"{pid}/{img.sha256}", asyncio.Lock()):
            out = await self._store_and_register(files, args)
        return {"filename": name, "status": 200, **msgspec.json.decode(out), "width": img.width,
                "height": img.height, "media_type": img.media_type, "removed_metadata": img.removed,
                **({"dicom": {k: img.metadata["dicom"][k] for k in ("frames", "modality", "patient_pseudonym")}}
                   if img.dicom is not None else {})}


def upload_response(results: list[dict], rid: str) -> Response[bytes]:
    """200 with every file's result when any was stored; otherwise the worst refusal, in the error shape."""
    ok = [r for r in results if r["status"] == 200]
    if not ok:
        status = max(r["status"] for r in results)
        first = results[0]
        return Response(errors.body(f"PT{status}", f"{first['filename']}: {first['error']}", results),
                        status_code=status, media_type=JSON)
    return Response(msgspec.json.encode({"files": results}), media_type=JSON, headers={"X-Request-Id": rid})


# the whole request (many files) is bounded too: each file by DL_MAX_UPLOAD_MB, the request by DL_MAX_REQUEST_MB
# (on the router that images.route_handlers() puts this handler in)
@post("/projects/{project_id:int}/images", status_code=200)
async def upload(request: Request, state: State, project_id: int) -> Response[bytes]:
    rid = request_id(request)
    caller = identify(request, state.tokens)
    intake = Intake(state, caller, project_id, rid)
    try:  # may this caller upload here at all? Asked before a byte of the body is read
        target = msgspec.json.decode(await rpc.call(state.pool, state.catalog.get("upload_target"), caller,
                                                    {"project_id": project_id}, rid))
    except psycopg.Error as exc:
        return errors.from_sql(exc, caller.anonymous, rid)
    form = await request.form()
    files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
    if not files:
        raise ApiError(400, "PGRST400", "send one or more files in a multipart field named 'files'")
    source_class = form.get("source_class") or None
    batch = form.get("batch") or None
    intake.consent_ref = (form.get("consent_ref") or "").strip() or None
    if target.get("consent_required") and not intake.consent_ref:  # SQL refuses it too; say so before storing
        raise ApiError(400, "PGRST400", "consent_ref: this project requires a consent reference for every image",
                       details={"field": "consent_ref"})
    if caller.key:  # a partner's case: their id for it (one file), and optional metadata as a JSON object
        intake.external_id = form.get("external_id") or None
        if not intake.external_id or len(files) != 1:
            raise ApiError(400, "PGRST400", "a partner upload is one file with an external_id field",
                           details={"field": "external_id"})
        try:
            intake.case_metadata = strictjson.decode((form.get("metadata") or "{}").encode())
        except strictjson.Refused as exc:
            raise ApiError(400, "PGRST400", f"metadata: {exc.message}", details={"field": "metadata"}) from None
        if not isinstance(intake.case_metadata, dict):
            raise ApiError(400, "PGRST400", "metadata must be a JSON object", details={"field": "metadata"})
    results = []
    try:
        for f in files:
            name = os.path.basename(f.filename or "upload")[:200]
            results.append(await intake.add(name, await f.read(intake.max_bytes + 1), source_class, batch))
    except psycopg.Error as exc:
        return errors.from_sql(exc, caller.anonymous, rid)
    return upload_response(results, rid)


async def _serve(request: Request, state: State, image_id: int, variant: str, frame: int = 0) -> Response[bytes]:
    """The bytes of an image the caller may see: the original, its thumbnail, the AI's standardised crop, or for a
    DICOM upload its de-identified file or one frame's pixel values (for the viewer's window/level)."""
    rid = request_id(request)
    caller = identify(request, state.tokens)
    try:
        # the read is recorded in the access audit, in the same transaction (api.image_file)
        out = await rpc.call(state.pool, state.catalog.get("image_file"), caller,
                             {"image_id": image_id, "variant": variant if variant in AUDITED else "original"}, rid)
    except psycopg.Error as exc:
        return errors.from_sql(exc, caller.anonymous, rid)
    info = msgspec.json.decode(out)
    if variant == "standardised":
        key, media_type = info.get("standardised_key"), "image/png"
        if not key:
            raise ApiError(404, "PT404", f"image {image_id} has no standardised crop (yet)")
        etag = f'"{key.rsplit("/", 1)[-1]}"'  # the key names the crop's own hash: a rerun changes it
    elif variant in ("dicom", "frame"):
        key, media_type = info.get("dicom_key"), "application/dicom"
        if not key:
            raise ApiError(404, "PT404", f"image {image_id} was not uploaded as DICOM")
        etag = f'"{info["sha256"]}-{"dcm" if variant == "dicom" else f"f{frame}"}"'
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
    if variant == "frame":
        try:
            data, described = await asyncio.to_thread(frame_payload, data, frame)
        except IndexError:
            raise ApiError(404, "PT404", f"image {image_id} has no frame {frame}") from None
        headers |= described
        media_type = "application/octet-stream"
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


@get("/images/{image_id:int}/dicom")
async def dicom_file(request: Request, state: State, image_id: int) -> Response[bytes]:
    return await _serve(request, state, image_id, "dicom")


@get("/images/{image_id:int}/frames/{frame:int}")
async def dicom_frame(request: Request, state: State, image_id: int, frame: int) -> Response[bytes]:
    """One frame's values, little-endian, rows × columns × samples of X-Dtype (greyscale: modality values after
    the rescale; colour: 8-bit RGB). The viewer windows them itself."""
    return await _serve(request, state, image_id, "frame", frame)
