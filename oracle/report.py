"""Render the reports of a comparison run from its tidy table.

Every report is rendered from two things only: the tidy table (a :class:`pandas.DataFrame`
with one row per ``(case, layer, quantity, pair)``, the columns of
:class:`oracle.compare.Row`, plus an optional ``diagnosis`` column) and a small metadata
dict. Number formatting lives here and nowhere else.

:func:`write_reports` writes four files next to each other, each one atomically (a temp
file in the same folder, fsynced, then :func:`os.replace`), so that a run interrupted
half-way leaves either the old report or the new one, never half a file:

``{stem}.csv``   every row, every column
``{stem}.json``  the summary of :func:`summarise` (strict JSON: non-finite numbers → ``null``)
``{stem}.md``    a compact summary meant to be pasted into a pull request
``{stem}.html``  one self-contained page (inline CSS and SVG, nothing fetched) with a heat
                 map of the worst relative error per layer and quantity, one per pair

``meta`` keys used (all optional except ``title``): ``title``, ``command``, ``seed``,
``cases``, ``dtype``, ``fd_mode``, ``wall_seconds``, ``shrunk`` (a list of
``{"signature", "case", "replay", "depth", "batch", "first_divergence"}``) and
``depth_by_case`` (case → depth; without it a case's depth is its largest layer).
"""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oracle.compare import FAILING_STATUSES, PAIRS, STATUSES, Row, divergence_rank
from refbp.output_paths import write_atomically

__all__ = [
    "COLUMNS",
    "QUANTITY_ORDER",
    "as_frame",
    "fmt_sci",
    "render_html",
    "render_markdown",
    "summarise",
    "verdict",
    "write_reports",
]

#: The files :func:`write_reports` writes, ``{stem}.{kind}``.
REPORT_KINDS = ("csv", "json", "md", "html")
#: Columns of the tidy table: the fields of :class:`Row`, then ``diagnosis``.
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Row)) + (
    () if "diagnosis" in {f.name for f in fields(Row)} else ("diagnosis",)
)
#: Column order of the heat maps and of the per-quantity tables.
QUANTITY_ORDER = ("z", "a", "loss", "dL/da", "delta", "dL/dW", "dL/db", "dL/dx")

_FLOAT_COLUMNS = ("max_abs_err", "max_rel_err", "rtol", "atol", "worst_left", "worst_right")
_INT_COLUMNS = ("layer", "n_entries", "n_kink")
_TEXT_COLUMNS = ("case", "quantity", "pair", "status", "worst_index", "dtype", "message", "diagnosis")

# Caps that keep the Markdown and the page readable.
_MD_DIVERGENCE_CAP = 25
_MD_SHRUNK_CAP = 10
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

_STATUS_WORDS = {
    "mismatch": ("mismatch", "mismatches"),
    "shape": ("shape error", "shape errors"),
    "nan": ("non-finite", "non-finite"),
    "missing": ("missing quantity", "missing quantities"),
    "kink": ("row with ReLU kinks", "rows with ReLU kinks"),
    "ok": ("ok", "ok"),
}


# --------------------------------------------------------------------------- numbers


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt_sci(x: Any, digits: int = 2, missing: str = "—") -> str:
    """``x`` in scientific notation with ``digits`` significant digits: ``3.1e-12``, ``1.5e+0``.

    ``0`` → ``"0"``, ±inf → ``"inf"``/``"-inf"``, NaN/None → ``missing``.
    """
    if x is None:
        return missing
    try:
        value = float(x)
    except (TypeError, ValueError):
        return missing
    if math.isnan(value):
        return missing
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.{max(digits, 1) - 1}e}".split("e")
    return f"{mantissa}e{int(exponent):+d}" if int(exponent) >= 0 else f"{mantissa}e{int(exponent)}"


def _fmt_num(x: Any, missing: str = "—") -> str:
    """A value as read from an array: 6 significant digits."""
    if x is None:
        return missing
    try:
        value = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def _fmt_int(n: Any) -> str:
    try:
        return f"{int(n):,}"
    except (TypeError, ValueError):
        return str(n)


