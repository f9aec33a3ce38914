"""The model calls of each stage. A stage turns a job (from ai.claim_jobs) into a Result; the worker records it.
Errors say whether trying again could help (StageError.permanent): a 4xx answer will not get better, a timeout,
a refused connection or a 5xx might."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import time
import warnings
from dataclasses import dataclass, field

import httpx
from PIL import Image

from ..images import imaging
from .config import StageConfig

log = logging.getLogger("dermlabel.ai")


class StageError(Exception):
    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class StageSkipped(Exception):
    """The service has nothing to do for this stage (a segment service without a preparation step)."""


MAX_MASK_CHARS = 200_000  # what SQL accepts of an RLE's counts (docs/segmentation.md)
MAX_EMBEDDING_BYTES = 32 * 1024 * 1024  # sent back with every click: a bigger one is not a usable embedding


@dataclass
class Result:
    model: str
    version: str
    payload: dict
    latency_ms: int
    files: list[tuple[str, bytes, str]] = field(default_factory=list)  # stored before the result is recorded


def _http_failure(exc: Exception) -> StageError:
    if isinstance(exc, httpx.HTTPStatusError):
        r = exc.response
        transient = r.status_code >= 500 or r.status_code in (408, 429)
        return StageError(f"HTTP {r.status_code} from {r.request.url}: {r.text[:300]}", permanent=not transient)
    if isinstance(exc, httpx.TimeoutException):
        return StageError(f"timed out: {exc!r}")
    return StageError(f"{type(exc).__name__}: {exc}")


async def _post_image(client: httpx.AsyncClient, cfg: StageConfig, data: bytes, media_type: str,
                      params: dict | None = None) -> tuple[dict, int]:
    t0 = time.perf_counter()
    try:
        r = await client.post(cfg.url, content=data, headers={"content-type": media_type}, params=params,
                              timeout=cfg.timeout)
        r.raise_for_status()
        body = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise _http_failure(exc) if isinstance(exc, httpx.HTTPError) else StageError(f"not JSON: {exc}", True)
    if not isinstance(body, dict):
        raise StageError("the answer is not a JSON object", permanent=True)
    return body, round((time.perf_counter() - t0) * 1000)


def _rebuilt_png(data: bytes) -> bytes:
    """A service's standardised image stored like every raster we keep: decoded, rebuilt from its pixels alone as
    a PNG (whatever text or EXIF the service wrote into its answer stays behind)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = imaging.MAX_PIXELS
            img = Image.open(io.BytesIO(data))
            img.load()
            upright, icc = imaging.storable(img)
            if upright.mode not in ("1", "L", "LA", "RGB", "RGBA", "I;16"):
                upright = upright.convert("RGB")
            return imaging.encode(upright, "PNG", icc)
    except Exception as exc:  # Pillow raises many types for what is not an image; Rejected for what we refuse
        raise StageError(f"standardised image is not an image we can store ({type(exc).__name__})",
                         permanent=True) from None


async def crop_http(client: httpx.AsyncClient, cfg: StageConfig, job: dict, image: bytes) -> Result:
    body, ms = await _post_image(client, cfg, image, job["media_type"])
    payload = {k: body[k] for k in ("box", "mask", "lesion_found", "lesion_area_fraction", "disclaimer") if k in body}
    mask = payload.get("mask")
    if isinstance(mask, dict) and isinstance(mask.get("counts"), str) and len(mask["counts"]) > MAX_MASK_CHARS:
        # SQL would refuse it and with it the whole crop; the mask is only a suggestion: keep the rest
        log.warning("crop of image %s: lesion mask of %s characters dropped", job["image_id"], len(mask["counts"]))
        del payload["mask"]
    files = []
    std = body.get("standardised")
    if isinstance(std, dict) and std.get("png_base64"):
        try:
            png = base64.b64decode(std["png_base64"], validate=True)
        except ValueError as exc:
            raise StageError(f"standardised image is not base64: {exc}", permanent=True)
        png = await asyncio.to_thread(_rebuilt_png, png)
        key = f"derived/{job['project_id']}/{job['sha256']}/std-{hashlib.sha256(png).hexdigest()[:16]}.png"
        files.append((key, png, "image/png"))
        payload["standardised"] = {"storage_key": key, "width": std.get("width"), "height": std.get("height"),
                                   "media_type": "image/png",
                                   **({"colour_normalisation": std["colour_normalisation"]}
                                      if "colour_normalisation" in std else {})}
    return Result(str(body.get("model") or cfg.url), str(body.get("version") or "unknown"), payload, ms, files)


