"""A DICOM upload made safe to keep: read, de-identified (dicom_deid), frame 1 rendered with the file's window as
the PNG everything else uses (annotation, AI, export); the de-identified file is kept beside it for the viewer's
window/level and frames. The uploaded bytes themselves are never stored."""
from __future__ import annotations

import hashlib
import io
import warnings

import numpy as np
import pydicom
from PIL import Image

from .dicom_deid import Key, deidentify
from .dicom_pixels import frame_count, read_frame, window8
from .imaging import MAX_PIXELS, Clean, Rejected

BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ"}
VL_PHOTOGRAPHIC = "1.2.840.10008.5.1.4.1.1.77.1.4"


def is_dicom(raw: bytes) -> bool:
    """Part 10 files carry 'DICM' after a 128-byte preamble; that is what we accept."""
    return len(raw) > 132 and raw[128:132] == b"DICM"


def header_json(ds: pydicom.Dataset) -> dict:
    """The de-identified header as keyword → value (text and numbers only; binary and sequences left out)."""
    out: dict = {}
    for elem in ds:
        if elem.VR in BINARY_VRS or elem.tag.is_private or not elem.keyword or elem.value in (None, ""):
            continue
        value = elem.value
        if elem.VM > 1:
            value = [v if isinstance(v, (int, float)) else str(v) for v in value]
        elif not isinstance(value, (int, float)):
            value = str(value)
        if len(str(value)) <= 256:
            out[elem.keyword] = value
    return out


def clean_dicom(raw: bytes, max_bytes: int, key: Key) -> Clean:
    if len(raw) > max_bytes:
        raise Rejected(413, f"larger than the {max_bytes // (1024 * 1024)} MB limit")
    digest = hashlib.sha256(raw).hexdigest()
    # pydicom parses elements lazily: a damaged one surfaces when de-identification reads it, not at dcmread.
    # Whatever pydicom raises on the way is a file we cannot read, never a server error.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about every odd value; de-identification decides
            ds = pydicom.dcmread(io.BytesIO(raw))
            if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
                raise Rejected(415, "this DICOM file has no image (a report or a waveform?): nothing to annotate")
            rows, columns, frames = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0), frame_count(ds)
            if rows * columns == 0:
                raise Rejected(415, "this DICOM file's image has no rows or columns")
            if rows * columns * frames > MAX_PIXELS:
                raise Rejected(413, f"{rows}×{columns}×{frames} pixels: more than {MAX_PIXELS // 1_000_000} "
                                    "megapixels, refused")
            sop_class = str(ds.get("SOPClassUID", ""))
            report = deidentify(ds, key)
    except Rejected:
        raise
    except Exception as exc:  # pydicom raises many types for broken files, as Pillow does
        raise Rejected(415, f"not a readable DICOM file ({type(exc).__name__})") from None
    out = io.BytesIO()
    try:
        ds.save_as(out, enforce_file_format=True)
        stored = out.getvalue()
        frame = read_frame(stored, ds, 0)
    except Exception as exc:  # codecs pydicom lacks (JPEG-LS, JPEG 2000 without a plugin), broken pixel data
        raise Rejected(415, f"DICOM pixel data could not be decoded ({type(exc).__name__})") from None
    pixels = window8(frame)
    img = Image.fromarray(pixels, "L" if frame.samples == 1 else "RGB")
    png = io.BytesIO()
    img.save(png, "PNG", compress_level=1)  # lossless either way; level 6 took 4 s on a 12-megapixel photograph
    thumb = img.convert("RGB")
    thumb.thumbnail((320, 320))
    tbuf = io.BytesIO()
    thumb.save(tbuf, "JPEG", quality=85)
    removed = [f"DICOM:{a['keyword'] or a['tag']} ({a['action']})" for a in report.actions]
    if report.private_removed:
        removed.append(f"DICOM:private attributes ({report.private_removed} removed)")
    meta = {
        "frames": frames, "rows": rows, "columns": columns, "samples": frame.samples,
        "window_center": frame.center, "window_width": frame.width, "invert": frame.invert,
        "dtype": str(frame.values.dtype), "modality": str(ds.get("Modality", "")),
        "photographic": sop_class == VL_PHOTOGRAPHIC, "patient_pseudonym": report.patient_pseudonym,
        "deidentification": ds.DeidentificationMethod, "header": header_json(ds),
    }
    extra = {"dicom": meta}
    if (mm := _column_spacing(ds)) is not None:
        extra["pixels_per_mm"] = round(1 / mm, 6)  # the ruler measures in mm
    return Clean(png.getvalue(), tbuf.getvalue(), digest, "image/png", "png", int(pixels.shape[1]),
                 int(pixels.shape[0]), removed, dicom=stored, metadata=extra)


def _column_spacing(ds: pydicom.Dataset) -> float | None:
    """Pixel Spacing's column spacing in mm, when the file states a usable one (a damaged value is no scale)."""
    try:
        spacing = ds.get("PixelSpacing")
        mm = float(spacing[1]) if spacing and len(spacing) == 2 else 0.0
    except (TypeError, ValueError):
        return None
    return mm if mm > 0 else None


def frame_payload(stored: bytes, index: int) -> tuple[bytes, dict]:
    """One frame's values for the viewer's window/level: raw little-endian bytes and what they are."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(stored), stop_before_pixels=True)
        if not 0 <= index < frame_count(ds):
            raise IndexError(index)
        frame = read_frame(stored, ds, index)
    values = frame.values.astype(frame.values.dtype.newbyteorder("<"), copy=False)
    return np.ascontiguousarray(values).tobytes(), {
        "X-Dtype": str(frame.values.dtype), "X-Rows": str(values.shape[0]), "X-Columns": str(values.shape[1]),
        "X-Samples": str(frame.samples), "X-Frames": str(frame_count(ds))}
