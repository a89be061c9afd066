"""Reports of a worked-example check: one claim table per example, as text, Markdown, HTML and JSON.

Every report is rendered from the summary of :func:`summarise` (a plain dict, exactly
what the JSON holds), so the four always say the same. Columns of a claim table:

``where``       the part of the exercise and the gradient-descent step (blank: part and step 0)
``claim``       the reference as written in the file (the notes' notation)
``printed``     the number as printed
``should read`` the true value written with the printed precision
``computed``    refbp's value, 6 significant digits
``status``      ``ok`` / ``hand-rounded`` / ``wrong`` / ``follows`` / ``unsupported`` / ``disagree``
``checked by``  which of refbp, torch and finite differences agree
``hint``        for a wrong claim, the likely cause (see :mod:`worked.hints`); for ``follows``,
                the wrong claim it follows from; for a wrong formula, its counterexample

A formula is a row too: ``where`` is ``formula``, ``claim`` its left side and ``printed`` its
right side. The verdict counts root mistakes (``wrong``) apart from ``follows``.

Files (each written atomically, all rendered before any is written):
``worked_examples.json``, ``worked_examples.md``, ``worked_examples.html`` in the output
folder, plus an optional extra copy of the JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from oracle.report_html import PAGE_CSS as _CSS
from oracle.report_html import escape_html as _e
from oracle.report_markdown import md_code as _md_code
from oracle.report_markdown import md_table as _md_table
from oracle.report_markdown import md_text as _md_text
from oracle.report_table import jsonable as _jsonable
from refbp.output_paths import write_atomically
from worked.formula_check import FormulaResult
from worked.results import FAILING, STATUSES, ClaimResult

STEM = "worked_examples"
HEADERS = ("where", "claim", "printed", "should read", "computed", "status", "checked by", "hint")


def formula_record(result: FormulaResult) -> dict[str, Any]:
    """One formula as a JSON-ready dict (the same columns as a claim, plus the counterexample)."""
    formula = result.formula
    counterexample = None
    if result.status != "ok" and result.claimed is not None:
        counterexample = {"point": result.point, "claimed": result.claimed, "true": result.true}
    return {
        "kind": "formula",
        "part": "",
        "step": 0,
        "where": "formula",
        "claim": formula.text,
        "entry": formula.kind,
        "line": formula.line,
        "printed": formula.claimed,
        "should_read": "" if counterexample is None else f"{result.true:.6g}",
        "computed": result.true,
        "computed_by": {},
        "status": result.status,
        "match": "",
        "units_off": 0.0,
        "slack_units": 0.0,
        "checked_by": f"{result.agreement}, {result.points} point{'s' * (result.points != 1)}",
        "hint": result.hint,
        "note": "",
        "follows_from": "",
        "counterexample": counterexample,
    }


def claim_record(result: ClaimResult | FormulaResult) -> dict[str, Any]:
    """One claim (or formula) as a JSON-ready dict."""
    if isinstance(result, FormulaResult):
        return formula_record(result)
    claim = result.claim
    return {
        "part": result.part,
        "step": claim.step,
        "where": result.where,
        "claim": claim.reference,
        "entry": claim.entry.canonical(),
        "line": claim.line,
        "printed": claim.printed.text,
        "should_read": result.should_read,
        "computed": result.value,
        "computed_by": dict(result.by),
        "status": result.status,
        "match": result.match,
        "units_off": result.units_off,
        "slack_units": claim.slack_units,
        "checked_by": result.agreement,
        "hint": result.hint,
        "note": claim.note,
        "follows_from": result.follows_from,
        "kind": "claim",
    }


def summarise(
    checked: Sequence[tuple[Any, list[ClaimResult | FormulaResult]]], meta: Mapping[str, Any]
) -> dict[str, Any]:
    """The whole run as one dict: verdict, counts by status, and every example's claims."""
    examples = []
    counts = dict.fromkeys(STATUSES, 0)
    for example, results in checked:
        records = [claim_record(r) for r in results]
        for record in records:
            counts[record["status"]] += 1
        examples.append(
            {
                "title": example.title,
                "file": example.source,
                "source": example.origin,
                "n_claims": len(records),
                "n_wrong": sum(r["status"] == "wrong" for r in records),
                "n_follows": sum(r["status"] == "follows" for r in records),
                "claims": records,
            }
        )
    failing = sum(counts[s] for s in FAILING)
    return _jsonable(
        {
            "schema": 1,
            "meta": dict(meta),
            "verdict": "fail" if failing else "pass",
            "n_examples": len(examples),
            "n_claims": sum(counts.values()),
            "counts_by_status": counts,
            "root_mistakes": counts["wrong"],
            "follow_on_mistakes": counts["follows"],
            "wrong": [
                {"file": e["file"], "where": c["where"], "claim": c["claim"], "printed": c["printed"],
                 "should_read": c["should_read"], "hint": c["hint"], "status": c["status"]}
                for e in examples for c in e["claims"] if c["status"] in ("wrong", "follows")
            ],
            "examples": examples,
        }
    )  # fmt: skip