def _fmt_seconds(seconds: Any) -> str:
    if not _finite(seconds):
        return str(seconds)
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {round(s % 60)} s"
    return f"{int(s // 3600)} h {round((s % 3600) / 60)} min"


def _fmt_err(value: Any, status: str) -> str:
    """A max relative error, or what stands in for it when there is none."""
    if _finite(value):
        return fmt_sci(value)
    return {"nan": "non-finite", "missing": "missing", "shape": "shape", "kink": "all kinks"}.get(status, "—")


def _fmt_tol(rtol: Any, atol: Any) -> str:
    if not _finite(rtol):
        return "—"
    return f"rtol {fmt_sci(rtol, 1)}, atol {fmt_sci(atol, 2)}"


def _fmt_value(key: str, value: Any) -> str:
    """A run parameter from meta."""
    if key == "wall_seconds":
        return _fmt_seconds(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return _fmt_int(value) if key == "cases" else str(int(value))
    if isinstance(value, float | np.floating):
        return _fmt_num(value)
    return str(value)


def _plural(n: int, status: str) -> str:
    one, many = _STATUS_WORDS.get(status, (status, status))
    return f"{_fmt_int(n)} {one if n == 1 else many}"


# --------------------------------------------------------------------------- table


def as_frame(rows: pd.DataFrame | Iterable[Row | Mapping] | None) -> pd.DataFrame:
    """The tidy table with every column of :data:`COLUMNS`, typed, in a fresh frame.

    Accepts a DataFrame, an iterable of :class:`Row` (or dicts) or ``None`` (no rows).
    Missing columns are added (NaN, 0 or ``""``); extra columns are kept after them.
    """
    if rows is None:
        df = pd.DataFrame(columns=list(COLUMNS))
    elif isinstance(rows, pd.DataFrame):
        df = rows.copy()
    else:
        records = [r.as_dict() if isinstance(r, Row) else dict(r) for r in rows]
        df = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=list(COLUMNS))
    df = df.reset_index(drop=True)
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = np.nan if col in _FLOAT_COLUMNS else (0 if col in _INT_COLUMNS else "")
    for col in _FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in _INT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0).astype(int)
    for col in _TEXT_COLUMNS:
        df[col] = df[col].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[list(COLUMNS) + extra]


def _failing_mask(df: pd.DataFrame) -> pd.Series:
    return df["status"].isin(FAILING_STATUSES)


def verdict(rows: pd.DataFrame | Iterable[Row | Mapping] | None) -> bool:
    """True when no row has a failing status (``mismatch``, ``shape``, ``nan``, ``missing``)."""
    df = rows if isinstance(rows, pd.DataFrame) and "status" in rows.columns else as_frame(rows)
    return not bool(df["status"].isin(FAILING_STATUSES).any())


def _ordered(values: Iterable[str], order: Iterable[str]) -> list[str]:
    present = list(dict.fromkeys(values))
    known = [v for v in order if v in present]
    return known + sorted(v for v in present if v not in known)


def _quantity_key(q: str) -> int:
    return QUANTITY_ORDER.index(q) if q in QUANTITY_ORDER else len(QUANTITY_ORDER)


def _pair_key(p: str) -> int:
    return PAIRS.index(p) if p in PAIRS else len(PAIRS)


def _jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars unwrapped and non-finite floats as ``None``."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _records(df: pd.DataFrame) -> list[dict]:
    return [_jsonable(r) for r in df.to_dict(orient="records")]


# --------------------------------------------------------------------------- summary


def _depths(df: pd.DataFrame, meta: Mapping) -> dict[str, int]:
    given = meta.get("depth_by_case") or {}
    inferred = df.groupby("case")["layer"].max().to_dict() if len(df) else {}
    out = {str(c): int(d) for c, d in inferred.items()}
    for case, depth in given.items():
        with contextlib.suppress(TypeError, ValueError):
            out[str(case)] = int(depth)
    return out


