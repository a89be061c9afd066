"""The HTML report: one self-contained page, with heat maps of the worst relative error drawn in SVG."""

from __future__ import annotations

import html
import itertools
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from oracle.compare import FAILING_STATUSES, PAIRS
from oracle.report_format import fmt_err, fmt_int, fmt_num, fmt_sci, fmt_tol, is_finite, plural, quantity_label
from oracle.report_markdown import counts_table_rows, where_text
from oracle.report_table import (
    QUANTITY_ORDER,
    as_frame,
    case_depths,
    in_order,
    jsonable,
    report_title,
    run_parameters,
    shrunk_cases,
    shrunk_line,
    verdict_parts,
    worst_row_of,
)

# Caps that keep the page readable.
_HTML_DIVERGENCE_CAP = 200
_HTML_FAILING_CAP = 500

# Heat map colour scale: log10 of the relative error, clamped to [_LOG_LO, _LOG_HI].
_LOG_LO, _LOG_HI = -16.0, 0.0
_VIRIDIS = (
    (0.000, "#440154"),
    (0.125, "#472d7b"),
    (0.250, "#3b528b"),
    (0.375, "#2c728e"),
    (0.500, "#21918c"),
    (0.625, "#28ae80"),
    (0.750, "#5ec962"),
    (0.875, "#addc30"),
    (1.000, "#fde725"),
)
_FAIL_COLOUR = "#e0003c"
_EMPTY_COLOUR = "#eeeeee"
_NONFINITE_COLOUR = "#3a3a3a"


