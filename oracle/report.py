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

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from oracle.compare import Row
from oracle.report_format import fmt_sci
from oracle.report_html import render_html
from oracle.report_markdown import render_markdown
from oracle.report_table import COLUMNS, QUANTITY_ORDER, as_frame, summarise, verdict
from refbp.output_paths import write_atomically

__all__ = [
    "COLUMNS",
    "QUANTITY_ORDER",
    "REPORT_KINDS",
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
