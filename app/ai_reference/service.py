"""The reference service's HTTP protocol (the one the worker's HTTP stages speak, so a real model can replace it):

  POST /v1/crop      body: image bytes  -> {model, version, box, standardised: {png_base64, width, height}, ...}
  POST /v1/classify  body: image bytes, ?pixels_per_mm=  -> {model, version, probabilities: {code: p}, features,
                                                            quality, ...}
  GET  /healthz
Errors: 4xx with {"code", "message"} (the platform's error shape)."""
from __future__ import annotations

import asyncio
import base64
import logging
import time

import msgspec
from litestar import Litestar, Request, Response, get, post

from . import abcd, crop, quality, segment

log = logging.getLogger("dermlabel.ai_reference")
MODEL, VERSION = "reference-abcd", "1.0"
DISCLAIMER = ("Reference heuristic (ABCD rule of dermoscopy, Otsu segmentation); not a diagnostic device. "
              "For pre-sorting and explanation only.")
MAX_BYTES = 40 * 1024 * 1024
MAX_PIXELS = 120_000_000


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
    data = await request.body()
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
    return {"model": MODEL, "version": VERSION, "box": b, "lesion_found": bool(mask.any()),
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


@get("/healthz")
async def healthz() -> Response[bytes]:
    return _json({"status": "ok", "model": MODEL, "version": VERSION, "disclaimer": DISCLAIMER})


def create_reference_app() -> Litestar:
    return Litestar([crop_endpoint, classify_endpoint, healthz], request_max_body_size=MAX_BYTES + 1,
                    logging_config=None, exception_handlers={Exception: _unexpected})
