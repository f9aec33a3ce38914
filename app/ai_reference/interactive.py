"""Click-to-segment for the reference service: OpenCV's GrabCut on a working copy of the image, the clicks as
definite lesion / not-lesion seeds, the box (or a region derived from the clicks) as the rectangle.

The "embedding" is what /v1/segment/prepare hands out and /v1/segment takes back: the working copy as a JPEG plus
the image's full size, so a click does not decode the full image again. The bytes path builds the same embedding
in memory and reads it back, so both paths segment exactly the same pixels."""
from __future__ import annotations

import base64
import binascii
import io
import json
import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

MODEL, VERSION = "reference-grabcut", "1.0"
WORK_SIDE = 512          # the embedding's working copy: at most this many pixels on its longer side
GRABCUT_PIXELS = 32_000  # GrabCut runs on the region of interest, shrunk to at most this many pixels
ITERATIONS = 3
MAX_POINTS = 50
_PREFIX = "dlseg1"


class Invalid(ValueError):
    """A request the service cannot segment; the message names the field."""


@dataclass(frozen=True)
class Prepared:
    rgb: np.ndarray  # uint8 working copy, h × w × 3
    width: int       # the image's full size
    height: int

    @property
    def sx(self) -> float:
        return self.rgb.shape[1] / self.width

    @property
    def sy(self) -> float:
        return self.rgb.shape[0] / self.height


# -- the embedding -------------------------------------------------------------------------------------------------

def prepare(img: Image.Image) -> str:
    """The embedding of an RGB image: `dlseg1.<base64 JSON header>.<base64 JPEG of the working copy>`."""
    scale = min(1.0, WORK_SIDE / max(img.size))
    work = img if scale >= 1.0 else img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                                               Image.BILINEAR)
    # rebuilt from its pixels: Pillow would carry a comment, EXIF or ICC block of the source into the JPEG
    work = Image.frombytes("RGB", work.size, work.convert("RGB").tobytes())
    out = io.BytesIO()
    work.save(out, "JPEG", quality=92)
    header = json.dumps({"v": VERSION, "w": img.width, "h": img.height}, separators=(",", ":")).encode()
    return ".".join((_PREFIX, base64.urlsafe_b64encode(header).decode(), base64.b64encode(out.getvalue()).decode()))


def load_embedding(text: str) -> Prepared:
    """The working copy back from an embedding (decoding the JPEG takes about a millisecond: no cache needed)."""
    return _decode(text)


def _decode(text: str) -> Prepared:
    parts = text.split(".")
    if len(parts) != 3 or parts[0] != _PREFIX:
        raise Invalid("embedding: not an embedding of this service")
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[1]))
        data = base64.b64decode(parts[2], validate=True)
    except (ValueError, binascii.Error):
        raise Invalid("embedding: not an embedding of this service") from None
    if not isinstance(header, dict) or header.get("v") != VERSION:
        raise Invalid(f"embedding: made by another version of the model (this is {MODEL} {VERSION})")
    w, h = header.get("w"), header.get("h")
    if not (isinstance(w, int) and isinstance(h, int) and 0 < w <= 200_000 and 0 < h <= 200_000):
        raise Invalid("embedding: bad image size")
    try:
        img = Image.open(io.BytesIO(data))
        if img.format != "JPEG" or max(img.size) > WORK_SIDE:  # checked before decoding: no bombs
            raise Invalid("embedding: bad working copy")
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Invalid:
        raise
    except Exception:  # Pillow raises many kinds for what is not an image
        raise Invalid("embedding: bad working copy") from None
    if abs(rgb.shape[1] - w * min(1.0, WORK_SIDE / max(w, h))) > 1.5:
        raise Invalid("embedding: working copy does not match the image size")
    return Prepared(rgb, w, h)


def from_image(img: Image.Image) -> Prepared:
    """The bytes path: the same working copy a prepared embedding holds."""
    return _decode(prepare(img))


# -- the prompt ----------------------------------------------------------------------------------------------------

def _number(v) -> bool:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer beyond any float
        return False