def _computed(record: Mapping[str, Any]) -> str:
    value = record["computed"]
    if value is None:
        return "" if record.get("kind") == "formula" else "nan"
    return f"{value:.6g}"


def _cells(record: Mapping[str, Any]) -> list[str]:
    hint = record["hint"] or ""
    if record["note"]:
        hint = f"{hint} [{record['note']}]" if hint else f"[{record['note']}]"
    return [
        record["where"],
        record["claim"],
        record["printed"],
        record["should_read"],
        _computed(record),
        record["status"],
        record["checked_by"],
        hint,
    ]


def _verdict_line(summary: Mapping[str, Any]) -> str:
    counts = summary["counts_by_status"]
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s))
    word = "PASS" if summary["verdict"] == "pass" else "FAIL"
    n, claims = summary["n_examples"], summary["n_claims"]
    line = f"{word}: {n} worked example{'s' * (n != 1)}, {claims} claim{'s' * (claims != 1)} ({parts})"
    if counts.get("follows"):
        roots = counts.get("wrong", 0)
        line += f"; {roots} root mistake{'s' * (roots != 1)}, {counts['follows']} following from them"
    return line


def render_text(summary: Mapping[str, Any]) -> str:
    """The terminal view: one table per example, then the verdict."""
    out = []
    for example in summary["examples"]:
        out.append(f"{example['title']}  ({example['file']})")
        rows = [_cells(r) for r in example["claims"]]
        out.append(tabulate(rows, headers=HEADERS, tablefmt="simple", disable_numparse=True))
        out.append("")
    out.append(_verdict_line(summary))
    return "\n".join(out)


def render_markdown(summary: Mapping[str, Any]) -> str:
    """The Markdown report: the verdict, the wrong claims first, then every example's table."""
    lines = ["## Worked examples", "", f"**{_md_text(_verdict_line(summary))}**", ""]
    if summary["wrong"]:
        lines += ["### Wrong claims", ""]
        rows = [
            [_md_code(w["file"]), _md_text(w["where"]), _md_code(w["claim"]), _md_code(w["printed"]),
             _md_code(w["should_read"]), _md_text(w["hint"])]
            for w in summary["wrong"]
        ]  # fmt: skip
        lines += [_md_table(["file", "where", "claim", "printed", "should read", "hint"], rows), ""]
    for example in summary["examples"]:
        lines += [f"### {_md_text(example['title'])}", ""]
        source = f" — {_md_text(example['source'])}" if example["source"] else ""
        lines += [f"{_md_code(example['file'])}{source}", "", _counts(example, "**{}**"), ""]
        rows = []
        for record in example["claims"]:
            cells = _cells(record)
            status = f"**{cells[5]}**" if record["status"] in FAILING else cells[5]
            status = f"_{status}_" if record["status"] == "hand-rounded" else status
            rows.append(
                [_md_text(cells[0]), _md_code(cells[1]), _md_code(cells[2]), _md_code(cells[3]), cells[4], status,
                 _md_text(cells[6]), _md_text(cells[7])]
            )  # fmt: skip
        lines += [_md_table(list(HEADERS), rows, right=[4]), ""]
    return "\n".join(lines).rstrip() + "\n"


_WORKED_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, "PingFang SC",
       "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
       sans-serif; }
