"""The reference service's HTTP protocol (the one the worker's HTTP stages speak, so a real model can replace it):

  POST /v1/crop      body: image bytes  -> {model, version, box, standardised: {png_base64, width, height}, ...}
  POST /v1/classify  body: image bytes, ?pixels_per_mm=  -> {model, version, probabilities: {code: p}, features,
                                                            quality, ...}
  POST /v1/segment/prepare  body: image bytes  -> {model, version, embedding, width, height}
  POST /v1/segment   JSON {embedding | image_base64 + media_type, points: [[x, y, 1|0]], box: [x, y, w, h] | null,
                     size: [h, w]}  -> {model, version, rle: {size: [h, w], counts}, score}
  GET  /healthz
The crop's lesion mask comes along as `mask`, an RLE at the image's full size (docs/segmentation.md).
Errors: 4xx with {"code", "message"} (the platform's error shape)."""
from __future__ import annotations

import asyncio
import base64
import logging
import time

import msgspec
from litestar import Litestar, Request, Response, get, post

from . import abcd, crop, interactive, quality, segment

log = logging.getLogger("dermlabel.ai_reference")
MODEL, VERSION = "reference-abcd", "1.0"
DISCLAIMER = ("Reference heuristic (ABCD rule of dermoscopy, Otsu segmentation); not a diagnostic device. "
              "For pre-sorting and explanation only.")
MAX_BYTES = 40 * 1024 * 1024
MAX_PIXELS = 120_000_000
MAX_JSON_BYTES = MAX_BYTES * 4 // 3 + 65_536  # /v1/segment may carry the image as base64


def _plain(obj):
    """numpy scalars (np.float64, np.bool_) as the Python values they hold."""
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _json(body: dict, status: int = 200) -> Response[bytes]:
    return Response(msgspec.json.encode(body, enc_hook=_plain), status_code=status, media_type="application/json")


def _unexpected(_: Request, exc: Exception) -> Response[bytes]:
    log.exception("reference service error")
    return _error(500, "XX000", "internal error in the reference service")


def _error(status: int, code: str, message: str) -> Response[bytes]:
    return _json({"code": code, "message": message}, status)


async def _image(request: Request):
    return _decoded(await request.body())


def _decoded(data: bytes):
    if not data:
        return None, _error(400, "PT400", "send the image bytes as the request body")
    if len(data) > MAX_BYTES:
        return None, _error(413, "PT413", "image larger than 40 MB")
    try:
        img = segment.load(data)
    except segment.NotAnImage as exc:
        return None, _error(415, "PT415", str(exc))
    if img.width * img.height > MAX_PIXELS:
        return None, _error(413, "PT413", "image has more than 120 megapixels")
    return img, None


def _crop(img) -> dict:
    rgb, scale = segment.working_copy(img)
    mask = segment.lesion_mask(rgb)
    b = crop.box(mask, scale, img.width, img.height)
    png = crop.standardise(img, b)
    # the lesion mask, kept by the pipeline as a suggested mask (pre-annotation); an empty one is no suggestion
    found = {"mask": interactive.rle(interactive.full_size(mask, img.width, img.height, smooth=False))} \
        if mask.any() else {}
    return {"model": MODEL, "version": VERSION, "box": b, "lesion_found": bool(mask.any()), **found,
            "lesion_area_fraction": round(float(mask.mean()), 4),
            "standardised": {"png_base64": base64.b64encode(png).decode(), "width": crop.SIZE,
                             "height": crop.SIZE, "media_type": "image/png",
                             "colour_normalisation": "shades of grey, p = 6"},
            "disclaimer": DISCLAIMER}


def _classify(img, pixels_per_mm: float | None) -> dict:
    rgb, scale = segment.working_copy(img)
    mask = segment.lesion_mask(rgb)
    q = quality.quality(rgb)
    if not mask.any():
        return {"model": MODEL, "version": VERSION, "probabilities": {}, "lesion_found": False, "quality": q,
                "disclaimer": DISCLAIMER}
    result = abcd.score(mask, rgb, scale, min(img.size), pixels_per_mm)
    return {"model": MODEL, "version": VERSION, "lesion_found": True, **result, "quality": q,
            "disclaimer": DISCLAIMER}