async def segment_prepare(client: httpx.AsyncClient, cfg: StageConfig, job: dict, image: bytes) -> Result:
    """The image prepared for click-to-segment (the service's encoder run ahead): its opaque embedding stored as a
    derived file, the suggestion pointing at it. A service without a preparation step answers 404: skipped."""
    url = cfg.url.rstrip("/") + "/v1/segment/prepare"
    t0 = time.perf_counter()
    try:
        r = await client.post(url, content=image, headers={"content-type": job["media_type"]}, timeout=cfg.timeout)
        if r.status_code == 404:
            raise StageSkipped(f"{url} answered 404: the segment service has no preparation step")
        r.raise_for_status()
        body = r.json()
    except httpx.HTTPError as exc:
        raise _http_failure(exc)
    except ValueError as exc:
        raise StageError(f"not JSON: {exc}", permanent=True)
    ms = round((time.perf_counter() - t0) * 1000)
    embedding = body.get("embedding") if isinstance(body, dict) else None
    if not isinstance(embedding, str) or not embedding:
        raise StageError("the answer has no embedding (a non-empty string)", permanent=True)
    data = embedding.encode()
    if len(data) > MAX_EMBEDDING_BYTES:
        raise StageError(f"embedding of {len(data)} bytes is larger than {MAX_EMBEDDING_BYTES}", permanent=True)
    key = f"derived/{job['project_id']}/{job['sha256']}/seg-{hashlib.sha256(data).hexdigest()[:16]}.txt"
    return Result(str(body.get("model") or url), str(body.get("version") or "unknown"),
                  {"embedding": {"storage_key": key, "bytes": len(data)}}, ms, [(key, data, "text/plain")])


def _probabilities(body: dict) -> dict:
    probs = body.get("probabilities")
    if probs is None and body and all(isinstance(v, (int, float)) for v in body.values()):
        probs = body  # a bare {code: probability} object, as many model containers answer
    if not isinstance(probs, dict) or not probs:
        raise StageError("the answer has no probabilities {code: p}", permanent=True)
    return probs


def _classify_payload(body: dict) -> dict:
    payload = {k: body[k] for k in ("features", "quality", "lesion_found", "disclaimer") if k in body}
    payload["probabilities"] = _probabilities(body)
    return payload


async def classify_http(client: httpx.AsyncClient, cfg: StageConfig, job: dict, image: bytes,
                        media_type: str, pixels_per_mm: float | None) -> Result:
    params = {"pixels_per_mm": pixels_per_mm} if pixels_per_mm else None
    body, ms = await _post_image(client, cfg, image, media_type, params)
    return Result(str(body.get("model") or cfg.url), str(body.get("version") or "unknown"),
                  _classify_payload(body), ms)


