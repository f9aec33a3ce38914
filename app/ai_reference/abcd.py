"""The ABCD rule of dermoscopy (Stolz et al. 1994) as a transparent pre-classifier, computed on a lesion mask.

  A  asymmetry  0-2  axes (of the two principal axes) about which the lesion's mirror image differs by > 15 %
  B  border     0-8  of the eight octants around the centroid, those whose outline is ragged or whose pigment
                     ends in an abrupt cut-off (edge narrower than 12 % of the lesion radius)
  C  colours    1-6  of white, red, light brown, dark brown, blue-grey, black, those covering >= 3 % of the lesion
  D  diameter   1-5  largest diameter binned at 3, 6, 9, 12 mm (the heuristic cannot see Stolz's five
                     dermoscopic structures, so this clinical "D" stands in for them, with the same weight)
  TDS = 1.3 A + 0.1 B + 0.5 C + 0.5 D;  < 4.75 benign, 4.75-5.45 suspicious, > 5.45 likely malignant.

A heuristic for pre-sorting and for showing its reasons, not a diagnostic device.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

WEIGHTS = {"A": 1.3, "B": 0.1, "C": 0.5, "D": 0.5}
ASYMMETRY_AXIS = 0.15
ABRUPT_EDGE = 0.12
RAGGED = 0.05
COLOUR_SHARE = 0.03
# approximate sRGB prototypes of the six ABCD colours; a pixel farther than COLOUR_RADIUS from all is unassigned
COLOURS = {"white": (226, 216, 210), "red": (170, 62, 58), "light_brown": (166, 112, 72),
           "dark_brown": (92, 56, 34), "blue_grey": (92, 102, 122), "black": (36, 26, 24)}
COLOUR_RADIUS = 60.0
ASSUMED_FIELD_MM = 15.0  # without a recorded scale, the shorter image side is taken to span 15 mm (dermoscope)


def _centroid_axes(mask: np.ndarray) -> tuple[float, float, float]:
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    cov = np.cov(np.vstack([xs - cx, ys - cy]))
    evals, evecs = np.linalg.eigh(cov)
    major = evecs[:, int(np.argmax(evals))]
    return float(cx), float(cy), math.degrees(math.atan2(major[1], major[0]))


def asymmetry(mask: np.ndarray) -> dict:
    """Mirror overlap about both principal axes: |M xor mirror(M)| / |M| per axis."""
    cx, cy, angle = _centroid_axes(mask)
    ys, xs = np.nonzero(mask)
    half = int(math.ceil(np.hypot(xs - cx, ys - cy).max())) + 2
    side = 2 * half + 1
    canvas = Image.new("L", (side, side), 0)
    crop = Image.fromarray(mask.astype(np.uint8) * 255)
    canvas.paste(crop, (half - round(cx), half - round(cy)))
    # rotate so the major axis is horizontal, about the centroid (now the canvas centre)
    m = np.asarray(canvas.rotate(angle, resample=Image.NEAREST, center=(half, half))) > 127
    area = max(1, int(m.sum()))
    ratios = [float(np.logical_xor(m, np.flipud(m)).sum() / area), float(np.logical_xor(m, np.fliplr(m)).sum() / area)]
    return {"score": sum(r > ASYMMETRY_AXIS for r in ratios), "axis_ratios": [round(r, 3) for r in ratios],
            "major_axis_degrees": round(angle, 1)}


def _boundary(mask: np.ndarray) -> np.ndarray:
    eroded = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(3))) > 127
    return mask & ~eroded


def border(mask: np.ndarray, rgb: np.ndarray) -> dict:
    """Per octant: ragged outline (radius deviating from its smoothed course) or abrupt pigment cut-off."""
    cx, cy, _ = _centroid_axes(mask)
    by, bx = np.nonzero(_boundary(mask))
    theta = np.arctan2(by - cy, bx - cx)
    radius = np.hypot(bx - cx, by - cy)
    mean_r = max(1.0, float(np.sqrt(mask.sum() / math.pi)))
    # radius by angle in 2-degree bins (outermost point), smoothed over +-20 degrees
    bins = ((theta + math.pi) / (2 * math.pi) * 180).astype(int) % 180
    r_bin = np.zeros(180)
    np.maximum.at(r_bin, bins, radius)
    filled = r_bin > 0
    if filled.any():
        r_bin[~filled] = np.interp(np.flatnonzero(~filled), np.flatnonzero(filled), r_bin[filled], period=180)
    kernel = np.ones(21) / 21
    smooth = np.convolve(np.concatenate([r_bin[-10:], r_bin, r_bin[:10]]), kernel, mode="valid")
    rough = np.abs(r_bin - smooth) / mean_r
    # edge sharpness: luminance gradient on the boundary relative to the lesion/skin contrast -> edge width
    lum = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    gy, gx = np.gradient(lum)
    grad = np.hypot(gx, gy)
    ring = (np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(9))) > 127) & ~mask
    contrast = abs(float(lum[ring].mean() - lum[mask].mean())) if ring.any() else 0.0
    octants = []
    oct_of_pixel = ((theta + math.pi) / (2 * math.pi) * 8).astype(int) % 8
    for o in range(8):
        sel = oct_of_pixel == o
        r_sel = rough[o * 180 // 8:(o + 1) * 180 // 8]
        ragged = float(r_sel.mean()) if len(r_sel) else 0.0
        g = float(grad[by[sel], bx[sel]].mean()) if sel.any() else 0.0
        width = contrast / g if g > 1e-6 else float("inf")
        abrupt = width < ABRUPT_EDGE * mean_r
        octants.append({"ragged": round(ragged, 3), "edge_width_px": round(width, 1) if math.isfinite(width) else None,
                        "irregular": bool(ragged > RAGGED or abrupt)})
    compactness = float(len(bx)) ** 2 / (4 * math.pi * mask.sum()) if mask.sum() else 0.0
    return {"score": sum(o["irregular"] for o in octants), "octants": octants,
            "compactness": round(compactness, 3)}


def colours(mask: np.ndarray, rgb: np.ndarray) -> dict:
    pixels = rgb[mask] * 255.0
    protos = np.array(list(COLOURS.values()), dtype=np.float32)
    dist = np.linalg.norm(pixels[:, None, :] - protos[None, :, :], axis=2)
    nearest = np.argmin(dist, axis=1)
    assigned = dist[np.arange(len(pixels)), nearest] <= COLOUR_RADIUS
    shares = {name: float(((nearest == i) & assigned).sum() / max(1, len(pixels))) for i, name in enumerate(COLOURS)}
    present = [n for n, s in shares.items() if s >= COLOUR_SHARE]
    return {"score": max(1, len(present)), "present": present, "shares": {n: round(s, 3) for n, s in shares.items()}}


def diameter(mask: np.ndarray, scale: float, shorter_side_px: int, pixels_per_mm: float | None) -> dict:
    """Largest distance between two boundary points (in original pixels and mm)."""
    by, bx = np.nonzero(_boundary(mask))
    pts = np.stack([bx, by], axis=1).astype(np.float32)
    if len(pts) > 1500:
        pts = pts[np.linspace(0, len(pts) - 1, 1500).astype(int)]
    d = float(np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)).max()) if len(pts) > 1 else 0.0
    px = d / scale
    assumed = pixels_per_mm is None
    ppm = pixels_per_mm or shorter_side_px / ASSUMED_FIELD_MM
    mm = px / ppm
    score = 1 + sum(mm >= t for t in (3, 6, 9, 12))
    return {"score": score, "pixels": round(px, 1), "mm": round(mm, 1), "assumed_scale": assumed}


def probabilities(tds: float, colour: dict) -> dict[str, float]:
    """TDS to class probabilities: a logistic around the 5.45 cut-off gives the malignant mass (melanoma, with a
    share to basal cell carcinoma when blue-grey is present); the benign mass goes to nevus, with shares to
    vascular lesions (red) and benign keratosis."""
    p_mal = 1.0 / (1.0 + math.exp(-(tds - 5.45) / 0.35))
    shares = colour["shares"]
    bcc = p_mal * min(0.5, 2 * shares["blue_grey"])
    benign = 1.0 - p_mal
    vasc = benign * min(0.8, 2 * shares["red"])
    bkl = (benign - vasc) * 0.2
    probs = {"MEL": p_mal - bcc, "BCC": bcc, "NV": benign - vasc - bkl, "BKL": bkl, "VASC": vasc}
    return {k: round(v, 4) for k, v in probs.items()}


def score(mask: np.ndarray, rgb: np.ndarray, scale: float, shorter_side_px: int,
          pixels_per_mm: float | None) -> dict:
    a, b, c = asymmetry(mask), border(mask, rgb), colours(mask, rgb)
    d = diameter(mask, scale, shorter_side_px, pixels_per_mm)
    tds = WEIGHTS["A"] * a["score"] + WEIGHTS["B"] * b["score"] + WEIGHTS["C"] * c["score"] + WEIGHTS["D"] * d["score"]
    band = "benign" if tds < 4.75 else "suspicious" if tds <= 5.45 else "malignant"
    return {"features": {"asymmetry": a, "border": b, "colours": c, "diameter": d, "tds": round(tds, 2),
                         "tds_band": band, "weights": WEIGHTS},
            "probabilities": probabilities(tds, c)}
