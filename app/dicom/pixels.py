"""DICOM pixel data as something to look at: one frame's values (modality LUT applied for greyscale, RGB for
colour), the file's window, and the 8-bit rendering that window gives (PS3.3 C.11.2.1.2.1, linear)."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")


@dataclass
class Frame:
    values: np.ndarray  # rows × columns (greyscale modality values) or rows × columns × 3 (uint8 RGB)
    samples: int
    center: float
    width: float
    invert: bool  # MONOCHROME1: low values are white


def _first(value) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value[0] if hasattr(value, "__len__") and not isinstance(value, str) else value)
    except (TypeError, ValueError, IndexError):
        return None


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def read_frame(dicom_bytes: bytes, ds: Dataset, index: int) -> Frame:
    """Decode one frame of a stored file (only that frame is decompressed)."""
    raw = pixel_array(io.BytesIO(dicom_bytes), index=index)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric in MONOCHROME:
        values = apply_modality_lut(raw, ds)
        values = _compact(values)
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
        if center is None or width is None or width < 1:
            lo, hi = float(values.min()), float(values.max())
            center, width = (lo + hi) / 2, max(1.0, hi - lo + 1)
        return Frame(values, 1, center, width, photometric == "MONOCHROME1")
    rgb = apply_color_lut(raw, ds) if photometric == "PALETTE COLOR" else raw
    if rgb.ndim == 2:  # a colour photometric with one sample: treat as grey
        return Frame(_compact(rgb), 1, float(rgb.mean()), float(max(1, int(rgb.max()) - int(rgb.min()) + 1)), False)
    if rgb.dtype != np.uint8:
        bits = int(ds.get("BitsStored") or 16) if photometric != "PALETTE COLOR" else 16
        rgb = (rgb.astype(np.uint32) >> max(0, bits - 8)).astype(np.uint8)
    # centre 128, width 256: the linear window is then exactly the identity on 0..255
    return Frame(np.ascontiguousarray(rgb[..., :3]), 3, 128.0, 256.0, False)


def _compact(values: np.ndarray) -> np.ndarray:
    """The smallest exact type for the values: int16/uint16 when they are whole numbers in range, else float32."""
    if values.size == 0:
        return values.astype(np.float32)
    as_float = values.astype(np.float64, copy=False)
    lo, hi = float(as_float.min()), float(as_float.max())
    if np.all(np.mod(as_float, 1) == 0):
        if -32768 <= lo and hi <= 32767:
            return values.astype(np.int16)
        if 0 <= lo and hi <= 65535:
            return values.astype(np.uint16)
    return values.astype(np.float32)


def window8(frame: Frame, center: float | None = None, width: float | None = None) -> np.ndarray:
    """The frame through a linear window as 8-bit grey or RGB (the same formula the viewer runs in JavaScript)."""
    c = frame.center if center is None else center
    w = max(1.0, frame.width if width is None else width)
    if frame.values.dtype == np.uint8 and (c, w) == (128.0, 256.0) and not frame.invert:
        return frame.values  # the identity: no arithmetic on 36 million values of a large photograph
    x = frame.values.astype(np.float32)
    y = np.clip(((x - (c - 0.5)) / (w - 1 if w > 1 else 1) + 0.5), 0.0, 1.0) * 255.0
    out = np.rint(y).astype(np.uint8)
    return 255 - out if frame.invert else out
