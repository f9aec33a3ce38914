"""Dataset export for ML: JSON Lines, CSV, COCO, and mask archives (ISIC PNGs, DICOM SEG; app/datasets/export_masks.py),
streamed. SQL chooses and shapes the records (api.export_*); this module only turns pages of records into bytes of a
format, so memory stays flat whatever the size.

GET /projects/{id}/export?format=jsonl|csv|coco|isic|dicom_seg&classes=MEL,NV&rule_ids=1,2&image_ids=7,9&batch=b
    &from=2026-01-01&to=…&gold=exclude
GET /projects/{id}/images/{image_id}/seg: the DICOM SEG of one image, same checks and audit
python -m app export --project 1 --format coco --as admin@example.org --out dataset.json"""
from __future__ import annotations

import csv
import io
import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

import msgspec
import psycopg
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.response import Stream
from pycocotools import mask as mask_util

from ..auth.tokens import identify
from ..images.storage import Storage, StorageError
from ..rpc import calls as rpc
from ..server import errors
from ..server.errors import ApiError
from ..server.request import request_id
from . import export_masks

PAGE = 1000
CSV_FIELDS = ["item_id", "image_id", "sha256", "storage_key", "width", "height", "source_class", "upload_batch",
              "rule_id", "class_code", "class_name", "icd10", "snomed_ct", "class_path", "description", "confidence",
              "regions", "annotator_id", "reviewer_ids", "revision_count", "approved_at", "ai_model", "ai_top_code",
              "ai_top_probability", "ai_agreed"]

Call = Callable[[str, dict[str, Any]], Awaitable[Any]]


async def records(call: Call, project: int, filters: dict) -> AsyncIterator[dict]:
    """Every matching record, page by page (keyset on image, item)."""
    after_image = after_item = 0
    while True:
        page = await call("export_page", {"project_id": project, "filters": filters, "after_image": after_image,
                                          "after_item": after_item, "max_rows": PAGE})
        for rec in page:
            yield rec
        if len(page) < PAGE:
            return
        after_image, after_item = page[-1]["image_id"], page[-1]["item_id"]


async def chunked(parts: AsyncIterator[bytes], size: int = 256 * 1024) -> AsyncIterator[bytes]:
    """Joins small pieces into chunks of about `size` bytes: one write per chunk, not one per record."""
    buf: list[bytes] = []
    n = 0
    async for part in parts:
        buf.append(part)
        n += len(part)
        if n >= size:
            yield b"".join(buf)
            buf, n = [], 0
    if buf:
        yield b"".join(buf)


async def jsonl(call: Call, project: int, filters: dict, manifest: dict, _: Storage | None = None
                ) -> AsyncIterator[bytes]:
    yield msgspec.json.encode({"manifest": manifest}) + b"\n"
    async for rec in records(call, project, filters):
        yield msgspec.json.encode(rec) + b"\n"


def _csv_line(row: list) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(row)
    return out.getvalue().encode()


def _flat(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "|".join(_flat(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def csv_rows(call: Call, project: int, filters: dict, manifest: dict, _: Storage | None = None
                   ) -> AsyncIterator[bytes]:
    """One flat row per item; each descriptor of the project's schema is a column (lists joined with |)."""
    keys = [f["key"] for f in await call("descriptor_schema", {"project_id": project})]
    yield _csv_line(CSV_FIELDS + [f"descriptor_{k}" for k in keys])
    async for r in records(call, project, filters):
        c, ai = r["class"], r.get("ai") or {}
        row = [r["item_id"], r["image_id"], r["sha256"], r["storage_key"], r["width"], r["height"],
               r["source_class"], r["upload_batch"], r["rule_id"], c["code"], c["name"], c["icd10"], c["snomed_ct"],
               "/".join(c["path"] or []), r["description"], r["confidence"], len(r["regions"]), r["annotator_id"],
               r["reviewer_ids"], r["revision_count"], r["approved_at"], ai.get("model"), ai.get("top_code"),
               ai.get("top_probability"), ai.get("agreed")]
        yield _csv_line([_flat(v) for v in row] + [_flat(r["descriptors"].get(k)) for k in keys])


def _shoelace(points: list[list[float]]) -> float:
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]))) / 2