def escape_html(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _colour(log_err: float) -> str:
    """Viridis colour of ``log10(err)`` on the fixed scale [_LOG_LO, _LOG_HI]."""
    t = min(max((log_err - _LOG_LO) / (_LOG_HI - _LOG_LO), 0.0), 1.0)
    for (t0, c0), (t1, c1) in itertools.pairwise(_VIRIDIS):
        if t <= t1:
            f = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
            rgb = [round(a + (b - a) * f) for a, b in zip(_hex_rgb(c0), _hex_rgb(c1), strict=True)]
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return _VIRIDIS[-1][1]


def _ink(fill: str) -> str:
    """Black or white text, whichever reads on ``fill``."""
    r, g, b = (c / 255 for c in _hex_rgb(fill))
    return "#000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#fff"


def _log10(err: float) -> float:
    return _LOG_LO if err <= 0 else math.log10(err)


def _also_html(pairs: list[str]) -> str:
    return f' <span class="muted">(+ {escape_html(", ".join(pairs))})</span>' if pairs else ""


def _html_table(headers: list[str], rows: list[list[str]], *, num: Iterable[int] = (), cls: str = "") -> str:
    """A table; ``rows`` cells are HTML already (escape before)."""
    num = set(num)
    head = "".join(f"<th{' class=num' if i in num else ''}>{escape_html(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in num else ''}>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table class="{escape_html(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _heatmap_svg(df: pd.DataFrame, pair: str, index: int, depth: int, *, same_depth: bool = True) -> str:
    """One heat map: rows = layers 0 … depth, columns = quantities, colour = log10 worst rel err."""
    sub = df[df["pair"] == pair]
    quantities = list(QUANTITY_ORDER) + sorted(q for q in sub["quantity"].unique() if q not in QUANTITY_ORDER)
    cell_w, cell_h, left, top = 74, 26, 96, 30
    width = left + cell_w * len(quantities) + 16
    grid_h = cell_h * (depth + 1)
    legend_y = top + grid_h + 34
    height = legend_y + 62
    failing = sub["status"].isin(FAILING_STATUSES)
    groups = {key: g for key, g in sub.assign(_failing=failing).groupby(["layer", "quantity"], sort=False)}

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="worst relative error per layer and quantity, {escape_html(pair)}" class="heatmap">',
        f'<defs><linearGradient id="scale{index}" x1="0" x2="1" y1="0" y2="0">'
        + "".join(f'<stop offset="{t * 100:.1f}%" stop-color="{c}"/>' for t, c in _VIRIDIS)
        + "</linearGradient></defs>",
    ]
    for j, q in enumerate(quantities):
        x = left + j * cell_w + cell_w / 2
        parts.append(f'<text x="{x:.0f}" y="{top - 10}" text-anchor="middle" class="qlabel">{escape_html(q)}</text>')
    for layer in range(depth + 1):
        y = top + layer * cell_h
        label = str(layer)
        if layer == 0:
            label = f"{layer} (input)"
        elif layer == depth and same_depth:
            label = f"{layer} (output)"
        y_text = f"{y + cell_h / 2 + 4:.0f}"
        parts.append(f'<text x="{left - 8}" y="{y_text}" text-anchor="end" class="llabel">{escape_html(label)}</text>')
        for j, q in enumerate(quantities):
            x = left + j * cell_w
            g = groups.get((layer, q))
            if g is None:
                parts.append(
                    f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{_EMPTY_COLOUR}">'
                    f"<title>{escape_html(f'{pair} · layer {layer} · {q}: no rows')}</title></rect>"
                )
                continue
            n_fail = int(g["_failing"].sum())
            fail_counts = g.loc[g["_failing"], "status"].value_counts()
            worst = worst_row_of(g, g["_failing"])
            if is_finite(worst["max_rel_err"]):
                err = float(worst["max_rel_err"])
                fill = _colour(_log10(err))
                text = fmt_sci(err)
                tip = f"{pair} · layer {layer} · {q}\nworst max rel err {fmt_sci(err, 3)}"
                tip += f"\n(case {worst['case']}, entry {worst['worst_index'] or '—'})"
            else:
                status = str(worst["status"])
                fill = _NONFINITE_COLOUR if n_fail else _EMPTY_COLOUR
                text = {"nan": "NaN", "missing": "missing", "shape": "shape", "kink": "kink"}.get(status, status)
                tip = f"{pair} · layer {layer} · {q}\n{status}: {worst['message'] or 'no value'}"
                tip += f"\n(case {worst['case']})"
            tip += f"\n{len(g)} row{'s' if len(g) != 1 else ''}"
            if n_fail:
                tip += ", " + ", ".join(plural(int(n), s) for s, n in fail_counts.items())
            cell = [f"<g><title>{escape_html(tip)}</title>"]
            cell.append(f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{fill}"/>')
            if n_fail:
                cell.append(
                    f'<rect x="{x + 2.5}" y="{y + 2.5}" width="{cell_w - 5}" height="{cell_h - 5}" fill="none" '
                    f'stroke="{_FAIL_COLOUR}" stroke-width="3" class="failing"/>'
                )
            weight = ' font-weight="700"' if n_fail else ""
            cell.append(
                f'<text x="{x + cell_w / 2:.0f}" y="{y + cell_h / 2 + 4:.0f}" text-anchor="middle" '
                f'fill="{_ink(fill)}" class="cval"{weight}>{escape_html(("✕ " if n_fail else "") + text)}</text></g>'
            )
            parts.append("".join(cell))

    # Legend: the colour scale, the tolerances of this pair and the special cells.
    bar_w = cell_w * min(len(quantities), 6)
    parts.append(
        f'<text x="{left}" y="{legend_y - 14}" class="ltitle">worst max rel err (log scale; clamped)</text>'
        f'<rect x="{left}" y="{legend_y}" width="{bar_w}" height="12" fill="url(#scale{index})"/>'
    )
    span = _LOG_HI - _LOG_LO
    for tick in range(int(_LOG_LO), int(_LOG_HI) + 1, 4):
        tx = left + (tick - _LOG_LO) / span * bar_w
        label = "≤1e-16" if tick == _LOG_LO else ("≥1" if tick == 0 else f"1e{tick}")
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{legend_y + 12}" y2="{legend_y + 17}" stroke="#333"/>'
            f'<text x="{tx:.1f}" y="{legend_y + 29}" text-anchor="middle" class="tick">{escape_html(label)}</text>'
        )
    tols = sub.loc[np.isfinite(sub["rtol"]) & (sub["rtol"] > 0), ["dtype", "rtol"]].drop_duplicates()
    for t in tols.itertuples(index=False):
        tx = left + (min(max(math.log10(t.rtol), _LOG_LO), _LOG_HI) - _LOG_LO) / span * bar_w
        parts.append(
            f'<path d="M{tx - 4:.1f},{legend_y - 7} L{tx + 4:.1f},{legend_y - 7} L{tx:.1f},{legend_y - 1} Z" '
            f'fill="{_FAIL_COLOUR}"><title>{escape_html(f"rtol {fmt_sci(t.rtol, 1)} ({t.dtype})")}</title></path>'
        )
    if len(tols):
        parts.append(
            f'<text x="{left + bar_w}" y="{legend_y - 14}" text-anchor="end" class="tick">'
            f'<tspan fill="{_FAIL_COLOUR}">▼</tspan> rtol</text>'
        )
    sx = left + bar_w + 24
    swatches = [
        (_EMPTY_COLOUR, "none", "no rows"),
        (_NONFINITE_COLOUR, "none", "no finite error"),
        ("#ffffff", _FAIL_COLOUR, "✕ failing"),
    ]
    for k, (fill, stroke, label) in enumerate(swatches):
        sy = legend_y - 20 + k * 18
        stroke_attr = f' stroke="{stroke}" stroke-width="3"' if stroke != "none" else ' stroke="#bbb"'
        parts.append(
            f'<rect x="{sx}" y="{sy}" width="16" height="12" fill="{fill}"{stroke_attr}/>'
            f'<text x="{sx + 22}" y="{sy + 10}" class="tick">{escape_html(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


PAGE_CSS = """
:root { --ok: #1e7b34; --ok-bg: #e7f5ea; --bad: #b3261e; --bad-bg: #fdecea; --line: #d9dde3; --muted: #5f6670; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #1d2127; background: #fff; margin: 0; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 14px; }
h2 { font-size: 17px; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 18px 0 6px; }
.banner { padding: 12px 16px; border-radius: 6px; border-left: 6px solid; font-size: 16px; }
.banner.pass { background: var(--ok-bg); border-color: var(--ok); }
.banner.fail { background: var(--bad-bg); border-color: var(--bad); }
.banner b { font-size: 18px; margin-right: 6px; letter-spacing: .04em; }
.banner.pass b { color: var(--ok); } .banner.fail b { color: var(--bad); }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f6f8; font-weight: 600; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: var(--bad); font-weight: 600; }
table.kv th { width: 160px; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #f4f6f8; border: 1px solid var(--line); border-radius: 4px; padding: 8px 10px;
      overflow-x: auto; margin: 6px 0; }
.muted { color: var(--muted); }
.heatmaps { display: flex; flex-wrap: wrap; gap: 8px 28px; }
.heatmaps figure { margin: 0; }
.heatmaps figcaption { font-weight: 600; margin: 4px 0; }
svg.heatmap text { font-size: 11px; fill: #1d2127; }
svg.heatmap text.cval { font-size: 10.5px; font-variant-numeric: tabular-nums; }
svg.heatmap text.qlabel { font-weight: 600; }
svg.heatmap text.cval[fill="#fff"] { fill: #fff; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: 600; }
.scroll { overflow-x: auto; }
table.rows td, table.rows th { white-space: nowrap; }
table.rows td:nth-last-child(-n+2) { white-space: normal; min-width: 220px; }
.shrunk { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
"""


def render_html(summary: Mapping, rows: pd.DataFrame | None = None) -> str:
    """The self-contained HTML page for ``summary``; ``rows`` (the tidy table) feeds the heat maps."""
    meta = summary.get("meta") or {}
    df = as_frame(rows)
    word, detail = verdict_parts(summary)
    title = report_title(meta)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape_html(title)} — {word}</title>",
        f"<style>{PAGE_CSS}</style></head><body><main>",
        f"<h1>{escape_html(title)}</h1>",
        f'<div class="banner {word.lower()}" role="status"><b>{word}</b> {escape_html(detail)}</div>',
    ]

    params = run_parameters(meta)
    if params:
        cells = [
            (label, f"<code>{escape_html(text)}</code>" if key == "command" else escape_html(text))
            for key, label, text in params
        ]
        kv = "".join(f"<tr><th>{escape_html(label)}</th><td>{cell}</td></tr>" for label, cell in cells)
        out.append(f'<h2>Run parameters</h2><table class="kv"><tbody>{kv}</tbody></table>')

    if summary["n_rows"] == 0:
        out.append('<p class="muted">No rows: nothing was compared.</p>')
    else:
        headers, rows_ = counts_table_rows(summary)
        cells = []
        for row in rows_:
            status = row[0]
            bad = status in FAILING_STATUSES and row[-1] != "0"
            cells.append([f'<span class="bad">{escape_html(c)}</span>' if bad else escape_html(c) for c in row])
        out.append("<h2>Counts by status</h2>")
        out.append(_html_table(headers, cells, num=range(1, len(headers)), cls="counts"))

        # Heat maps
        depths = case_depths(df, meta)
        depth = max(int(df["layer"].max()), max(depths.values(), default=0), 1)
        same_depth = len(set(depths.values())) <= 1
        out.append("<h2>Error per layer and quantity</h2>")
        out.append(
            '<p class="muted">Each cell: the worst <code>max_rel_err</code> over all cases for that layer and '
            "quantity (hover for the number and where it occurs). A red outline and ✕ mark a cell with at "
            "least one failing row (mismatch, shape, non-finite or missing). Layer 0 is the input; "
            "the loss is reported on each case's output layer.</p>"
        )
        out.append('<div class="heatmaps">')
        for i, pair in enumerate(in_order(df["pair"], PAIRS)):
            svg = _heatmap_svg(df, pair, i, depth, same_depth=same_depth)
            out.append(f"<figure><figcaption>{escape_html(pair)}</figcaption>{svg}</figure>")
        out.append("</div>")

        worst_rows = []
        for w in summary["worst"]:
            case, layer, index = where_text(w)
            where = f"<code>{escape_html(case)}</code>, layer {escape_html(layer)}"
            where += f", <code>{escape_html(index)}</code>" if index else ""
            where += "" if w.get("step") is None else f", step {escape_html(w['step'])}"
            failing = w["n_failing"] > 0
            status = f'<span class="bad">{w["n_failing"]} failing</span>' if failing else escape_html(w["status"])
            worst_rows.append(
                [
                    f"<code>{escape_html(w['quantity'])}</code>",
                    escape_html(w["pair"]),
                    escape_html(fmt_err(w["max_rel_err"], w["status"])),
                    escape_html(fmt_tol(w["rtol"], w["atol"])),
                    status,
                    where,
                ]
            )
        out.append("<h2>Worst error per quantity</h2>")
        out.append(
            _html_table(["quantity", "pair", "max rel err", "tolerance", "status", "where"], worst_rows, num=[2])
        )

        divergences = summary["first_divergence"]
        if divergences:
            div_rows = [
                [
                    f"<code>{escape_html(d['case'])}</code>",
                    escape_html(d["layer"]),
                    f"<code>{escape_html(quantity_label(d['quantity'], d.get('step')))}</code>",
                    escape_html(d["pair"]) + _also_html(d["also_pairs"]),
                    f'<span class="bad">{escape_html(d["status"])}</span>',
                    escape_html(fmt_err(d["max_rel_err"], d["status"])),
                    escape_html(d.get("diagnosis") or ""),
                ]
                for d in divergences[:_HTML_DIVERGENCE_CAP]
            ]
            out.append("<h2>Where it diverges</h2>")
            out.append(
                '<p class="muted">For each failing case, the first failing quantity: forward values walking '
                "forward from the input, then gradients walking backward from the loss.</p>"
            )
            out.append(
                _html_table(
                    ["case", "layer", "quantity", "pair", "status", "max rel err", "diagnosis"], div_rows, num=[1, 5]
                )
            )
            if len(divergences) > _HTML_DIVERGENCE_CAP:
                more = len(divergences) - _HTML_DIVERGENCE_CAP
                out.append(f'<p class="muted">… and {fmt_int(more)} more failing cases (see the JSON).</p>')

    shrunk = shrunk_cases(meta)
    if shrunk:
        out.append("<h2>Shrunk failures</h2>")
        for number, s in enumerate(shrunk, start=1):
            signature = s.get("signature") or f"failure {number}"
            block = [f'<div class="shrunk"><h3>{number}. <code>{escape_html(signature)}</code></h3>']
            line = shrunk_line(s)
            if line:
                block.append(f"<p>{escape_html(line)}</p>")
            if s.get("description"):
                block.append(f'<p class="muted">{escape_html(s["description"])}</p>')
            if s.get("case") is not None:
                case_json = json.dumps(jsonable(s["case"]), indent=2, ensure_ascii=False)
                block.append(
                    f"<details><summary>case</summary><pre><code>{escape_html(case_json)}</code></pre></details>"
                )
            if s.get("replay"):
                block.append(f'<p class="muted">replay:</p><pre><code>{escape_html(s["replay"])}</code></pre>')
            block.append("</div>")
            out.append("".join(block))

    failing_rows = summary["failing_rows"]
    if failing_rows:
        headers = [
            "case", "layer", "quantity", "pair", "status", "max rel err", "max abs err", "tolerance",
            "worst index", "left", "right", "entries", "kinks", "dtype", "diagnosis", "message",
        ]  # fmt: skip
        table_rows = [
            [
                f"<code>{escape_html(r['case'])}</code>",
                escape_html(r["layer"]),
                f"<code>{escape_html(quantity_label(r['quantity'], r.get('step')))}</code>",
                escape_html(r["pair"]),
                f'<span class="bad">{escape_html(r["status"])}</span>',
                escape_html(fmt_err(r["max_rel_err"], r["status"])),
                escape_html(fmt_sci(r["max_abs_err"])),
                escape_html(fmt_tol(r["rtol"], r["atol"])),
                f"<code>{escape_html(r['worst_index'] or '')}</code>",
                escape_html(fmt_num(r["worst_left"], "nan")),
                escape_html(fmt_num(r["worst_right"], "nan")),
                escape_html(fmt_int(r["n_entries"])),
                escape_html(fmt_int(r["n_kink"])),
                escape_html(r["dtype"]),
                escape_html(r.get("diagnosis") or ""),
                escape_html(r["message"] or ""),
            ]
            for r in failing_rows[:_HTML_FAILING_CAP]
        ]
        table = _html_table(headers, table_rows, num=[1, 5, 6, 9, 10, 11, 12], cls="rows")
        note = ""
        if len(failing_rows) > _HTML_FAILING_CAP:
            note = (
                f'<p class="muted">Showing the first {fmt_int(_HTML_FAILING_CAP)} of '
                f"{fmt_int(len(failing_rows))} failing rows; the CSV and JSON hold them all.</p>"
            )
        out.append(
            f"<h2>Failing rows</h2><details><summary>{fmt_int(len(failing_rows))} failing "
            f"row{'s' if len(failing_rows) != 1 else ''}</summary>{note}"
            f'<div class="scroll">{table}</div></details>'
        )

    out.append("</main></body></html>")
    return "\n".join(out) + "\n"