class SageMaker:
    """AWS SageMaker runtime through boto3 (in a thread: boto3 blocks). The endpoint answers JSON with
    probabilities over taxonomy codes; the production variant that answered is recorded as the version."""

    def __init__(self, cfg: StageConfig):
        import boto3
        from botocore.config import Config

        o = cfg.options
        self.cfg = cfg
        self.client = boto3.client("sagemaker-runtime", region_name=o["sagemaker_region"] or None,
                                   endpoint_url=o["sagemaker_url"],
                                   config=Config(read_timeout=cfg.timeout, connect_timeout=min(10, cfg.timeout),
                                                 retries={"max_attempts": 1}))

    async def classify(self, image: bytes, media_type: str) -> Result:
        from botocore.exceptions import BotoCoreError, ClientError

        endpoint = self.cfg.options["sagemaker_endpoint"]
        if self.cfg.options["sagemaker_format"] == "json":
            body_in, content_type = json.dumps({"image_base64": base64.b64encode(image).decode(),
                                                "media_type": media_type}), "application/json"
        else:
            body_in, content_type = image, media_type
        t0 = time.perf_counter()
        try:
            r = await asyncio.to_thread(self.client.invoke_endpoint, EndpointName=endpoint, ContentType=content_type,
                                        Accept="application/json", Body=body_in)
            raw = await asyncio.to_thread(r["Body"].read)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
            raise StageError(f"SageMaker {endpoint}: {exc}", permanent=400 <= status < 500 and status != 429)
        except BotoCoreError as exc:
            raise StageError(f"SageMaker {endpoint}: {exc}")
        ms = round((time.perf_counter() - t0) * 1000)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise StageError(f"SageMaker {endpoint} answered non-JSON: {exc}", permanent=True)
        if not isinstance(body, dict):
            raise StageError(f"SageMaker {endpoint} answered a JSON {type(body).__name__}", permanent=True)
        return Result(str(body.get("model") or endpoint),
                      str(body.get("version") or r.get("InvokedProductionVariant") or "unknown"),
                      _classify_payload(body), ms)


SYSTEM_PROMPT = ("You assist dermatologists who label skin-lesion images. Given a pre-classifier's probable classes "
                 "and lesion features, list at most five short, concrete next steps (one per line, no numbering). "
                 "Do not give a diagnosis; defer to the clinician.")


def chat_prompt(job: dict) -> str:
    """Only the predicted classes and the lesion's features: nothing that could identify a patient."""
    cls = (job.get("classify") or {})
    lines = ["Probable classes:"]
    for c in (cls.get("classes") or [])[:5]:
        lines.append(f"- {c.get('name')} ({c.get('code')}): {float(c.get('probability', 0)):.0%}")
    f = cls.get("features") or {}
    if f:
        lines.append("Features: " + ", ".join(
            f"{k} {v.get('score')}" for k, v in f.items() if isinstance(v, dict) and "score" in v)
            + (f"; total dermoscopy score {f['tds']} ({f.get('tds_band')})" if "tds" in f else ""))
    return "\n".join(lines)


async def recommend_chat(client: httpx.AsyncClient, cfg: StageConfig, job: dict) -> Result:
    if not (job.get("classify") or {}).get("classes"):
        raise StageError("no classification to recommend from", permanent=True)
    model = cfg.options.get("model") or "default"
    headers = {"authorization": f"Bearer {cfg.options['api_key']}"} if cfg.options.get("api_key") else {}
    prompt = chat_prompt(job)
    t0 = time.perf_counter()
    try:
        r = await client.post(cfg.url.rstrip("/") + "/chat/completions", headers=headers, timeout=cfg.timeout,
                              json={"model": model, "temperature": 0.2, "max_tokens": 300,
                                    "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                                                 {"role": "user", "content": prompt}]})
        r.raise_for_status()
        body = r.json()
        text = body["choices"][0]["message"]["content"]
    except httpx.HTTPError as exc:
        raise _http_failure(exc)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise StageError(f"not a chat-completions answer: {exc!r}", permanent=True)
    steps = [ln.strip().lstrip("-*•0123456789.) ").strip() for ln in str(text).splitlines()]
    steps = [s for s in steps if s][:5]
    if not steps:
        raise StageError("the model answered no steps", permanent=True)
    return Result(model, str(body.get("model") or model),
                  {"steps": steps, "source": "llm", "prompt": prompt,
                   "disclaimer": "Generated by a language model from the predicted classes; not a diagnosis."},
                  round((time.perf_counter() - t0) * 1000))