def coco_annotations(rec: dict, next_id: int) -> list[dict]:
    """The item's boxes, polygons and masks as COCO annotations of its class; a mask's segmentation is its RLE as
    stored, its area the pixel count, its bbox the set pixels' extent (points and lines: coco_marks)."""
    out = []
    for reg in rec["regions"]:
        meta = {"item_id": rec["item_id"], "annotator_id": rec["annotator_id"], "label": reg.get("label")}
        if reg["type"] == "bbox":
            x, y, w, h = reg["x"], reg["y"], reg["w"], reg["h"]
            seg, bbox, area = [[x, y, x + w, y, x + w, y + h, x, y + h]], [x, y, w, h], w * h
        elif reg["type"] == "polygon":
            pts = reg["points"]
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            seg = [[v for p in pts for v in p]]
            bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            area = _shoelace(pts)
        elif reg["type"] == "mask":
            seg = {"size": reg["rle"]["size"], "counts": reg["rle"]["counts"]}
            bbox, area = [int(v) for v in mask_util.toBbox(seg)], int(mask_util.area(seg))
        else:
            continue
        out.append({"id": next_id + len(out), "image_id": rec["image_id"], "category_id": rec["class"]["id"],
                    "bbox": bbox, "area": area, "segmentation": seg, "iscrowd": 0, "dermlabel": meta})
    return out


def coco_marks(rec: dict) -> list[dict]:
    """Points and lines have no COCO annotation form (keypoints need a per-category skeleton): they ride along on
    the image as dermlabel_marks, each as stored with its item."""
    return [{"item_id": rec["item_id"], **reg} for reg in rec["regions"] if reg["type"] in ("point", "line")]


async def coco(call: Call, project: int, filters: dict, manifest: dict, _: Storage | None = None
               ) -> AsyncIterator[bytes]:
    """COCO, written as it is read: two passes over the same snapshot (images, then annotations)."""
    cats = await call("export_categories", {"project_id": project})
    head = {"info": {**manifest, "description": f"DermLabel export of project {manifest['project']}"},
            "licenses": [], "categories": cats}
    yield msgspec.json.encode(head)[:-1] + b', "images": ['
    first, last_image, classes = True, None, []
    pending = None
    async for rec in records(call, project, filters):
        if rec["image_id"] != last_image:
            if pending:
                yield (b"" if first else b",") + msgspec.json.encode(pending)
                first = False
            last_image = rec["image_id"]
            classes = []
            pending = {"id": rec["image_id"], "file_name": rec["storage_key"], "width": rec["width"],
                       "height": rec["height"], "sha256": rec["sha256"], "dermlabel_items": [],
                       "dermlabel_classes": classes, "dermlabel_marks": []}
        pending["dermlabel_items"].append(rec["item_id"])
        pending["dermlabel_marks"] += coco_marks(rec)
        classes.append(rec["class"]["code"])
    if pending:
        yield (b"" if first else b",") + msgspec.json.encode(pending)
    yield b'], "annotations": ['
    first, next_id = True, 1
    async for rec in records(call, project, filters):
        for ann in coco_annotations(rec, next_id):
            yield (b"" if first else b",") + msgspec.json.encode(ann)
            first = False
            next_id += 1
    yield b"]}\n"


# each writer: (call, project, filters, manifest, storage) → the bytes of its format, as an async iterator
WRITERS = {"jsonl": jsonl, "csv": csv_rows, "coco": coco,
           "isic": lambda call, project, filters, manifest, _=None:
               export_masks.isic(records(call, project, filters), manifest),
           "dicom_seg": lambda call, project, filters, manifest, storage=None:
               export_masks.dicom_segs(records(call, project, filters), manifest, storage)}
# text/csv without a charset: the server adds "; charset=utf-8" to text types itself (twice, if it is named here)
MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv", "coco": "application/json",
         "isic": "application/zip", "dicom_seg": "application/zip"}
EXT = {"jsonl": "jsonl", "csv": "csv", "coco": "json", "isic": "zip", "dicom_seg": "zip"}


QUERY = ("format", "classes", "rule_ids", "image_ids", "batch", "from", "to", "gold")


def filters_from(params: dict[str, str]) -> dict:
    # a misspelt filter (class= for classes=) must not quietly export everything
    unknown = sorted(set(params) - set(QUERY))
    if unknown:
        raise ApiError(400, "22023", f"{unknown[0]} is not a parameter of an export ({', '.join(QUERY)})",
                       details={"field": unknown[0]})
    f: dict[str, Any] = {}
    if params.get("classes"):
        f["classes"] = [c.strip() for c in params["classes"].split(",") if c.strip()]
    for k in ("rule_ids", "image_ids"):
        if params.get(k):
            try:
                f[k] = [int(x) for x in params[k].split(",") if x.strip()]
            except ValueError:
                raise ApiError(400, "22023", f"{k} must be a comma-separated list of numbers") from None
    for k in ("batch", "from", "to", "gold"):
        if params.get(k):
            f[k] = params[k]
    return f


