"""Crop and standardise: a square around the lesion with a margin, resized to a fixed size, colours normalised by
the shades-of-grey method (Minkowski p = 6), the usual colour constancy step for dermoscopy models."""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..images.imaging import encode

SIZE = 512
MARGIN = 0.15


def box(mask: np.ndarray, scale: float, width: int, height: int) -> dict:
    """The lesion's bounding box in original pixels, widened by MARGIN on each side, kept inside the image."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return {"x": 0, "y": 0, "width": width, "height": height}
    x0, x1 = xs.min() / scale, (xs.max() + 1) / scale
    y0, y1 = ys.min() / scale, (ys.max() + 1) / scale
    mx, my = (x1 - x0) * MARGIN, (y1 - y0) * MARGIN
    x0, y0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
    x1, y1 = min(width, int(np.ceil(x1 + mx))), min(height, int(np.ceil(y1 + my)))
    return {"x": x0, "y": y0, "width": max(1, x1 - x0), "height": max(1, y1 - y0)}


def shades_of_grey(img: Image.Image, p: float = 6.0) -> Image.Image:
    a = np.asarray(img, dtype=np.float32)
    norm = np.power(np.mean(np.power(a, p), axis=(0, 1)), 1.0 / p)
    gain = norm.mean() / np.maximum(norm, 1e-6)
    return Image.fromarray(np.clip(a * gain, 0, 255).astype(np.uint8))


def standardise(img: Image.Image, b: dict) -> bytes:
    cx, cy = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
    side = max(b["width"], b["height"])
    square = img.crop((int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2)))
    # rebuilt from pixels like every raster DermLabel stores: nothing of the source's metadata comes along
    return encode(shades_of_grey(square.resize((SIZE, SIZE), Image.LANCZOS)), "PNG")