def _first_divergences(df: pd.DataFrame, meta: Mapping) -> list[dict]:
    """Per failing case (in order of appearance): the row where the divergence starts."""
    failing = df[_failing_mask(df)]
    if failing.empty:
        return []
    depths = _depths(df, meta)
    out = []
    for case, group in failing.groupby("case", sort=False):
        depth = depths.get(str(case), int(group["layer"].max()))
        keys = [
            (divergence_rank(int(r.layer), str(r.quantity), depth), _pair_key(str(r.pair)))
            for r in group.itertuples(index=False)
        ]
        best = min(range(len(keys)), key=keys.__getitem__)
        row = group.iloc[best]
        also = group[
            (group["layer"] == row["layer"]) & (group["quantity"] == row["quantity"]) & (group["pair"] != row["pair"])
        ]
        out.append(
            _jsonable(
                {
                    "case": row["case"],
                    "depth": depth,
                    "layer": row["layer"],
                    "quantity": row["quantity"],
                    "pair": row["pair"],
                    "status": row["status"],
                    "max_rel_err": row["max_rel_err"],
                    "worst_index": row["worst_index"],
                    "diagnosis": row["diagnosis"],
                    "message": row["message"],
                    "also_pairs": sorted(also["pair"].unique().tolist(), key=_pair_key),
                    "n_failing_rows": len(group),
                }
            )
        )
    return out


def _worst_row(group: pd.DataFrame, failing: pd.Series) -> pd.Series:
    """The worst row of ``group``: failing rows first, then the largest finite ``max_rel_err``.

    Among failing rows without a finite error (NaN, shape, missing) the first one is taken.
    """
    candidates = group[failing] if failing.any() else group
    finite = candidates[np.isfinite(candidates["max_rel_err"])]
    if failing.any() and len(finite) < len(candidates):
        # A non-finite / missing / shape failure outranks any finite error.
        return candidates[~np.isfinite(candidates["max_rel_err"])].iloc[0]
    if not finite.empty:
        return finite.loc[finite["max_rel_err"].idxmax()]
    return candidates.iloc[0]


def _worst(df: pd.DataFrame) -> list[dict]:
    """Per (quantity, pair): the worst row (see :func:`_worst_row`) and where it occurs."""
    out = []
    if df.empty:
        return out
    failing = _failing_mask(df)
    for (quantity, pair), group in df.groupby(["quantity", "pair"], sort=False):
        row = _worst_row(group, failing.loc[group.index])
        n_failing = int(failing.loc[group.index].sum())
        out.append(
            _jsonable(
                {
                    "quantity": quantity,
                    "pair": pair,
                    "max_rel_err": row["max_rel_err"],
                    "max_abs_err": row["max_abs_err"],
                    "rtol": row["rtol"],
                    "atol": row["atol"],
                    "status": row["status"],
                    "case": row["case"],
                    "layer": row["layer"],
                    "worst_index": row["worst_index"],
                    "n_rows": len(group),
                    "n_failing": n_failing,
                    "failing_statuses": group.loc[failing.loc[group.index], "status"].value_counts().to_dict(),
                }
            )
        )
    out.sort(key=lambda w: (_quantity_key(w["quantity"]), w["quantity"], _pair_key(w["pair"]), w["pair"]))
    return out


