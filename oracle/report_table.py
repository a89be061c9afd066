"""The tidy table of comparison rows and its summary: what every report is rendered from."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oracle.compare import FAILING_STATUSES, PAIRS, STATUSES, Row, divergence_rank
from oracle.report_format import fmt_int, fmt_sci, fmt_value, plural, quantity_label

#: Columns of the tidy table: the fields of :class:`Row`, then ``diagnosis``.
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Row)) + (
    () if "diagnosis" in {f.name for f in fields(Row)} else ("diagnosis",)
)
#: Column order of the heat maps and of the per-quantity tables.
QUANTITY_ORDER = ("z", "a", "loss", "dL/da", "delta", "dL/dW", "dL/db", "dL/dx")

_FLOAT_COLUMNS = ("max_abs_err", "max_rel_err", "rtol", "atol", "worst_left", "worst_right")
_INT_COLUMNS = ("layer", "n_entries", "n_kink")
_TEXT_COLUMNS = ("case", "quantity", "pair", "status", "worst_index", "dtype", "message", "diagnosis")


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
            df[col] = np.nan if col in (*_FLOAT_COLUMNS, "step") else (0 if col in _INT_COLUMNS else "")
    for col in _FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in _INT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0).astype(int)
    df["step"] = pd.to_numeric(df["step"], errors="coerce").astype("Int64")  # a time step, or <NA>
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


def in_order(values: Iterable[str], order: Iterable[str]) -> list[str]:
    present = list(dict.fromkeys(values))
    known = [v for v in order if v in present]
    return known + sorted(v for v in present if v not in known)


def _quantity_key(q: str) -> int:
    return QUANTITY_ORDER.index(q) if q in QUANTITY_ORDER else len(QUANTITY_ORDER)


def _pair_key(p: str) -> int:
    return PAIRS.index(p) if p in PAIRS else len(PAIRS)


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars unwrapped and non-finite floats as ``None``."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
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
    return [jsonable(r) for r in df.to_dict(orient="records")]


# --------------------------------------------------------------------------- summary


def case_depths(df: pd.DataFrame, meta: Mapping) -> dict[str, int]:
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
    depths = case_depths(df, meta)
    out = []
    for case, group in failing.groupby("case", sort=False):
        depth = depths.get(str(case), int(group["layer"].max()))
        keys = [
            (divergence_rank(int(r.layer), str(r.quantity), depth, _step(r.step)), _pair_key(str(r.pair)))
            for r in group.itertuples(index=False)
        ]
        best = min(range(len(keys)), key=keys.__getitem__)
        row = group.iloc[best]
        same_step = group["step"].isna() if pd.isna(row["step"]) else group["step"].eq(row["step"]).fillna(False)
        also = group[
            (group["layer"] == row["layer"])
            & (group["quantity"] == row["quantity"])
            & same_step
            & (group["pair"] != row["pair"])
        ]
        out.append(
            jsonable(
                {
                    "case": row["case"],
                    "depth": depth,
                    "layer": row["layer"],
                    "quantity": row["quantity"],
                    "step": row["step"],
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


def _step(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def worst_row_of(group: pd.DataFrame, failing: pd.Series) -> pd.Series:
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
    """Per (quantity, pair): the worst row (see :func:`worst_row_of`) and where it occurs."""
    out = []
    if df.empty:
        return out
    failing = _failing_mask(df)
    for (quantity, pair), group in df.groupby(["quantity", "pair"], sort=False):
        row = worst_row_of(group, failing.loc[group.index])
        n_failing = int(failing.loc[group.index].sum())
        out.append(
            jsonable(
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
                    "step": row["step"],
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
    statuses = in_order(df["status"], STATUSES)
    counts = {s: 0 for s in STATUSES} | {s: int(n) for s, n in df["status"].value_counts().items()}
    by_pair: dict[str, dict[str, int]] = {}
    for pair in in_order(df["pair"], PAIRS):
        sub = df.loc[df["pair"] == pair, "status"].value_counts()
        by_pair[pair] = {s: int(sub.get(s, 0)) for s in in_order([*STATUSES, *statuses], STATUSES)}
    return {
        "schema": 1,
        "meta": jsonable(meta),
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


def verdict_parts(summary: Mapping) -> tuple[str, str]:
    """``("PASS" | "FAIL", "500 cases, 0 mismatches")``."""
    meta = summary.get("meta") or {}
    counts = summary["counts_by_status"]
    word = "PASS" if summary["verdict"] == "pass" else "FAIL"
    if summary["n_rows"] == 0:
        return word, "no rows (nothing was compared)"
    n_cases = meta.get("cases") if isinstance(meta.get("cases"), int) else summary["n_cases"]
    cases = f"{fmt_int(n_cases)} case{'' if n_cases == 1 else 's'}"
    if word == "PASS":
        detail = f"{cases}, 0 mismatches"
    else:
        parts = [plural(counts.get(s, 0), s) for s in FAILING_STATUSES if counts.get(s, 0)]
        n_fail = summary["n_failing_cases"]
        detail = f"{cases}, {fmt_int(n_fail)} failing case{'' if n_fail == 1 else 's'}: " + ", ".join(parts)
    if counts.get("kink", 0):
        detail += f" ({plural(counts['kink'], 'kink')})"
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


def run_parameters(meta: Mapping) -> list[tuple[str, str, str]]:
    """``(key, label, text)`` of the run parameters: known keys first, then other scalars."""
    out = []
    for key in _PARAM_KEYS:
        if key in meta and meta[key] is not None:
            out.append((key, _PARAM_LABELS[key], fmt_value(key, meta[key])))
    for key, value in meta.items():
        if key in _PARAM_KEYS or key in _RESERVED_META:
            continue
        if isinstance(value, str | int | float | bool | np.integer | np.floating):
            out.append((str(key), str(key), fmt_value(str(key), value)))
    return out


def report_title(meta: Mapping) -> str:
    return str(meta.get("title") or "refbp report")


def shrunk_cases(meta: Mapping) -> list[Mapping]:
    shrunk = meta.get("shrunk") or []
    return [s for s in shrunk if isinstance(s, Mapping)]


def shrunk_line(s: Mapping) -> str:
    """``depth 3, batch 2 · diverges at layer 2 dL/dW (refbp~torch), max rel err 5.0e-1 — hint``."""
    bits = []
    if s.get("depth") is not None:
        bits.append(f"depth {s['depth']}")
    if s.get("batch") is not None:
        bits.append(f"batch {s['batch']}")
    head = ", ".join(bits)
    fd = s.get("first_divergence")
    if isinstance(fd, Mapping) and fd:
        what = quantity_label(fd.get("quantity", "?"), fd.get("step"))
        where = f"diverges at layer {fd.get('layer', '?')} {what} ({fd.get('pair', '?')})"
        if fd.get("max_rel_err") is not None:
            where += f", max rel err {fmt_sci(fd.get('max_rel_err'))}"
        if fd.get("diagnosis"):
            where += f" — {fd['diagnosis']}"
        head = f"{head} · {where}" if head else where
    return head
