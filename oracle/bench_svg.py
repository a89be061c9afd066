"""The bar chart of ``refbp bench``: refbp and torch time per grid size, log scale, the ratio on top."""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape


def render_svg(result: Mapping) -> str:
    """Bars of refbp and torch time per grid size (log scale) with the ratio on top; a hand-written SVG."""
    rows = result["grid"]
    width, height, left, bottom, top = 640, 300, 60, 50, 40
    plot_w, plot_h = width - left - 20, height - top - bottom
    times = [t for r in rows for t in (r["seconds"]["refbp"], r["seconds"]["torch"])]
    low = math.floor(math.log10(min(times)))
    high = math.ceil(math.log10(max(times)))
    high = max(high, low + 1)

    def y(seconds: float) -> float:
        return top + plot_h * (1 - (math.log10(seconds) - low) / (high - low))

    group = plot_w / len(rows)
    bar = group * 0.3
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="11" viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="13" font-weight="bold">fwd+bwd time per call (log scale); '
        "label: refbp / torch</text>",
    ]
    for exponent in range(low, high + 1):
        ypos = y(10.0**exponent)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{ypos:.1f}" y2="{ypos:.1f}" stroke="#ddd"/>')
        tick = escape(_seconds_label(exponent))
        parts.append(f'<text x="{left - 6}" y="{ypos + 4:.1f}" text-anchor="end">{tick}</text>')
    for index, row in enumerate(rows):
        x0 = left + index * group + group * 0.2
        for offset, (name, colour) in enumerate((("refbp", "#1f77b4"), ("torch", "#ff7f0e"))):
            ytop = y(row["seconds"][name])
            parts.append(
                f'<rect x="{x0 + offset * bar:.1f}" y="{ytop:.1f}" width="{bar:.1f}" '
                f'height="{top + plot_h - ytop:.1f}" fill="{colour}"><title>{name}: '
                f"{row['seconds'][name] * 1e3:.4g} ms</title></rect>"
            )
        ratio_y = y(max(row["seconds"]["refbp"], row["seconds"]["torch"])) - 5
        colour = "#2a7" if row["met"] else "#c33"
        parts.append(
            f'<text x="{x0 + bar:.1f}" y="{ratio_y:.1f}" text-anchor="middle" fill="{colour}" '
            f'font-weight="bold">{row["ratio"]:.2f}×</text>'
        )
        label = f"({row['batch']}, {row['width']}, {row['depth']})"
        parts.append(f'<text x="{x0 + bar:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{escape(label)}</text>')
    parts += [
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#333"/>',
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#333"/>',
        f'<text x="{left + plot_w / 2}" y="{height - 12}" text-anchor="middle">(batch, width, depth)</text>',
        f'<rect x="{left + plot_w - 150}" y="{top - 14}" width="10" height="10" fill="#1f77b4"/>',
        f'<text x="{left + plot_w - 136}" y="{top - 5}">refbp</text>',
        f'<rect x="{left + plot_w - 90}" y="{top - 14}" width="10" height="10" fill="#ff7f0e"/>',
        f'<text x="{left + plot_w - 76}" y="{top - 5}">torch</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _seconds_label(exponent: int) -> str:
    seconds = 10.0**exponent
    if seconds >= 1:
        return f"{seconds:g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:g} ms"
    return f"{seconds * 1e6:g} µs"