def summarise(rows: pd.DataFrame | Iterable[Row | Mapping] | None, meta: Mapping | None = None) -> dict:
    """The JSON summary of a run (what ``{stem}.json`` holds).

    Keys: ``meta`` (as given, made JSON-able), ``verdict`` (``"pass"``/``"fail"``),
    ``n_rows``, ``n_cases``, ``n_failing_rows``, ``n_failing_cases``, ``counts_by_status``
    (every status, zeros included), ``counts_by_pair_status`` (pair → status → count),
    ``worst`` (per quantity and pair: the largest ``max_rel_err`` and where it occurs),
    ``first_divergence`` (per failing case: the row where it starts diverging) and
    ``failing_rows`` (the failing rows as records). Non-finite numbers become ``None``.
    """
    meta = dict(meta or {})
    df = as_frame(rows)
    failing = df[_failing_mask(df)]
    statuses = _ordered(df["status"], STATUSES)
    counts = {s: 0 for s in STATUSES} | {s: int(n) for s, n in df["status"].value_counts().items()}
    by_pair: dict[str, dict[str, int]] = {}
    for pair in _ordered(df["pair"], PAIRS):
        sub = df.loc[df["pair"] == pair, "status"].value_counts()
        by_pair[pair] = {s: int(sub.get(s, 0)) for s in _ordered([*STATUSES, *statuses], STATUSES)}
    return {
        "schema": 1,
        "meta": _jsonable(meta),
        "verdict": "pass" if failing.empty else "fail",
        "n_rows": len(df),
        "n_cases": int(df["case"].nunique()),
        "n_failing_rows": len(failing),
        "n_failing_cases": int(failing["case"].nunique()),
        "counts_by_status": counts,
        "counts_by_pair_status": by_pair,
        "worst": _worst(df),
        "first_divergence": _first_divergences(df, meta),
        "failing_rows": _records(failing),
    }


def _verdict_parts(summary: Mapping) -> tuple[str, str]:
    """``("PASS" | "FAIL", "500 cases, 0 mismatches")``."""
    meta = summary.get("meta") or {}
    counts = summary["counts_by_status"]
    word = "PASS" if summary["verdict"] == "pass" else "FAIL"
    if summary["n_rows"] == 0:
        return word, "no rows (nothing was compared)"
    n_cases = meta.get("cases") if isinstance(meta.get("cases"), int) else summary["n_cases"]
    cases = f"{_fmt_int(n_cases)} case{'' if n_cases == 1 else 's'}"
    if word == "PASS":
        detail = f"{cases}, 0 mismatches"
    else:
        parts = [_plural(counts.get(s, 0), s) for s in FAILING_STATUSES if counts.get(s, 0)]
        n_fail = summary["n_failing_cases"]
        detail = f"{cases}, {_fmt_int(n_fail)} failing case{'' if n_fail == 1 else 's'}: " + ", ".join(parts)
    if counts.get("kink", 0):
        detail += f" ({_plural(counts['kink'], 'kink')})"
    if meta.get("interrupted"):
        detail += " (interrupted: yes; only the cases checked before Ctrl-C)"
    return word, detail


_PARAM_KEYS = ("command", "seed", "cases", "dtype", "fd_mode", "wall_seconds")
_PARAM_LABELS = {
    "command": "command",
    "seed": "seed",
    "cases": "cases",
    "dtype": "dtype",
    "fd_mode": "finite differences",
    "wall_seconds": "wall time",
}
_RESERVED_META = {"title", "shrunk", "depth_by_case"}


def _params(meta: Mapping) -> list[tuple[str, str, str]]:
    """``(key, label, text)`` of the run parameters: known keys first, then other scalars."""
    out = []
    for key in _PARAM_KEYS:
        if key in meta and meta[key] is not None:
            out.append((key, _PARAM_LABELS[key], _fmt_value(key, meta[key])))
    for key, value in meta.items():
        if key in _PARAM_KEYS or key in _RESERVED_META:
            continue
        if isinstance(value, str | int | float | bool | np.integer | np.floating):
            out.append((str(key), str(key), _fmt_value(str(key), value)))
    return out


def _title(meta: Mapping) -> str:
    return str(meta.get("title") or "refbp report")


def _shrunk(meta: Mapping) -> list[Mapping]:
    shrunk = meta.get("shrunk") or []
    return [s for s in shrunk if isinstance(s, Mapping)]


