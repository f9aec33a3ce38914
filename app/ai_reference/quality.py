"""Image-quality check: sharpness by the variance of the Laplacian, exposure by mean brightness and clipping.
Pixels of a dermoscope's black surround (near black) are left out of the exposure figures."""
from __future__ import annotations

import numpy as np

BLUR_VARIANCE = 2.0  # Laplacian variance (8-bit luminance, working copy) below which an image is called blurry
DARK, BRIGHT, CLIPPED = 0.18, 0.92, 0.25


def quality(rgb: np.ndarray) -> dict:
    lum = (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)) * 255.0
    lap = (-4 * lum[1:-1, 1:-1] + lum[:-2, 1:-1] + lum[2:, 1:-1] + lum[1:-1, :-2] + lum[1:-1, 2:])
    field = lum > 0.05 * 255
    sharp = float(lap[field[1:-1, 1:-1]].var()) if field[1:-1, 1:-1].any() else 0.0
    mean = float(lum[field].mean() / 255.0) if field.any() else 0.0
    clipped = float((lum[field] >= 250).mean()) if field.any() else 0.0
    reasons = []
    if sharp < BLUR_VARIANCE:
        reasons.append("blurry")
    if mean < DARK:
        reasons.append("underexposed")
    if mean > BRIGHT or clipped > CLIPPED:
        reasons.append("overexposed")
    return {"laplacian_variance": round(sharp, 2), "mean_brightness": round(mean, 3),
            "clipped_fraction": round(clipped, 3), "ok": not reasons, "reasons": reasons,
            "flag_suggestion": "bad_quality" if reasons else None}
