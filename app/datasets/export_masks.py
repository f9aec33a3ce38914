"""Mask exports, streamed as ZIP archives: the ISIC layout (one binary PNG of the lesion per image) and DICOM
Segmentation objects for images that came in as DICOM. Records come from the same SQL export as JSON Lines and
COCO (api.export_page, one snapshot); this module only rasterises regions and writes files.

Every archive starts with manifest.json (the export's manifest) and ends with index.csv (one row per exported
image: the file written for it, or why none was)."""
from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
import zipfile
from typing import AsyncIterator

import msgspec
import numpy as np
from PIL import Image
from pycocotools import mask as mask_util

from ..dicom import seg as dicom_seg
from ..images.storage import Storage

log = logging.getLogger("dermlabel.export")
LESION = "lesion"
INDEX = ["image_id", "sha256", "file", "segments", "item_ids", "note"]


def segments(group: list[dict], only: set[str] | None = None) -> dict[str, np.ndarray]:
    """The image's labelled areas (masks, and polygons rasterised as COCO readers do), one mask per label: the
    union over all regions of that label in all the image's exported items. `lesion` first, then in order."""
    out: dict[str, np.ndarray] = {}
    for rec in group:
        h, w = rec["height"], rec["width"]
        for reg in rec["regions"]:
            label = (reg.get("label") or "").strip(" ")  # as SQL checks it (btrim)
            if not label or (only is not None and label not in only):
                continue
            if reg["type"] == "mask":
                m = mask_util.decode({"size": reg["rle"]["size"], "counts": reg["rle"]["counts"]})
            elif reg["type"] == "polygon":
                flat = [float(v) for p in reg["points"] for v in p]
                m = mask_util.decode(mask_util.merge(mask_util.frPyObjects([flat], h, w)))
            else:
                continue
            out[label] = out[label] | m if label in out else m.astype(np.uint8)
    order = sorted(out, key=lambda k: k != LESION)  # stable: the rest keep their first appearance
    return {k: out[k] for k in order}


async def by_image(recs: AsyncIterator[dict]) -> AsyncIterator[list[dict]]:
    """The records of one image at a time (export pages are ordered by image, then item)."""
    group: list[dict] = []
    async for rec in recs:
        if group and rec["image_id"] != group[0]["image_id"]:
            yield group
            group = []
        group.append(rec)
    if group:
        yield group


class ZipStream:
    """A ZIP archive written to no file: each add() returns the bytes it produced, ready to send. zipfile writes
    to an unseekable stream with data descriptors after each member; memory holds one member at a time."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._when = time.gmtime()[:6]
        self._zip = zipfile.ZipFile(self, "w", allowZip64=True)  # type: ignore[arg-type]

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def _take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out

    def add(self, name: str, data: bytes, compress: bool = True) -> bytes:
        info = zipfile.ZipInfo(name, date_time=self._when)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self._zip.writestr(info, data)
        return self._take()

    def close(self) -> bytes:
        self._zip.close()
        return self._take()


def _index_row(group: list[dict], file: str = "", labels: list[str] | tuple = (), note: str = "") -> list:
    return [group[0]["image_id"], group[0]["sha256"], file, "|".join(labels),
            "|".join(str(r["item_id"]) for r in group), note]


def _csv(rows: list[list]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([INDEX] + rows)
    return out.getvalue().encode()


def isic_png(mask: np.ndarray) -> bytes:
    """0 / 255, 8-bit greyscale, the image's size."""
    out = io.BytesIO()
    Image.fromarray(np.where(mask > 0, 255, 0).astype(np.uint8)).save(out, "PNG")  # uint8, 2-D: mode L
    return out.getvalue()


async def isic(recs: AsyncIterator[dict], manifest: dict) -> AsyncIterator[bytes]:
    """<image_id>_segmentation.png for every image with a lesion mask or outline (ISIC challenge layout)."""
    z = ZipStream()
    yield z.add("manifest.json", msgspec.json.encode(manifest))
    index = []
    async for group in by_image(recs):
        lesion = (await asyncio.to_thread(segments, group, {LESION})).get(LESION)
        if lesion is None:
            index.append(_index_row(group, note="no lesion mask or outline"))
            continue
        name = f"{group[0]['image_id']}_segmentation.png"
        data = await asyncio.to_thread(isic_png, lesion)
        yield z.add(name, data, compress=False)  # PNG is compressed already
        index.append(_index_row(group, name, [LESION]))
    yield z.add("index.csv", _csv(index))
    yield z.close()


async def seg_of(group: list[dict], storage: Storage) -> tuple[bytes | None, list[str], str]:
    """The DICOM SEG of one image's records: (file, segment labels, note when there is none)."""
    source_key = (group[0].get("dicom") or {}).get("storage_key")
    if not source_key:
        return None, [], "not uploaded as DICOM"
    areas = await asyncio.to_thread(segments, group)
    if not areas:
        return None, [], "no labelled mask or polygon"
    source = await storage.get(source_key)  # StorageError ends the export: better no archive than a partial one
    if source is None:
        return None, [], "the de-identified DICOM file is missing from storage"
    approved = max(r["approved_at"] for r in group)
    try:
        return await asyncio.to_thread(dicom_seg.build, source, areas, approved), list(areas), ""
    except Exception as exc:  # a source highdicom cannot derive from (odd geometry): said in the index, logged
        log.warning("image %s: no DICOM SEG: %s: %s", group[0]["image_id"], type(exc).__name__, exc)
        return None, [], f"no DICOM SEG could be made from this file ({type(exc).__name__})"


async def dicom_segs(recs: AsyncIterator[dict], manifest: dict, storage: Storage | None) -> AsyncIterator[bytes]:
    """<image_id>_seg.dcm for every DICOM image with labelled masks or polygons."""
    if storage is None:
        raise RuntimeError("the DICOM SEG export reads the stored DICOM files: give it the storage")
    z = ZipStream()
    yield z.add("manifest.json", msgspec.json.encode(manifest))
    index = []
    async for group in by_image(recs):
        data, labels, note = await seg_of(group, storage)
        if data is None:
            index.append(_index_row(group, note=note))
            continue
        name = f"{group[0]['image_id']}_seg.dcm"
        yield await asyncio.to_thread(z.add, name, data)  # 1-bit frames of a mask deflate well
        index.append(_index_row(group, name, labels))
    yield z.add("index.csv", _csv(index))
    yield z.close()