def _shrunk_line(s: Mapping) -> str:
    """``depth 3, batch 2 · diverges at layer 2 dL/dW (refbp~torch), max rel err 5.0e-1 — hint``."""
    bits = []
    if s.get("depth") is not None:
        bits.append(f"depth {s['depth']}")
    if s.get("batch") is not None:
        bits.append(f"batch {s['batch']}")
    head = ", ".join(bits)
    fd = s.get("first_divergence")
    if isinstance(fd, Mapping) and fd:
        where = f"diverges at layer {fd.get('layer', '?')} {fd.get('quantity', '?')} ({fd.get('pair', '?')})"
        if fd.get("max_rel_err") is not None:
            where += f", max rel err {fmt_sci(fd.get('max_rel_err'))}"
        if fd.get("diagnosis"):
            where += f" — {fd['diagnosis']}"
        head = f"{head} · {where}" if head else where
    return head


# --------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def _md_text(text: Any) -> str:
    """Plain text for a Markdown table cell or line: escaped, on one line."""
    s = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(s, quote=False))


def _md_code(text: Any) -> str:
    """Inline code for ``text`` (any backticks inside handled); pipes escaped for tables."""
    s = " ".join(str(text).split())
    if not s:
        return ""
    run = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (run + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}".replace("|", "\\|")


