"""Inline SVG charts for server-rendered pages: geometry only, no chart library, no scripts.

Every chart is an <svg role="img"> named by its <title> and described by a <desc> that says its figures in words
(what a screen reader reads; the tables under the charts hold the same numbers). Figures arrive at full precision
and are rounded here, for the eye only. Times are drawn as UTC text and carry their instant in data-datetime, which
the page's script (web/static/js/chrome.js) rewrites in the viewer's locale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from markupsafe import Markup, escape

# Okabe-Ito: told apart with any colour vision; each series also has its own legend entry and value labels
SERIES_COLOURS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7"]


def num(value: float | None, digits: int = 3) -> str:
    """A figure for the eye: counts (integers) with thousands separators, the rest to `digits` decimals."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _tick(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def _empty(message: str = "No data yet.") -> Markup:
    return Markup(f'<p class="empty">{escape(message)}</p>')


def _open(key: str, width: float, height: float, title: str, desc: str) -> list[str]:
    return [f'<svg class="chart" id="chart-{key}" viewBox="0 0 {width:.0f} {height:.0f}" width="100%" role="img" '
            f'aria-labelledby="chart-{key}-title" aria-describedby="chart-{key}-desc">',
            f'<title id="chart-{key}-title">{escape(title)}</title>',
            f'<desc id="chart-{key}-desc">{escape(desc)}</desc>']


def _legend(names: list[str], x: float, y: float) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        parts.append(f'<rect class="s{i}" x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10"/>'
                     f'<text x="{x + 14:.1f}" y="{y:.1f}" class="legend">{escape(name)}</text>')
        x += 24 + 6.5 * len(name)
    return parts