@post("/v1/crop")
async def crop_endpoint(request: Request) -> Response[bytes]:
    img, err = await _image(request)
    if err:
        return err
    t0 = time.perf_counter()
    body = await asyncio.to_thread(_crop, img)
    body["compute_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return _json(body)


@post("/v1/classify")
async def classify_endpoint(request: Request) -> Response[bytes]:
    img, err = await _image(request)
    if err:
        return err
    raw = request.query_params.get("pixels_per_mm")
    try:
        ppm = float(raw) if raw else None
        if ppm is not None and not 0 < ppm < 100_000:
            raise ValueError
    except ValueError:
        return _error(400, "22023", "pixels_per_mm must be a positive number")
    t0 = time.perf_counter()
    body = await asyncio.to_thread(_classify, img, ppm)
    body["compute_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    if not body["probabilities"]:
        return _error(422, "PT422", "no lesion found in the image")
    return _json(body)


@post("/v1/segment/prepare")
async def segment_prepare(request: Request) -> Response[bytes]:
    img, err = await _image(request)
    if err:
        return err
    t0 = time.perf_counter()
    embedding = await asyncio.to_thread(interactive.prepare, img)
    return _json({"model": interactive.MODEL, "version": interactive.VERSION, "embedding": embedding,
                  "width": img.width, "height": img.height,
                  "compute_ms": round((time.perf_counter() - t0) * 1000, 1)})


class _Refused(Exception):
    def __init__(self, response: Response[bytes]):
        self.response = response


def _segment(body: dict, image: bytes | None) -> dict:
    """The work of one click (in a thread): the working copy, the prompt checked, GrabCut, the RLE."""
    if image is None:
        prepared = interactive.load_embedding(body["embedding"])
    else:
        img, err = _decoded(image)
        if err:
            raise _Refused(err)
        prepared = interactive.from_image(img)
    size = body.get("size")
    if size is not None and size != [prepared.height, prepared.width]:
        raise interactive.Invalid(f"size: the image is [{prepared.height}, {prepared.width}] ([h, w])")
    points, box = interactive.check_prompt(body, prepared.width, prepared.height)
    mask, score = interactive.segment(prepared, points, box)
    full = interactive.answer_mask(prepared, mask, box)
    return {"model": interactive.MODEL, "version": interactive.VERSION, "rle": interactive.rle(full),
            "score": score}


@post("/v1/segment", request_max_body_size=MAX_JSON_BYTES)
async def segment_endpoint(request: Request) -> Response[bytes]:
    try:
        body = msgspec.json.decode(await request.body())
    except msgspec.MsgspecError:  # not JSON, or a number beyond what JSON decoding holds
        return _error(400, "PT400", "send a JSON object: {embedding | image_base64, points, box, size}")
    if not isinstance(body, dict):
        return _error(400, "PT400", "send a JSON object: {embedding | image_base64, points, box, size}")
    if ("embedding" in body) == ("image_base64" in body):
        return _error(400, "22023", "embedding or image_base64: send exactly one of them")
    if "embedding" in body and not isinstance(body["embedding"], str):
        return _error(400, "22023", "embedding: must be the text /v1/segment/prepare answered")
    unknown = sorted(set(body) - {"embedding", "image_base64", "media_type", "points", "box", "size"})
    if unknown:
        return _error(400, "22023", f"{unknown[0]}: not a field of this request")
    image = None
    if "image_base64" in body:
        try:
            image = base64.b64decode(body["image_base64"], validate=True)
        except (TypeError, ValueError):
            return _error(400, "22023", "image_base64: must be the image's bytes in base64")
    t0 = time.perf_counter()
    try:
        out = await asyncio.to_thread(_segment, body, image)
    except interactive.Invalid as exc:
        return _error(400, "22023", str(exc))
    except _Refused as exc:
        return exc.response
    out["compute_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return _json(out)


@get("/healthz")
async def healthz() -> Response[bytes]:
    return _json({"status": "ok", "model": MODEL, "version": VERSION, "disclaimer": DISCLAIMER})


def create_reference_app() -> Litestar:
    return Litestar([crop_endpoint, classify_endpoint, segment_prepare, segment_endpoint, healthz],
                    request_max_body_size=MAX_BYTES + 1,
                    logging_config=None, exception_handlers={Exception: _unexpected})