def _md_fence(text: str, lang: str) -> str:
    run = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * max(3, run + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _md_table(headers: list[str], rows: list[list[str]], right: Iterable[int] = ()) -> str:
    right = set(right)
    head = "| " + " | ".join(headers) + " |"
    rule = "| " + " | ".join("---:" if i in right else "---" for i in range(len(headers))) + " |"
    body = ["| " + " | ".join(cell if cell else " " for cell in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def _counts_table_rows(summary: Mapping) -> tuple[list[str], list[list[str]]]:
    pairs = list(summary["counts_by_pair_status"])
    headers = ["status", *pairs, "total"]
    rows = []
    for status, total in summary["counts_by_status"].items():
        cells = [_fmt_int(summary["counts_by_pair_status"][p].get(status, 0)) for p in pairs]
        rows.append([status, *cells, _fmt_int(total)])
    return headers, rows


def _where(w: Mapping) -> tuple[str, str, str]:
    return str(w.get("case") or ""), str(w.get("layer")), str(w.get("worst_index") or "")


def render_markdown(summary: Mapping) -> str:
    """The Markdown report for ``summary`` (from :func:`summarise`)."""
    meta = summary.get("meta") or {}
    word, detail = _verdict_parts(summary)
    lines = [f"## {_md_text(_title(meta))}", "", f"**{word}** — {_md_text(detail)}", ""]

    params = [(k, label, text) for k, label, text in _params(meta) if k != "command"]
    if params:
        lines += [" · ".join(f"{_md_text(label)}: {_md_code(text)}" for _, label, text in params), ""]
    if meta.get("command"):
        lines += [_md_fence(str(meta["command"]), "sh"), ""]

    if summary["n_rows"] == 0:
        lines += ["No rows: nothing was compared.", ""]
        return "\n".join(lines).rstrip() + "\n"

    headers, rows = _counts_table_rows(summary)
    lines += ["### Counts by status", "", _md_table(headers, rows, right=range(1, len(headers))), ""]

    worst_rows = []
    for w in summary["worst"]:
        case, layer, index = _where(w)
        where = f"{_md_code(case)}, layer {layer}" + (f", {_md_code(index)}" if index else "")
        status = w["status"] if w["n_failing"] == 0 else f"**{w['n_failing']} failing**"
        worst_rows.append(
            [
                _md_code(w["quantity"]),
                _md_text(w["pair"]),
                _fmt_err(w["max_rel_err"], w["status"]),
                _fmt_tol(w["rtol"], w["atol"]),
                status,
                where,
            ]
        )
    lines += [
        "### Worst error per quantity",
        "",
        _md_table(["quantity", "pair", "max rel err", "tolerance", "status", "where"], worst_rows, right=[2]),
        "",
    ]

    divergences = summary["first_divergence"]
    if divergences:
        div_rows = [
            [
                _md_code(d["case"]),
                str(d["layer"]),
                _md_code(d["quantity"]),
                _md_text(d["pair"] + (" (+ " + ", ".join(d["also_pairs"]) + ")" if d["also_pairs"] else "")),
                d["status"],
                _fmt_err(d["max_rel_err"], d["status"]),
                _md_text(d.get("diagnosis") or ""),
            ]
            for d in divergences[:_MD_DIVERGENCE_CAP]
        ]
        lines += [
            "### Where it diverges",
            "",
            _md_table(
                ["case", "layer", "quantity", "pair", "status", "max rel err", "diagnosis"], div_rows, right=[1, 5]
            ),
        ]
        if len(divergences) > _MD_DIVERGENCE_CAP:
            lines += ["", f"… and {_fmt_int(len(divergences) - _MD_DIVERGENCE_CAP)} more failing cases"]
        lines += [""]

    shrunk = _shrunk(meta)
    if shrunk:
        lines += ["### Shrunk failures", ""]
        for number, s in enumerate(shrunk[:_MD_SHRUNK_CAP], start=1):
            signature = s.get("signature") or f"failure {number}"
            lines += [f"**{number}.** {_md_code(signature)}"]
            line = _shrunk_line(s)
            if line:
                lines += ["", _md_text(line)]
            if s.get("description"):
                lines += ["", _md_text(s["description"])]
            if s.get("case") is not None:
                lines += ["", _md_fence(json.dumps(_jsonable(s["case"]), indent=2, ensure_ascii=False), "json")]
            if s.get("replay"):
                lines += ["", _md_fence(str(s["replay"]), "sh")]
            lines += [""]
        if len(shrunk) > _MD_SHRUNK_CAP:
            lines += [f"… and {_fmt_int(len(shrunk) - _MD_SHRUNK_CAP)} more shrunk failures", ""]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- HTML


def _e(text: Any) -> str:
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
    return f' <span class="muted">(+ {_e(", ".join(pairs))})</span>' if pairs else ""


def _html_table(headers: list[str], rows: list[list[str]], *, num: Iterable[int] = (), cls: str = "") -> str:
    """A table; ``rows`` cells are HTML already (escape before)."""
    num = set(num)
    head = "".join(f"<th{' class=num' if i in num else ''}>{_e(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in num else ''}>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table class="{_e(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


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
        f'aria-label="worst relative error per layer and quantity, {_e(pair)}" class="heatmap">',
        f'<defs><linearGradient id="scale{index}" x1="0" x2="1" y1="0" y2="0">'
        + "".join(f'<stop offset="{t * 100:.1f}%" stop-color="{c}"/>' for t, c in _VIRIDIS)
        + "</linearGradient></defs>",
    ]
    for j, q in enumerate(quantities):
        x = left + j * cell_w + cell_w / 2
        parts.append(f'<text x="{x:.0f}" y="{top - 10}" text-anchor="middle" class="qlabel">{_e(q)}</text>')
    for layer in range(depth + 1):
        y = top + layer * cell_h
        label = str(layer)
        if layer == 0:
            label = f"{layer} (input)"
        elif layer == depth and same_depth:
            label = f"{layer} (output)"
        parts.append(
            f'<text x="{left - 8}" y="{y + cell_h / 2 + 4:.0f}" text-anchor="end" class="llabel">{_e(label)}</text>'
        )
        for j, q in enumerate(quantities):
            x = left + j * cell_w
            g = groups.get((layer, q))
            if g is None:
                parts.append(
                    f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{_EMPTY_COLOUR}">'
                    f"<title>{_e(f'{pair} · layer {layer} · {q}: no rows')}</title></rect>"
                )
                continue
            n_fail = int(g["_failing"].sum())
            fail_counts = g.loc[g["_failing"], "status"].value_counts()
            worst = _worst_row(g, g["_failing"])
            if _finite(worst["max_rel_err"]):
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
                tip += ", " + ", ".join(_plural(int(n), s) for s, n in fail_counts.items())
            cell = [f"<g><title>{_e(tip)}</title>"]
            cell.append(f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{fill}"/>')
            if n_fail:
                cell.append(
                    f'<rect x="{x + 2.5}" y="{y + 2.5}" width="{cell_w - 5}" height="{cell_h - 5}" fill="none" '
                    f'stroke="{_FAIL_COLOUR}" stroke-width="3" class="failing"/>'
                )
            weight = ' font-weight="700"' if n_fail else ""
            cell.append(
                f'<text x="{x + cell_w / 2:.0f}" y="{y + cell_h / 2 + 4:.0f}" text-anchor="middle" '
                f'fill="{_ink(fill)}" class="cval"{weight}>{_e(("✕ " if n_fail else "") + text)}</text></g>'
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
            f'<text x="{tx:.1f}" y="{legend_y + 29}" text-anchor="middle" class="tick">{_e(label)}</text>'
        )
    tols = sub.loc[np.isfinite(sub["rtol"]) & (sub["rtol"] > 0), ["dtype", "rtol"]].drop_duplicates()
    for t in tols.itertuples(index=False):
        tx = left + (min(max(math.log10(t.rtol), _LOG_LO), _LOG_HI) - _LOG_LO) / span * bar_w
        parts.append(
            f'<path d="M{tx - 4:.1f},{legend_y - 7} L{tx + 4:.1f},{legend_y - 7} L{tx:.1f},{legend_y - 1} Z" '
            f'fill="{_FAIL_COLOUR}"><title>{_e(f"rtol {fmt_sci(t.rtol, 1)} ({t.dtype})")}</title></path>'
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
            f'<text x="{sx + 22}" y="{sy + 10}" class="tick">{_e(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
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
    word, detail = _verdict_parts(summary)
    title = _title(meta)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} — {word}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<div class="banner {word.lower()}" role="status"><b>{word}</b> {_e(detail)}</div>',
    ]

    params = _params(meta)
    if params:
        kv = "".join(
            f"<tr><th>{_e(label)}</th><td>{f'<code>{_e(text)}</code>' if key == 'command' else _e(text)}</td></tr>"
            for key, label, text in params
        )
        out.append(f'<h2>Run parameters</h2><table class="kv"><tbody>{kv}</tbody></table>')

    if summary["n_rows"] == 0:
        out.append('<p class="muted">No rows: nothing was compared.</p>')
    else:
        headers, rows_ = _counts_table_rows(summary)
        cells = []
        for row in rows_:
            status = row[0]
            bad = status in FAILING_STATUSES and row[-1] != "0"
            cells.append([f'<span class="bad">{_e(c)}</span>' if bad else _e(c) for c in row])
        out.append("<h2>Counts by status</h2>")
        out.append(_html_table(headers, cells, num=range(1, len(headers)), cls="counts"))

        # Heat maps
        depths = _depths(df, meta)
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
        for i, pair in enumerate(_ordered(df["pair"], PAIRS)):
            svg = _heatmap_svg(df, pair, i, depth, same_depth=same_depth)
            out.append(f"<figure><figcaption>{_e(pair)}</figcaption>{svg}</figure>")
        out.append("</div>")

        worst_rows = []
        for w in summary["worst"]:
            case, layer, index = _where(w)
            where = f"<code>{_e(case)}</code>, layer {_e(layer)}" + (f", <code>{_e(index)}</code>" if index else "")
            failing = w["n_failing"] > 0
            status = f'<span class="bad">{w["n_failing"]} failing</span>' if failing else _e(w["status"])
            worst_rows.append(
                [
                    f"<code>{_e(w['quantity'])}</code>",
                    _e(w["pair"]),
                    _e(_fmt_err(w["max_rel_err"], w["status"])),
                    _e(_fmt_tol(w["rtol"], w["atol"])),
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
                    f"<code>{_e(d['case'])}</code>",
                    _e(d["layer"]),
                    f"<code>{_e(d['quantity'])}</code>",
                    _e(d["pair"]) + _also_html(d["also_pairs"]),
                    f'<span class="bad">{_e(d["status"])}</span>',
                    _e(_fmt_err(d["max_rel_err"], d["status"])),
                    _e(d.get("diagnosis") or ""),
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
                out.append(f'<p class="muted">… and {_fmt_int(more)} more failing cases (see the JSON).</p>')

    shrunk = _shrunk(meta)
    if shrunk:
        out.append("<h2>Shrunk failures</h2>")
        for number, s in enumerate(shrunk, start=1):
            signature = s.get("signature") or f"failure {number}"
            block = [f'<div class="shrunk"><h3>{number}. <code>{_e(signature)}</code></h3>']
            line = _shrunk_line(s)
            if line:
                block.append(f"<p>{_e(line)}</p>")
            if s.get("description"):
                block.append(f'<p class="muted">{_e(s["description"])}</p>')
            if s.get("case") is not None:
                case_json = json.dumps(_jsonable(s["case"]), indent=2, ensure_ascii=False)
                block.append(f"<details><summary>case</summary><pre><code>{_e(case_json)}</code></pre></details>")
            if s.get("replay"):
                block.append(f'<p class="muted">replay:</p><pre><code>{_e(s["replay"])}</code></pre>')
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
                f"<code>{_e(r['case'])}</code>",
                _e(r["layer"]),
                f"<code>{_e(r['quantity'])}</code>",
                _e(r["pair"]),
                f'<span class="bad">{_e(r["status"])}</span>',
                _e(_fmt_err(r["max_rel_err"], r["status"])),
                _e(fmt_sci(r["max_abs_err"])),
                _e(_fmt_tol(r["rtol"], r["atol"])),
                f"<code>{_e(r['worst_index'] or '')}</code>",
                _e(_fmt_num(r["worst_left"], "nan")),
                _e(_fmt_num(r["worst_right"], "nan")),
                _e(_fmt_int(r["n_entries"])),
                _e(_fmt_int(r["n_kink"])),
                _e(r["dtype"]),
                _e(r.get("diagnosis") or ""),
                _e(r["message"] or ""),
            ]
            for r in failing_rows[:_HTML_FAILING_CAP]
        ]
        table = _html_table(headers, table_rows, num=[1, 5, 6, 9, 10, 11, 12], cls="rows")
        note = ""
        if len(failing_rows) > _HTML_FAILING_CAP:
            note = (
                f'<p class="muted">Showing the first {_fmt_int(_HTML_FAILING_CAP)} of '
                f"{_fmt_int(len(failing_rows))} failing rows; the CSV and JSON hold them all.</p>"
            )
        out.append(
            f"<h2>Failing rows</h2><details><summary>{_fmt_int(len(failing_rows))} failing "
            f"row{'s' if len(failing_rows) != 1 else ''}</summary>{note}"
            f'<div class="scroll">{table}</div></details>'
        )

    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- files


def write_reports(
    out_dir: Path | str,
    rows: pd.DataFrame | Iterable[Row | Mapping] | None,
    meta: Mapping,
    *,
    stem: str = "sweep",
) -> dict[str, Path]:
    """Write ``{stem}.csv``, ``.json``, ``.md`` and ``.html`` into ``out_dir``, each atomically.

    Everything is rendered before anything is written. Returns the paths keyed
    ``"csv"``, ``"json"``, ``"md"``, ``"html"``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df = as_frame(rows)
    summary = summarise(df, meta)
    paths = {kind: out_dir / f"{stem}.{kind}" for kind in REPORT_KINDS}
    texts = {
        paths["csv"]: df.to_csv(index=False, lineterminator="\n"),
        paths["json"]: json.dumps(summary, indent=2, allow_nan=False, ensure_ascii=False) + "\n",
        paths["md"]: render_markdown(summary),
        paths["html"]: render_html(summary, df),
    }
    write_atomically(texts)
    return paths