def check_prompt(body: dict, width: int, height: int) -> tuple[list[tuple[float, float, int]], tuple | None]:
    """points [[x, y, 1|0], ...] and box [x, y, w, h] | null in full-size pixels, checked against the image."""
    points = body.get("points", [])
    if points is None:
        points = []
    if not isinstance(points, list) or len(points) > MAX_POINTS:
        raise Invalid(f"points: a list of at most {MAX_POINTS} [x, y, 1|0]")
    out = []
    for i, p in enumerate(points):
        if not (isinstance(p, list) and len(p) == 3 and _number(p[0]) and _number(p[1]) and p[2] in (0, 1)
                and not isinstance(p[2], bool)):
            raise Invalid(f"points[{i}]: must be [x, y, 1|0] (1 = lesion, 0 = not lesion)")
        if not (0 <= p[0] <= width and 0 <= p[1] <= height):
            raise Invalid(f"points[{i}]: must lie inside the {width}x{height} image")
        out.append((float(p[0]), float(p[1]), int(p[2])))
    box = body.get("box")
    if box is not None:
        if not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)):
            raise Invalid("box: must be [x, y, w, h] or null")
        x, y, w, h = (float(v) for v in box)
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise Invalid(f"box: must have a size and lie inside the {width}x{height} image")
        box = (x, y, w, h)
    if box is None and not any(p[2] == 1 for p in out):
        raise Invalid("points: click the lesion at least once (or give a box)")
    return out, box


# -- segmentation --------------------------------------------------------------------------------------------------

def _disc(mask: np.ndarray, x: float, y: float, r: int, value: int) -> None:
    cv2.circle(mask, (int(round(x)), int(round(y))), r, int(value), -1)


def _outside_field(rgb: np.ndarray) -> np.ndarray:
    """Near-black regions touching the edge (the surround of a contact dermoscope), widened to swallow the blurred
    rim of the field, which would otherwise ring the skin as one dark region."""
    lum = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    n, labels, stats, _ = cv2.connectedComponentsWithStats((lum < 20).astype(np.uint8), connectivity=8)
    h, w = lum.shape
    out = np.zeros((h, w), bool)
    for i in range(1, n):
        x, y, bw, bh, _ = stats[i]
        if x == 0 or y == 0 or x + bw == w or y + bh == h:
            out |= labels == i
    if out.any():
        out = cv2.dilate(out.astype(np.uint8), np.ones((11, 11), np.uint8)) > 0
    return out


def _otsu(values: np.ndarray) -> float:
    t, _ = cv2.threshold(values.reshape(1, -1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return t


def _opened(mask: np.ndarray) -> np.ndarray:
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))


def _filled(mask: np.ndarray) -> np.ndarray:
    """The mask with its holes filled: what the border cannot reach through the background is inside."""
    padded = np.pad(mask == 0, 1, constant_values=True).astype(np.uint8)
    cv2.floodFill(padded, None, (0, 0), 2)
    return (mask > 0) | (padded[1:-1, 1:-1] == 1)


def _unlike_skin(rgb: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """How far each pixel's colour is from the skin's (CIELAB distance, smoothed, 0-255). The skin's colour is the
    median of a band along the edge of the field of view: a lesion may be darker or lighter than the skin (dark
    skin, a blue-white or red lesion), but it is rarely what the edge of the picture shows most."""
    h, w = outside.shape
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (0, 0), 2), cv2.COLOR_RGB2LAB).astype(np.float32)
    field = np.pad(~outside, 1).astype(np.uint8)  # the image's own edge counts as the field's edge too
    to_edge = cv2.distanceTransform(field, cv2.DIST_L2, 3)[1:-1, 1:-1]
    band = ~outside & (to_edge <= max(4, 0.08 * min(h, w)))
    skin = np.median(lab[band] if band.any() else lab.reshape(-1, 3), axis=0)
    return np.clip(np.linalg.norm(lab - skin, axis=2) * 2, 0, 255).astype(np.uint8)