table.claims td, table.claims th { white-space: nowrap; }
table.claims td.hint { white-space: normal; min-width: 260px; max-width: 460px; }
table.claims tbody tr.wrong td { background: var(--bad-bg); }
table.claims tbody tr.wrong td.status { color: var(--bad); font-weight: 600; }
p.counts { margin: 2px 0 6px; }
span.hand { color: #8a6100; font-style: italic; }
"""

_CODE = (1, 2, 3)


def _html_claims(
    headers: Sequence[str], rows: Sequence[tuple[list[str], bool]], *, num: Sequence[int], status: int | None
) -> str:
    """A claim table: ``rows`` are (escaped cells, failing?) pairs; the last column holds the hint.

    Numbers are right-aligned in the ``num`` columns; a failing row is shaded, its ``status`` cell in red.
    """
    last = len(headers) - 1

    def attrs(i: int) -> str:
        names = [name for name, on in (("num", i in num), ("status", i == status), ("hint", i == last)) if on]
        return f' class="{" ".join(names)}"' if names else ""

    head = "".join(f"<th{' class=num' if i in num else ''}>{_e(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        ('<tr class="wrong">' if failing else "<tr>")
        + "".join(f"<td{attrs(i)}>{cell}</td>" for i, cell in enumerate(cells))
        + "</tr>"
        for cells, failing in rows
    )
    return (
        f'<div class="scroll"><table class="claims"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def _html_cells(record: Mapping[str, Any]) -> list[str]:
    out = [_e(c) for c in _cells(record)]
    for i in _CODE:
        out[i] = f"<code>{out[i]}</code>"
    if record["status"] in FAILING:
        out[5] = f'<span class="bad">{out[5]}</span>'
    elif record["status"] == "hand-rounded":
        out[5] = f'<span class="hand">{out[5]}</span>'
    return out


def _counts(example: Mapping[str, Any], failing: str = "{}") -> str:
    """``40 claims: 39 ok, 1 wrong``, each failing count written through the ``failing`` template."""
    n = example["n_claims"]
    by = [(status, sum(r["status"] == status for r in example["claims"])) for status in STATUSES]
    parts = [
        failing.format(f"{count} {status}") if status in FAILING else f"{count} {status}"
        for status, count in by
        if count
    ]
    return f"{n} claim{'s' * (n != 1)}: " + ", ".join(parts)


def render_html(summary: Mapping[str, Any]) -> str:
    """One self-contained page: the verdict, the wrong claims, then a claim table per example."""
    word = "PASS" if summary["verdict"] == "pass" else "FAIL"
    verdict = _verdict_line(summary).split(": ", 1)[1]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Worked examples — {word}</title>",
        f"<style>{_CSS}{_WORKED_CSS}</style></head><body><main>",
        "<h1>Worked examples</h1>",
        f'<div class="banner {word.lower()}" role="status"><b>{word}</b> {_e(verdict)}</div>',
    ]
    if summary["wrong"]:
        out.append("<h2>Wrong claims</h2>")
        rows = [
            (
                [f"<code>{_e(w['file'])}</code>", _e(w["where"]), f"<code>{_e(w['claim'])}</code>",
                 f"<code>{_e(w['printed'])}</code>", f"<code>{_e(w['should_read'])}</code>", _e(w["hint"])],
                False,
            )
            for w in summary["wrong"]
        ]  # fmt: skip
        headers = ["file", "where", "claim", "printed", "should read", "hint"]
        out.append(_html_claims(headers, rows, num=(3, 4), status=None))
    for example in summary["examples"]:
        out.append(f"<h2>{_e(example['title'])}</h2>")
        source = f" — {_e(example['source'])}" if example["source"] else ""
        out.append(f'<p class="muted"><code>{_e(example["file"])}</code>{source}</p>')
        counts = _counts(example, '<span class="bad">{}</span>')
        out.append(f'<p class="counts">{counts}</p>')
        rows = [(_html_cells(r), r["status"] in FAILING) for r in example["claims"]]
        out.append(_html_claims(HEADERS, rows, num=(2, 3, 4), status=5))
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def write_reports(out_dir: Path | str, summary: Mapping[str, Any], json_copy: Path | str | None = None) -> list[Path]:
    """Write ``worked_examples.{json,md,html}`` into ``out_dir`` (and the JSON to ``json_copy``); return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    files = {
        out_dir / f"{STEM}.json": text,
        out_dir / f"{STEM}.md": render_markdown(summary),
        out_dir / f"{STEM}.html": render_html(summary),
    }
    if json_copy is not None:
        json_copy = Path(json_copy)
        json_copy.parent.mkdir(parents=True, exist_ok=True)
        files[json_copy] = text
    write_atomically(files)
    return list(files)
