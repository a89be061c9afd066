"""The Markdown report: a compact summary meant to be pasted into a pull request."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from oracle.report_format import fmt_err, fmt_int, fmt_tol, quantity_label
from oracle.report_table import jsonable, report_title, run_parameters, shrunk_cases, shrunk_line, verdict_parts

# Caps that keep the Markdown readable.
_MD_DIVERGENCE_CAP = 25
_MD_SHRUNK_CAP = 10


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def md_text(text: Any) -> str:
    """Plain text for a Markdown table cell or line: escaped, on one line."""
    s = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(s, quote=False))


def md_code(text: Any) -> str:
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


def md_table(headers: list[str], rows: list[list[str]], right: Iterable[int] = ()) -> str:
    right = set(right)
    head = "| " + " | ".join(headers) + " |"
    rule = "| " + " | ".join("---:" if i in right else "---" for i in range(len(headers))) + " |"
    body = ["| " + " | ".join(cell if cell else " " for cell in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def counts_table_rows(summary: Mapping) -> tuple[list[str], list[list[str]]]:
    pairs = list(summary["counts_by_pair_status"])
    headers = ["status", *pairs, "total"]
    rows = []
    for status, total in summary["counts_by_status"].items():
        cells = [fmt_int(summary["counts_by_pair_status"][p].get(status, 0)) for p in pairs]
        rows.append([status, *cells, fmt_int(total)])
    return headers, rows


def where_text(w: Mapping) -> tuple[str, str, str]:
    return str(w.get("case") or ""), str(w.get("layer")), str(w.get("worst_index") or "")


def render_markdown(summary: Mapping) -> str:
    """The Markdown report for ``summary`` (from :func:`summarise`)."""
    meta = summary.get("meta") or {}
    word, detail = verdict_parts(summary)
    lines = [f"## {md_text(report_title(meta))}", "", f"**{word}** — {md_text(detail)}", ""]

    params = [(k, label, text) for k, label, text in run_parameters(meta) if k != "command"]
    if params:
        lines += [" · ".join(f"{md_text(label)}: {md_code(text)}" for _, label, text in params), ""]
    if meta.get("command"):
        lines += [_md_fence(str(meta["command"]), "sh"), ""]

    if summary["n_rows"] == 0:
        lines += ["No rows: nothing was compared.", ""]
        return "\n".join(lines).rstrip() + "\n"

    headers, rows = counts_table_rows(summary)
    lines += ["### Counts by status", "", md_table(headers, rows, right=range(1, len(headers))), ""]

    worst_rows = []
    for w in summary["worst"]:
        case, layer, index = where_text(w)
        where = f"{md_code(case)}, layer {layer}" + (f", {md_code(index)}" if index else "")
        where += "" if w.get("step") is None else f", step {w['step']}"
        status = w["status"] if w["n_failing"] == 0 else f"**{w['n_failing']} failing**"
        worst_rows.append(
            [
                md_code(w["quantity"]),
                md_text(w["pair"]),
                fmt_err(w["max_rel_err"], w["status"]),
                fmt_tol(w["rtol"], w["atol"]),
                status,
                where,
            ]
        )
    lines += [
        "### Worst error per quantity",
        "",
        md_table(["quantity", "pair", "max rel err", "tolerance", "status", "where"], worst_rows, right=[2]),
        "",
    ]

    divergences = summary["first_divergence"]
    if divergences:
        div_rows = [
            [
                md_code(d["case"]),
                str(d["layer"]),
                md_code(quantity_label(d["quantity"], d.get("step"))),
                md_text(d["pair"] + (" (+ " + ", ".join(d["also_pairs"]) + ")" if d["also_pairs"] else "")),
                d["status"],
                fmt_err(d["max_rel_err"], d["status"]),
                md_text(d.get("diagnosis") or ""),
            ]
            for d in divergences[:_MD_DIVERGENCE_CAP]
        ]
        lines += [
            "### Where it diverges",
            "",
            md_table(
                ["case", "layer", "quantity", "pair", "status", "max rel err", "diagnosis"], div_rows, right=[1, 5]
            ),
        ]
        if len(divergences) > _MD_DIVERGENCE_CAP:
            lines += ["", f"… and {fmt_int(len(divergences) - _MD_DIVERGENCE_CAP)} more failing cases"]
        lines += [""]

    shrunk = shrunk_cases(meta)
    if shrunk:
        lines += ["### Shrunk failures", ""]
        for number, s in enumerate(shrunk[:_MD_SHRUNK_CAP], start=1):
            signature = s.get("signature") or f"failure {number}"
            lines += [f"**{number}.** {md_code(signature)}"]
            line = shrunk_line(s)
            if line:
                lines += ["", md_text(line)]
            if s.get("description"):
                lines += ["", md_text(s["description"])]
            if s.get("case") is not None:
                lines += ["", _md_fence(json.dumps(jsonable(s["case"]), indent=2, ensure_ascii=False), "json")]
            if s.get("replay"):
                lines += ["", _md_fence(str(s["replay"]), "sh")]
            lines += [""]
        if len(shrunk) > _MD_SHRUNK_CAP:
            lines += [f"… and {fmt_int(len(shrunk) - _MD_SHRUNK_CAP)} more shrunk failures", ""]
    return "\n".join(lines).rstrip() + "\n"
