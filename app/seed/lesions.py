"""Procedural, dermoscopy-like demo images: a pigmented lesion of varied size, colours, border irregularity and
asymmetry on a skin tone from Fitzpatrick I to VI. Synthetic and deterministic per seed; not clinical data."""
from __future__ import annotations

import math
import random

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from ..images.imaging import encode

SKIN = {"I": (246, 222, 206), "II": (232, 196, 170), "III": (208, 164, 130), "IV": (170, 120, 86),
        "V": (122, 82, 58), "VI": (78, 52, 38)}
PIGMENT = {"light_brown": (166, 112, 72), "dark_brown": (92, 56, 34), "black": (36, 26, 24),
           "blue_grey": (92, 102, 122), "red": (170, 62, 58), "white": (226, 216, 210)}


def _blob(draw: ImageDraw.ImageDraw, cx: float, cy: float, radius: float, irregular: float, stretch: float,
          rnd: random.Random, fill: int) -> None:
    """A closed outline r(θ) with a few harmonics: irregular → a ragged border; stretch → asymmetry."""
    harmonics = [(k, rnd.uniform(0, irregular) / k ** 0.6, rnd.uniform(0, 2 * math.pi)) for k in range(2, 9)]
    points = []
    for i in range(180):
        t = 2 * math.pi * i / 180
        r = radius * (1 + sum(a * math.sin(k * t + ph) for k, a, ph in harmonics))
        r *= 1 + stretch * max(0.0, math.cos(t - 0.7))  # one side bulges: asymmetric
        points.append((cx + r * math.cos(t), cy + r * math.sin(t)))
    draw.polygon(points, fill=fill)


def lesion(seed: int, size: tuple[int, int] = (1024, 768), dermoscopy: bool = True) -> tuple[bytes, dict]:
    rnd = random.Random(seed)
    fitz = rnd.choice(list(SKIN))
    w, h = size
    base = Image.new("RGB", size, SKIN[fitz])
    # skin texture: faint noise, blurred
    noise = Image.effect_noise(size, 18).convert("RGB").filter(ImageFilter.GaussianBlur(2))
    base = Image.blend(base, ImageChops.multiply(base, noise.point(lambda v: 200 + v // 5)), 0.5)
    colours = rnd.sample(list(PIGMENT), k=rnd.randint(1, 4))
    if fitz in ("III", "IV", "V", "VI") or colours[0] in ("white", "red"):
        # the body of the lesion must stand out from the skin around it
        colours[0] = rnd.choice(["dark_brown", "black"]) if fitz in ("IV", "V", "VI") else "dark_brown"
        colours = list(dict.fromkeys(colours))
    radius = rnd.uniform(0.12, 0.3) * min(w, h)
    irregular = rnd.choice([0.02, 0.05, 0.12, 0.2])
    stretch = rnd.choice([0.0, 0.1, 0.35])
    cx, cy = w / 2 + rnd.uniform(-0.08, 0.08) * w, h / 2 + rnd.uniform(-0.08, 0.08) * h
    for i, name in enumerate(colours):  # darker or stranger colours as smaller, off-centre islands
        mask = Image.new("L", size, 0)
        scale = 1.0 if i == 0 else rnd.uniform(0.25, 0.6)
        _blob(ImageDraw.Draw(mask), cx + rnd.uniform(-0.3, 0.3) * radius * (i > 0),
              cy + rnd.uniform(-0.3, 0.3) * radius * (i > 0), radius * scale, irregular, stretch, rnd, 255)
        mask = mask.filter(ImageFilter.GaussianBlur(radius * (0.04 if irregular > 0.1 else 0.1)))
        layer = Image.new("RGB", size, PIGMENT[name])
        base = Image.composite(layer, base, mask.point(lambda v: int(v * rnd.uniform(0.75, 0.95))))
    # fine grain (sensor noise, skin micro-texture): real photographs are never perfectly smooth, and the
    # reference service's sharpness check expects some
    grain = Image.effect_noise(size, 40).convert("RGB").point(lambda v: 215 + v // 6)
    base = Image.blend(base, ImageChops.multiply(base, grain), 0.6)
    if dermoscopy:  # the round field of a contact dermoscope
        field = Image.new("L", size, 0)
        ImageDraw.Draw(field).ellipse((w / 2 - h * 0.48, h * 0.02, w / 2 + h * 0.48, h * 0.98), fill=255)
        base = Image.composite(base, Image.new("RGB", size, (8, 8, 8)), field.filter(ImageFilter.GaussianBlur(6)))
    png = encode(base, "PNG", optimize=False)
    diameter_mm = round(2 * radius / min(w, h) * 15, 1)  # as if the field of view were 15 mm
    return png, {"fitzpatrick": fitz, "colours": colours, "irregularity": irregular,
                            "asymmetry": stretch, "synthetic_diameter_mm": diameter_mm}