async def _start(request: Request, state: State, project_id: int, format: str, filters: dict):
    """Who is asking, and the export's manifest: checked, counted and audited before the first byte."""
    rid = request_id(request)
    caller = identify(request, state.tokens)
    try:
        manifest = msgspec.json.decode(await rpc.call(state.pool, state.catalog.get("export_manifest"), caller,
                                                      {"project_id": project_id, "filters": filters,
                                                       "format": format}, rid))
    except psycopg.Error as exc:
        raise errors.as_api_error(exc, caller.anonymous, rid) from None
    return rid, caller, manifest


@asynccontextmanager
async def _reading(state: State, caller, rid: str) -> AsyncIterator[Call]:
    """Calls by name in the export's one REPEATABLE READ snapshot."""
    async with rpc.snapshot(state.pool, caller, state.catalog.get("export_page"), rid) as call_in:
        async def call(fn: str, args: dict) -> Any:
            return await call_in(state.catalog.get(fn), args)
        yield call


@get("/projects/{project_id:int}/export")
async def export(request: Request, state: State, project_id: int, format: str = "jsonl") -> Stream:
    if format not in WRITERS:
        raise ApiError(400, "22023", "format must be jsonl, csv, coco, isic or dicom_seg",
                       details={"field": "format"})
    filters = filters_from(dict(request.query_params))
    rid, caller, manifest = await _start(request, state, project_id, format, filters)

    async def body() -> AsyncIterator[bytes]:
        async with _reading(state, caller, rid) as call:
            async for chunk in chunked(WRITERS[format](call, project_id, filters, manifest, state.storage)):
                yield chunk

    return Stream(body(), media_type=MEDIA[format], headers={
        "Content-Disposition": f'attachment; filename="project-{project_id}-{format}.{EXT[format]}"',
        "X-DermLabel-Manifest": json.dumps(manifest, separators=(",", ":")),
        "X-Request-Id": rid})


@get("/projects/{project_id:int}/images/{image_id:int}/seg")
async def image_seg(request: Request, state: State, project_id: int, image_id: int) -> Response[bytes]:
    """One image's DICOM SEG (the dicom_seg export narrowed to the image; filters apply as there)."""
    filters = {**filters_from(dict(request.query_params)), "image_ids": [image_id]}
    rid, caller, manifest = await _start(request, state, project_id, "dicom_seg", filters)
    data, note = None, "has no approved annotations to export"
    if manifest["items"]:
        async with _reading(state, caller, rid) as call:
            group = [rec async for rec in records(call, project_id, filters)]
        try:
            data, _, note = await export_masks.seg_of(group, state.storage)
        except StorageError:
            raise ApiError(503, "PT503", "image storage is unavailable; try again") from None
    if data is None:
        raise ApiError(404, "PT404", f"image {image_id}: no DICOM SEG ({note})")
    return Response(data, media_type="application/dicom", headers={
        "Content-Disposition": f'attachment; filename="{image_id}_seg.dcm"',
        "X-DermLabel-Manifest": json.dumps(manifest, separators=(",", ":")), "X-Request-Id": rid})


async def export_to_file(database_url: str, project: int, fmt: str, email: str, filters: dict, out,
                         storage: Storage | None = None) -> dict:
    """The command-line export: as the named admin (a trusted local operator, like psql), same functions, same
    audit; writes the data to `out` (a binary file) and returns the manifest."""
    from psycopg.types.json import Jsonb

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (await conn.execute('SELECT id FROM auth."user" WHERE email = %s AND active', (email,))).fetchone()
        if not row:
            raise SystemExit(f"no active user {email}")
        await conn.commit()  # what follows: a writing transaction (the audited manifest), then a read-only one
        claims = json.dumps({"sub": row[0], "role": "dl_admin", "request_id": "cli-export"})

        async def as_admin() -> None:
            await conn.execute("SELECT set_config('role', 'dl_admin', true), "
                               "set_config('request.jwt.claims', %s, true)", (claims,))

        async def call(fn: str, args: dict) -> Any:
            named = ", ".join(f"{k} => %({k})s" for k in args)
            params = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in args.items()}
            row = await (await conn.execute(f"SELECT api.{fn}({named})::text", params)).fetchone()
            return json.loads(row[0])

        async with conn.transaction():
            await as_admin()
            manifest = await call("export_manifest", {"project_id": project, "filters": filters, "format": fmt})
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        await as_admin()
        async for chunk in WRITERS[fmt](call, project, filters, manifest, storage):
            out.write(chunk)
        await conn.rollback()
    return manifest
