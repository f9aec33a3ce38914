"""Inline SVG charts for server-rendered pages: geometry only, no chart library, no scripts."""
from __future__ import annotations

from markupsafe import Markup, escape


def bars(points: list[tuple[str, float]], width: int = 640, height: int = 160, unit: str = "") -> Markup:
    """A vertical bar chart of (label, value) points, labels under every few bars and the maximum on the axis."""
    if not points:
        return Markup('<p class="empty">No data yet.</p>')
    top = max(v for _, v in points) or 1
    gap, left, bottom = 2, 40, 18
    bar_w = max(1.0, (width - left) / len(points) - gap)
    step = max(1, len(points) // 8)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height + bottom}" role="img" width="100%">',
             f'<text x="0" y="12" class="axis">{escape(_fmt(top))}{escape(unit)}</text>',
             f'<line x1="{left}" y1="{height}" x2="{width}" y2="{height}" class="axis"/>']
    for i, (label, value) in enumerate(points):
        h = value / top * (height - 16)
        x = left + i * (bar_w + gap)
        parts.append(f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
                     f'<title>{escape(label)}: {escape(_fmt(value))}</title></rect>')
        if i % step == 0:
            parts.append(f'<text x="{x:.1f}" y="{height + 14}" class="label">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hbars(points: list[tuple[str, float]], width: int = 480, row: int = 22) -> Markup:
    """Horizontal bars, one row per (label, value): for counts by category."""
    if not points:
        return Markup('<p class="empty">No data yet.</p>')
    top = max(v for _, v in points) or 1
    left = 130
    parts = [f'<svg class="chart" viewBox="0 0 {width} {row * len(points)}" role="img" width="100%">']
    for i, (label, value) in enumerate(points):
        w = value / top * (width - left - 60)
        y = i * row
        parts.append(f'<text x="0" y="{y + 15}" class="label">{escape(label)}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}"/>'
                     f'<text x="{left + w + 6:.1f}" y="{y + 15}" class="value">{escape(_fmt(value))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"
