"""Lesion segmentation for the reference service: Otsu's threshold on the blue channel (where pigment contrasts most
with skin), then the largest connected dark region that does not touch the image edge (the black surround of a
contact dermoscope and dark corners do). numpy and Pillow only."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter, ImageOps

WORK_SIDE = 512  # segmentation runs on a copy whose longer side is at most this many pixels


class NotAnImage(ValueError):
    pass


def load(data: bytes) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as exc:  # Pillow raises many kinds; all mean "not an image we can read"
        raise NotAnImage(f"not a readable image: {exc}") from exc
    return ImageOps.exif_transpose(img).convert("RGB")


def working_copy(img: Image.Image) -> tuple[np.ndarray, float]:
    """The image as floats in [0, 1], at most WORK_SIDE on its longer side, and the scale from original to copy."""
    scale = min(1.0, WORK_SIDE / max(img.size))
    if scale < 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0, scale


def otsu(values: np.ndarray, bins: int = 256) -> float:
    """The threshold that maximises the between-class variance of the values (in [0, 1])."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mean0 = np.divide(m0, w0, out=np.zeros_like(m0), where=w0 > 0)
    mean1 = np.divide(m0[-1] - m0, w1, out=np.zeros_like(m0), where=w1 > 0)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def components(mask: np.ndarray) -> tuple[list[int], list[bool], np.ndarray]:
    """8-connected components of a boolean mask by run-length union-find (fast in Python: work is per run, not
    per pixel). Returns each component's size, whether it touches the edge, and a label image (-1 outside)."""
    h, w = mask.shape
    runs: list[tuple[int, int, int]] = []  # (row, start, end exclusive)
    row_runs: list[range] = []
    for r in range(h):
        d = np.diff(np.concatenate(([0], mask[r].astype(np.int8), [0])))
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        first = len(runs)
        runs.extend((r, int(s), int(e)) for s, e in zip(starts, ends))
        row_runs.append(range(first, len(runs)))
    parent = list(range(len(runs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for r in range(1, h):
        prev, cur = row_runs[r - 1], row_runs[r]
        j = prev.start
        for i in cur:
            _, s, e = runs[i]
            while j < prev.stop and runs[j][2] < s:  # previous run ends before this one starts (diagonal allowed)
                j += 1
            k = j
            while k < prev.stop and runs[k][1] <= e:
                a, b = find(i), find(k)
                if a != b:
                    parent[a] = b
                k += 1
    roots: dict[int, int] = {}
    sizes: list[int] = []
    edge: list[bool] = []
    labels = np.full((h, w), -1, dtype=np.int32)
    for i, (r, s, e) in enumerate(runs):
        root = find(i)
        if root not in roots:
            roots[root] = len(sizes)
            sizes.append(0)
            edge.append(False)
        c = roots[root]
        sizes[c] += e - s
        edge[c] = edge[c] or r == 0 or r == h - 1 or s == 0 or e == w
        labels[r, s:e] = c
    return sizes, edge, labels


def outside_field(rgb: np.ndarray) -> np.ndarray:
    """The near-black surround of a contact dermoscope (or dark vignetting): near-black regions touching the
    edge, widened a little to swallow the blurred rim of the field."""
    lum = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    sizes, edge, labels = components(lum < 0.08)
    out = np.zeros(lum.shape, dtype=bool)
    for i, touches in enumerate(edge):
        if touches:
            out |= labels == i
    if out.any():
        out = np.asarray(Image.fromarray(out.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(11))) > 127
    return out


def lesion_mask(rgb: np.ndarray) -> np.ndarray:
    """The lesion as a boolean mask of the working copy (empty when nothing stands out)."""
    outside = outside_field(rgb)
    blue = Image.fromarray((rgb[:, :, 2] * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))
    channel = np.asarray(blue, dtype=np.float32) / 255.0
    inside = channel[~outside] if (~outside).any() else channel.ravel()
    dark = (channel < otsu(inside)) & ~outside
    # a light opening: drop specks and hair-thin bridges before looking for components
    img = Image.fromarray(dark.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3))
    dark = np.asarray(img) > 127
    sizes, edge, labels = components(dark)
    if not sizes:
        return np.zeros_like(dark)
    near_rim = np.asarray(Image.fromarray(outside.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 127
    rim_labels = set(np.unique(labels[near_rim & (labels >= 0)]).tolist())
    inner = [i for i in range(len(sizes)) if not edge[i] and i not in rim_labels]
    pick = max(inner or range(len(sizes)), key=lambda i: sizes[i])
    mask = labels == pick
    # fill holes: background regions not connected to the edge belong to the lesion
    hsizes, hedge, hlabels = components(~mask)
    for i, touches in enumerate(hedge):
        if not touches:
            mask |= hlabels == i
    return mask