def _dark(unlike: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """What stands out from the skin: Otsu's threshold on the distance to its colour, inside the field of view;
    holes filled, so that a click on a light island in a lesion (blue-grey, regression) finds the lesion around
    it."""
    inside = unlike[~outside] if (~outside).any() else unlike.ravel()
    return _filled(_opened((unlike > _otsu(inside)) & ~outside)).astype(np.uint8)


def _local(unlike: np.ndarray, x: float, y: float) -> np.ndarray | None:
    """The region around a click that the whole image's threshold missed (a faint lesion beside a strong one):
    Otsu's threshold in ever larger windows around the click, until the click's side of it stays inside."""
    h, w = unlike.shape
    xi, yi = min(w - 1, int(x)), min(h - 1, int(y))
    for half in (0.1, 0.18, 0.3, 0.5):
        r = max(8, round(half * max(h, w)))
        x0, y0, x1, y1 = max(0, xi - r), max(0, yi - r), min(w, xi + r + 1), min(h, yi + r + 1)
        win = unlike[y0:y1, x0:x1]
        t = _otsu(win)
        side = _opened(win > t if unlike[yi, xi] > t else win <= t)
        n, labels = cv2.connectedComponents(side, connectivity=8)
        lab = labels[yi - y0, xi - x0]
        if not lab:
            continue
        part = labels == lab
        # touching the window's edge where the image goes on: the window was too small
        if (part[0].any() and y0 > 0) or (part[-1].any() and y1 < h) or (part[:, 0].any() and x0 > 0) \
                or (part[:, -1].any() and x1 < w):
            continue
        out = np.zeros((h, w), bool)
        out[y0:y1, x0:x1] = part
        return out
    return None


def _prior(unlike: np.ndarray, outside: np.ndarray, pos: list,
           box: tuple | None) -> tuple[np.ndarray, tuple[int, int, int, int], bool]:
    """A first guess of the lesion (boolean mask), the rectangle GrabCut works in (x0, y0, x1, y1), and whether the
    guess is a region found at the clicks (rather than the box or a disc)."""
    h, w = unlike.shape
    dark = _dark(unlike, outside)
    if box is not None:
        x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
        x1, y1 = min(w, int(np.ceil(box[0] + box[2]))), min(h, int(np.ceil(box[1] + box[3])))
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
        inside = np.zeros((h, w), bool)
        inside[y0:y1, x0:x1] = True
        guess = inside & (dark > 0)
        if not 0.05 < guess.sum() / inside.sum() < 0.95:  # the box is all lesion, or none stands out: trust the box
            guess = inside
        for x, y in pos:  # a lesion click outside the box widens it
            x0, y0, x1, y1 = min(x0, int(x)), min(y0, int(y)), max(x1, int(x) + 1), max(y1, int(y) + 1)
        return guess, (x0, y0, x1, y1), False
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    guess = np.zeros((h, w), bool)
    near = max(3, round(0.03 * max(h, w)))
    for x, y in pos:
        xi, yi = min(w - 1, int(x)), min(h - 1, int(y))
        ys, xs = slice(max(0, yi - near), yi + near + 1), slice(max(0, xi - near), xi + near + 1)
        found = np.unique(labels[ys, xs])  # the component under the click, or one just beside it
        for lab in found[found > 0]:
            # a close-up lesion may fill most of the frame; nearly all of it is the skin around a lighter lesion
            if stats[lab, cv2.CC_STAT_AREA] < 0.9 * h * w:
                guess |= labels == lab
    found = bool(guess.any())
    if not found:  # nothing stands out at the clicks: what stands out just around them, else a disc
        disc = np.zeros((h, w), np.uint8)
        for x, y in pos:
            local = _local(unlike, x, y)
            if local is not None:
                guess |= local
            else:
                _disc(disc, x, y, max(4, round(0.06 * min(h, w))), 1)
        found = not disc.any()
        guess |= disc > 0
    ys, xs = np.nonzero(guess)
    px, py = [p[0] for p in pos], [p[1] for p in pos]
    x0, x1 = min(xs.min(), *px), max(xs.max() + 1, *px)
    y0, y1 = min(ys.min(), *py), max(ys.max() + 1, *py)
    mx, my = max(6, 0.25 * (x1 - x0)), max(6, 0.25 * (y1 - y0))
    return guess, (max(0, int(x0 - mx)), max(0, int(y0 - my)), min(w, int(x1 + mx)), min(h, int(y1 + my))), found


def _grabcut(rgb: np.ndarray, guess: np.ndarray, rect: tuple, pos: list, neg: list, seed_r: int,
             core: bool) -> np.ndarray:
    """GrabCut in a region of interest around the rectangle (shrunk when large); the lesion as a boolean mask.
    core: the guess's inner part is taken as lesion for certain (GrabCut then only decides its edge)."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = rect
    pad = max(4, round(0.1 * max(x1 - x0, y1 - y0)))  # a ring of definite background for the colour model
    rx0, ry0, rx1, ry1 = max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)
    init = np.full((h, w), cv2.GC_BGD, np.uint8)
    init[y0:y1, x0:x1] = cv2.GC_PR_BGD
    init[guess & (init == cv2.GC_PR_BGD)] = cv2.GC_PR_FGD
    if core and guess.any():
        depth = cv2.distanceTransform(guess.astype(np.uint8), cv2.DIST_L2, 3)
        init[(depth > max(3.0, 0.4 * float(depth.max()))) & (init == cv2.GC_PR_FGD)] = cv2.GC_FGD
    roi_img, roi_init = rgb[ry0:ry1, rx0:rx1], init[ry0:ry1, rx0:rx1]
    rw, rh = rx1 - rx0, ry1 - ry0
    f = min(1.0, (GRABCUT_PIXELS / (rw * rh)) ** 0.5)
    gw, gh = max(8, round(rw * f)), max(8, round(rh * f))
    small = cv2.resize(roi_img, (gw, gh), interpolation=cv2.INTER_AREA) if f < 1 else roi_img.copy()
    m = cv2.resize(roi_init, (gw, gh), interpolation=cv2.INTER_NEAREST) if f < 1 else roi_init.copy()
    fx, fy = gw / rw, gh / rh
    r = max(2, round(seed_r * f))
    for x, y in pos:
        _disc(m, (x - rx0) * fx, (y - ry0) * fy, r, cv2.GC_FGD)
    for x, y in neg:
        _disc(m, (x - rx0) * fx, (y - ry0) * fy, r, cv2.GC_BGD)
    fg_like = np.isin(m, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if fg_like.all() or not fg_like.any():  # GrabCut needs samples of both; the box is all we know then
        return guess.copy()
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models by k-means: the same click gives the same mask, every time
    cv2.grabCut(small, m, None, bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_MASK)
    fg = np.isin(m, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
    if f < 1:  # back to the working copy's grid, edges interpolated rather than blocky
        fg = cv2.resize(fg, (rw, rh), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((h, w), bool)
    out[ry0:ry1, rx0:rx1] = fg >= 0.5
    return out & (init != cv2.GC_BGD)  # shrinking and growing back must not spill over the rectangle


def _split(fg: np.ndarray, pos: list, neg: list, seed_r: int) -> np.ndarray:
    """Removes what a not-lesion click points at when it lies in (or against) the mask: the mask is eroded until
    the lesion clicks and the not-lesion clicks fall into different parts (a thin neck between two blobs goes
    first), then both parts grow back inside the mask; the not-lesion part is dropped."""
    h, w = fg.shape
    region = fg.astype(np.uint8)
    for x, y in neg:
        _disc(region, x, y, seed_r + 1, 1)
    if not region.any():
        return fg
    dt = cv2.distanceTransform(region, cv2.DIST_L2, 5)

    def at(labels, x, y):
        return labels[min(h - 1, int(y)), min(w - 1, int(x))]

    a = b = None
    top = float(dt.max())
    levels = list(range(1, 12)) + [int(11 * 1.15 ** i) for i in range(1, 40) if 11 * 1.15 ** i < top]
    for k in (k for k in levels if k < top):  # fine steps first (necks are thin), then coarser
        core = (dt > k).astype(np.uint8)
        _, labels = cv2.connectedComponents(core, connectivity=8)
        la = {at(labels, x, y) for x, y in pos} - {0}
        lb = {at(labels, x, y) for x, y in neg} - {0}
        if not la or not lb:
            break  # a click's surroundings eroded away before the parts came apart
        if not la & lb:
            a, b = np.isin(labels, list(la)), np.isin(labels, list(lb))
            break
    if a is None:  # no neck between them: the clicks themselves are the seeds
        a, b = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
        for x, y in pos:
            _disc(a, x, y, seed_r, 1)
        for x, y in neg:
            _disc(b, x, y, seed_r, 1)
        a, b = a > 0, b > 0
    # both parts grow back one pixel a step inside the region, each pixel to the part that reaches it first (ties
    # to the lesion); in the region's bounding box, as 0/255 images (cv2's own operations are the fast ones here)
    bx, by, bw, bh = cv2.boundingRect(region)
    box = (slice(by, by + bh), slice(bx, bx + bw))
    reg = region[box] * np.uint8(255)
    a8 = (a[box] & (reg > 0)).astype(np.uint8) * np.uint8(255)
    b8 = cv2.bitwise_and((b[box] & (reg > 0)).astype(np.uint8) * np.uint8(255), cv2.bitwise_not(a8))
    kernel = np.ones((3, 3), np.uint8)
    while True:
        free = cv2.bitwise_and(reg, cv2.bitwise_not(cv2.bitwise_or(a8, b8)))
        grow_a = cv2.bitwise_and(cv2.dilate(a8, kernel), free)
        grow_b = cv2.bitwise_and(cv2.bitwise_and(cv2.dilate(b8, kernel), free), cv2.bitwise_not(grow_a))
        if not cv2.countNonZero(grow_a) and not cv2.countNonZero(grow_b):
            break
        a8 = cv2.bitwise_or(a8, grow_a)
        b8 = cv2.bitwise_or(b8, grow_b)
    out = fg.copy()
    out[box] &= b8 == 0
    return out


def _keep(fg: np.ndarray, pos: list, neg: list) -> np.ndarray:
    """The connected parts the clicks point at (with a box only: the large ones), holes filled."""
    h, w = fg.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    if n <= 1:
        return fg
    if pos:
        keep = {labels[min(h - 1, int(y)), min(w - 1, int(x))] for x, y in pos} - {0}
    else:
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = {i + 1 for i, a in enumerate(areas) if a >= 0.2 * areas.max()}
    out = np.isin(labels, list(keep))
    holes = _filled(out) & ~out  # lesion, unless a not-lesion click says otherwise
    if holes.any() and neg:
        _, hl = cv2.connectedComponents(holes.astype(np.uint8), connectivity=4)
        for x, y in neg:
            lab = hl[min(h - 1, int(y)), min(w - 1, int(x))]
            if lab:
                holes &= hl != lab
    return out | holes


def _score(unlike: np.ndarray, mask: np.ndarray) -> float:
    """How much more the mask stands out from the skin than a ring just outside it does, as 0..1: a rough
    confidence (a clear edge scores high, a mask that ends in the middle of the lesion or of the skin low)."""
    if not mask.any() or mask.all():
        return 0.0
    r = max(3, round(0.02 * max(mask.shape)))
    ring = (cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
            > 0) & ~mask
    if not ring.any():
        return 0.0
    return round(float(np.clip((np.median(unlike[mask]) - np.median(unlike[ring])) / 60.0, 0.0, 1.0)), 3)


def segment(p: Prepared, points: list[tuple[float, float, int]], box: tuple | None) -> tuple[np.ndarray, float]:
    """The lesion the prompt points at, as a boolean mask of the working copy, and a score in 0..1."""
    rgb = p.rgb
    h, w = rgb.shape[:2]
    sx, sy = p.sx, p.sy
    pos = [(min(w - 1, x * sx), min(h - 1, y * sy)) for x, y, lab in points if lab == 1]
    neg = [(min(w - 1, x * sx), min(h - 1, y * sy)) for x, y, lab in points if lab == 0]
    wbox = None if box is None else (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    seed_r = max(2, round(0.008 * max(h, w)))
    outside = _outside_field(rgb)
    unlike = _unlike_skin(rgb, outside)
    guess, rect, found = _prior(unlike, outside, pos, wbox)
    fg = _grabcut(rgb, guess, rect, pos, neg, seed_r, core=found)
    fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    for x, y in pos:  # a lesion click is always lesion
        fg[int(y), int(x)] = True
    if neg:
        fg = _split(fg, pos, neg, seed_r)
    fg = _keep(fg, pos, neg)
    if not fg.any():  # never answer an empty mask: the clicked spot, or the box
        fallback = np.zeros((h, w), np.uint8)
        for x, y in pos:
            _disc(fallback, x, y, seed_r, 1)
        if wbox is not None and not pos:
            fallback[rect[1]:rect[3], rect[0]:rect[2]] = 1
        return fallback > 0, 0.0
    return fg, _score(unlike, fg)


# -- masks at full size --------------------------------------------------------------------------------------------

def full_size(mask: np.ndarray, width: int, height: int, smooth: bool) -> np.ndarray:
    """A working-copy mask at the image's full size: nearest neighbour, or interpolated edges (smooth)."""
    if mask.shape == (height, width):
        return mask.astype(np.uint8)
    if smooth:
        return (cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
                >= 0.5).astype(np.uint8)
    return cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)


def answer_mask(p: Prepared, mask: np.ndarray, box: tuple | None) -> np.ndarray:
    """The mask of one click at the image's full size, edges interpolated; nothing outside the box when there is
    one."""
    full = full_size(mask, p.width, p.height, smooth=True)
    if box is not None:
        x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
        x1, y1 = int(np.ceil(box[0] + box[2])), int(np.ceil(box[1] + box[3]))
        outside = np.ones_like(full, dtype=bool)
        outside[y0:y1, x0:x1] = False
        full[outside] = 0
    return full


def rle(mask: np.ndarray) -> dict:
    """COCO RLE of a full-size mask: {"size": [h, w], "counts": "<compressed string>"}."""
    enc = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(enc["size"][0]), int(enc["size"][1])], "counts": enc["counts"].decode()}