def _nice_top(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above value (an axis maximum)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


@dataclass
class Bucket:
    """One time bucket of a column chart: its label (UTC text), its start as an ISO instant for the browser to write
    in the viewer's locale (fmt: hour, day, week or month), and one value per series."""
    label: str
    values: list[float]
    at: str | None = None
    fmt: str = "day"


def columns(key: str, title: str, buckets: list[Bucket], series: list[str], desc: str,
            width: int = 640, height: int = 160) -> Markup:
    """Vertical bars per time bucket, the series side by side. Bars keep a readable width whatever the number of
    buckets: one bucket is one narrow group in the middle, never a bar across the chart."""
    if not buckets:
        return _empty("No data in this period.")
    left, right, top_pad, bottom = 44, 8, 22, 18
    plot_w, plot_h = width - left - right, height - top_pad
    top = _nice_top(max((v for b in buckets for v in b.values), default=0))
    slot = plot_w / len(buckets)
    bar_w = max(1.0, min(18.0, slot * 0.8 / len(series)))
    parts = _open(key, width, height + bottom, title, desc)
    parts += _legend(series, left, 12)
    for tick in (0, top / 2, top):
        y = top_pad + plot_h - tick / top * plot_h
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" class="axis" text-anchor="end">{escape(_tick(tick))}</text>')
    step = max(1, math.ceil(len(buckets) / 8))
    for i, b in enumerate(buckets):
        centre = left + (i + 0.5) * slot
        x = centre - bar_w * len(series) / 2
        when = (f' data-datetime="{escape(b.at)}" data-format="{escape(b.fmt)}"' if b.at else "")
        for s, (name, value) in enumerate(zip(series, b.values)):
            h = value / top * plot_h
            suffix = f": {name.lower()} {num(value)}"
            parts.append(f'<rect class="s{s}" x="{x + s * bar_w:.1f}" y="{top_pad + plot_h - h:.1f}" '
                         f'width="{bar_w:.1f}" height="{h:.1f}"><title{when} data-suffix="{escape(suffix)}">'
                         f'{escape(b.label)}{escape(suffix)}</title></rect>')
        if i % step == 0:
            parts.append(f'<text x="{centre:.1f}" y="{height + 14}" class="label" text-anchor="middle"{when}>'
                         f'{escape(b.label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hbars(key: str, title: str, points: list[tuple[str, float]], width: int = 480, row: int = 22,
          unit: str = "") -> Markup:
    """Horizontal bars, one row per (label, value): for counts by category."""
    if not points:
        return _empty()
    top = max(v for _, v in points) or 1
    left = 150
    desc = "; ".join(f"{label}: {num(value)}{unit}" for label, value in points[:40])
    parts = _open(key, width, row * len(points), title, desc)
    for i, (label, value) in enumerate(points):
        w = value / top * (width - left - 60)
        y = i * row
        parts.append(f'<text x="0" y="{y + 15}" class="label">{escape(_clip(label, 22))}</text>'
                     f'<rect class="s0" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}">'
                     f'<title>{escape(label)}: {escape(num(value))}{escape(unit)}</title></rect>'
                     f'<text x="{left + w + 6:.1f}" y="{y + 15}" class="value">{escape(num(value))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _real(value) -> float | None:
    """A coefficient as a float: JSON writes 1.0 as 1, which would otherwise read as a count."""
    return None if value is None else float(value)


@dataclass
class Estimate:
    """A coefficient with its 95 % interval, how many images lie behind it, and whether that is enough."""
    label: str
    value: float | None
    low: float | None
    high: float | None
    images: int
    sufficient: bool
    note: str = ""

    def __post_init__(self):
        self.value, self.low, self.high = _real(self.value), _real(self.low), _real(self.high)


def intervals(key: str, title: str, rows: list[Estimate], min_images: int, width: int = 680,
              row: int = 30) -> Markup:
    """A dot per estimate with whiskers for its interval on a common scale (0 to 1, further left when a figure is
    negative), dashed guides at 0.667 and 0.8 (Krippendorff's thresholds for tentative and reliable conclusions),
    and beside each the figure, the interval and its number of images. An estimate on fewer images than the project
    asks for is drawn hollow and marked, not left out."""
    if not rows:
        return _empty("No images read twice yet.")
    lows = [v for r in rows for v in (r.value, r.low) if v is not None]
    lo = max(-1.0, min(0.0, math.floor(min(lows, default=0) * 4) / 4))
    left, plot_w, top_pad = 150, 250, 22
    x = lambda v: left + (max(lo, min(1.0, v)) - lo) / (1 - lo) * plot_w  # noqa: E731
    height = top_pad + row * len(rows) + 4
    desc = "; ".join(_estimate_words(r, min_images) for r in rows)
    parts = _open(key, width, height, title, desc)
    tick = lo
    while tick <= 1.0001:
        parts.append(f'<line x1="{x(tick):.1f}" y1="{top_pad - 4}" x2="{x(tick):.1f}" y2="{height - 4}" class="grid"/>'
                     f'<text x="{x(tick):.1f}" y="{top_pad - 8}" class="axis" text-anchor="middle">{tick:g}</text>')
        tick += 0.25
    for guide in (0.667, 0.8):
        parts.append(f'<line x1="{x(guide):.1f}" y1="{top_pad - 4}" x2="{x(guide):.1f}" y2="{height - 4}" '
                     f'class="guide"><title>{guide:g}: Krippendorff\'s threshold for '
                     f'{"reliable" if guide == 0.8 else "tentative"} conclusions</title></line>')
    for i, r in enumerate(rows):
        y = top_pad + i * row + row / 2
        cls = "estimate" if r.sufficient else "estimate insufficient"
        parts.append(f'<g class="{cls}" data-label="{escape(r.label)}">'
                     f'<text x="0" y="{y + 4:.1f}" class="label">{escape(_clip(r.label, 24))}</text>')
        if r.low is not None and r.high is not None:
            parts.append(f'<line class="whisker" x1="{x(r.low):.1f}" y1="{y:.1f}" x2="{x(r.high):.1f}" y2="{y:.1f}"/>'
                         f'<line class="whisker" x1="{x(r.low):.1f}" y1="{y - 5:.1f}" x2="{x(r.low):.1f}" y2="{y + 5:.1f}"/>'
                         f'<line class="whisker" x1="{x(r.high):.1f}" y1="{y - 5:.1f}" x2="{x(r.high):.1f}" '
                         f'y2="{y + 5:.1f}"/>')
        if r.value is not None:
            parts.append(f'<circle cx="{x(r.value):.1f}" cy="{y:.1f}" r="5"><title>{escape(_estimate_words(r, min_images))}'
                         f'</title></circle>')
        figure = num(r.value) if r.value is not None else "undefined"
        if r.low is not None and r.high is not None:
            figure += f" [{num(r.low)}, {num(r.high)}]"
        parts.append(f'<text x="{left + plot_w + 12}" y="{y + 4:.1f}" class="value">{escape(figure)}'
                     f'<tspan class="images"> · {r.images:,} images</tspan>'
                     + ('' if r.sufficient else f'<tspan class="few"> · too few (&lt; {min_images:,})</tspan>')
                     + "</text></g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _estimate_words(r: Estimate, min_images: int) -> str:
    words = f"{r.label}: " + (num(r.value) if r.value is not None else "undefined")
    if r.low is not None and r.high is not None:
        words += f", 95 % interval {num(r.low)} to {num(r.high)}"
    words += f", {r.images:,} images"
    if not r.sufficient:
        words += f", too few images (fewer than {min_images:,})"
    if r.note:
        words += f" ({r.note})"
    return words


@dataclass
class Row:
    """One row of a rates chart: its label, one value per series (None: not available), a note under the label."""
    label: str
    values: list[float | None]
    note: str = ""
    flags: list[str] = field(default_factory=list)  # per series: a word shown after its value (e.g. "few images")

    def __post_init__(self):
        self.values = [_real(v) for v in self.values]


def rates(key: str, title: str, groups: list[tuple[str, list[Row]]], series: list[str], width: int = 560,
          left: int = 150) -> Markup:
    """Horizontal bars of proportions and coefficients on one scale (0 to 1, further left when a coefficient is
    negative), the series side by side in each row, rows in optional groups (a heading per group)."""
    rows = [r for _, g in groups for r in g]
    if not rows:
        return _empty()
    k = len(series)
    present = [v for r in rows for v in r.values if v is not None]
    lo = max(-1.0, min(0.0, math.floor(min(present, default=0) * 4) / 4))
    plot_w = width - left - 140  # room on the right for a value and its flag
    chars = int(left / 6.3)
    bar_h, gap = 11, 3
    row_h = max(34, k * (bar_h + gap) + 10)
    x = lambda v: left + (max(lo, min(1.0, v)) - lo) / (1 - lo) * plot_w  # noqa: E731
    headed = [g for g in groups if g[0] and g[1]]
    height = 40 + len(rows) * row_h + len(headed) * 20
    words = []
    for heading, group in groups:
        for r in group:
            said = ", ".join(f"{name} {num(v) if v is not None else 'not available'}"
                             + (f" ({r.flags[s]})" if s < len(r.flags) and r.flags[s] else "")
                             for s, (name, v) in enumerate(zip(series, r.values)))
            words.append(f"{heading + ': ' if heading else ''}{r.label}: {said}" + (f"; {r.note}" if r.note else ""))
    parts = _open(key, width, height, title, ". ".join(words[:60]))
    parts += _legend(series, left, 12) if k > 1 else []
    top = 36
    tick = lo
    while tick <= 1.0001:
        parts.append(f'<line x1="{x(tick):.1f}" y1="{top - 6}" x2="{x(tick):.1f}" y2="{height - 2}" class="grid"/>'
                     f'<text x="{x(tick):.1f}" y="{top - 10}" class="axis" text-anchor="middle">{tick:g}</text>')
        tick += 0.25
    y = top
    for heading, group in groups:
        if not group:
            continue
        if heading:
            parts.append(f'<text x="0" y="{y + 12}" class="heading">{escape(heading)}</text>')
            y += 20
        for r in group:
            parts.append(f'<g class="row" data-label="{escape(r.label)}">'
                         f'<text x="0" y="{y + 13}" class="label">{escape(_clip(r.label, chars))}</text>')
            if r.note:
                parts.append(f'<text x="0" y="{y + 27}" class="note">{escape(_clip(r.note, chars + 4))}</text>')
            for s, (name, value) in enumerate(zip(series, r.values)):
                by = y + 3 + s * (bar_h + gap)
                flag = r.flags[s] if s < len(r.flags) else ""
                label = (num(value) if value is not None else "n/a") + (f" · {flag}" if flag else "")
                if value is None:
                    parts.append(f'<text x="{x(0) + 4:.1f}" y="{by + 9}" class="value missing">n/a'
                                 f'<title>{escape(r.label)}: {escape(name)} not available</title></text>')
                    continue
                x0, x1 = sorted((x(0), x(value)))
                parts.append(f'<rect class="s{s}" x="{x0:.1f}" y="{by}" width="{max(x1 - x0, 0.5):.1f}" '
                             f'height="{bar_h}"><title>{escape(r.label)}: {escape(name)} {escape(num(value))}'
                             f'</title></rect>'
                             f'<text x="{max(x1, x(0)) + 4:.1f}" y="{by + 9}" class="value" data-series="{escape(name)}">'
                             f'{escape(label)}</text>')
            parts.append("</g>")
            y += row_h
    parts.append("</svg>")
    return Markup("".join(parts))


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
