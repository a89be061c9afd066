"""Grader outputs: JSON, Gradescope's ``results.json``, JUnit XML, Markdown feedback, a summary table.

Everything is rendered from a :class:`~grading.grader.SubmissionResult` after the student
process is gone, then written atomically (all files staged first, then renamed into place).
Nothing rendered here holds a timestamp or a duration: the same submission graded with the
same seed gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from grading.checks import CheckRow
from grading.grader import SubmissionResult
from oracle.report import _write_all_atomically

FORMATS = ("json", "gradescope", "junit", "markdown")
#: File names inside a submission's output folder (``refbp grade``).
FOLDER_FILES = {"json": "result.json", "gradescope": "results.json", "junit": "junit.xml", "markdown": "feedback.md"}
_OUTPUT_CHARS = 4000


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def render_json(result: SubmissionResult) -> str:
    """``{"passed", "score", "max_score", "checks": [{"target", "quantity", "status", …}]}`` as text."""
    data = result.as_dict()
    data["checks"] = [{k: _clean(v) for k, v in row.items()} for row in data["checks"]]
    return _json(data)


def _row_line(row: CheckRow) -> str:
    parts = [row.status]
    if row.max_rel_err is not None and row.status != "ok":
        parts.append(f"max rel err {row.max_rel_err:.2e}")
    if row.message:
        parts.append(row.message)
    text = f"{row.quantity}: " + "; ".join(parts)
    return text + (f"\n  hint: {row.diagnosis}" if row.diagnosis else "")


def _groups(result: SubmissionResult) -> dict[str, list[CheckRow]]:
    groups: dict[str, list[CheckRow]] = {}
    for row in result.rows:
        groups.setdefault(row.check, []).append(row)
    return groups


def render_gradescope(result: SubmissionResult) -> str:
    """Gradescope's autograder ``results.json``: the total and one test per check (all its rows)."""
    tests = []
    for number, (name, rows) in enumerate(_groups(result).items(), start=1):
        tests.append(
            {
                "name": name,
                "number": str(number),
                "score": round(sum(r.score for r in rows), 6),
                "max_score": round(sum(r.max_score for r in rows), 6),
                "status": "passed" if all(r.passed for r in rows) else "failed",
                "output": "\n".join(_row_line(r) for r in rows),
                "visibility": "visible",
            }
        )
    verdict = "All checks pass." if result.passed else "Some checks fail: see each test for a hint."
    return _json(
        {
            "score": result.score,
            "output": f"{verdict} Interface {result.interface}, seed {result.seed}.",
            "visibility": "visible",
            "stdout_visibility": "visible",
            "tests": tests,
        }
    )


def render_junit(result: SubmissionResult) -> str:
    """JUnit XML: one ``testsuite`` for the submission, one ``testcase`` per check row."""
    failures = sum(1 for r in result.rows if r.status not in ("ok", "error", "timeout", "crashed"))
    errors = sum(1 for r in result.rows if r.status in ("error", "timeout", "crashed"))
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuites name={quoteattr("refbp grade")} tests="{len(result.rows)}" '
        f'failures="{failures}" errors="{errors}">',
        f'  <testsuite name={quoteattr(result.submission)} tests="{len(result.rows)}" '
        f'failures="{failures}" errors="{errors}">',
    ]
    for row in result.rows:
        classname, name = quoteattr(f"{result.interface}.{row.target}"), quoteattr(f"{row.check}: {row.quantity}")
        attrs = f"classname={classname} name={name}"
        if row.passed:
            lines.append(f"    <testcase {attrs}/>")
            continue
        tag = "error" if row.status in ("error", "timeout", "crashed") else "failure"
        lines += [
            f"    <testcase {attrs}>",
            f"      <{tag} type={quoteattr(row.status)} message={quoteattr(row.message or row.status)}>"
            f"{escape(_row_line(row))}</{tag}>",
            "    </testcase>",
        ]
    lines += ["  </testsuite>", "</testsuites>", ""]
    return "\n".join(lines)


def render_markdown(result: SubmissionResult) -> str:
    """Feedback for the student: the score, then per function what is wrong and a hint."""
    verdict = "all checks pass" if result.passed else "some checks fail"
    lines = [
        f"# Feedback for {result.submission}",
        "",
        f"Score: **{result.score:g} / {result.max_score:g}** — {verdict} "
        f"(interface `{result.interface}`, seed {result.seed}).",
        "",
        "| function | check | quantity | status | points |",
        "|---|---|---|---|---:|",
    ]
    for row in result.rows:
        cells = [row.target, row.check, row.quantity, row.status, f"{row.score:g}/{row.max_score:g}"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    failing = [r for r in result.rows if not r.passed]
    if failing:
        lines += ["", "## What to fix", ""]
        for row in failing:
            lines.append(f"- **{row.target}** ({row.check}), `{row.quantity}`: {row.status}. {row.message}".rstrip())
            if row.diagnosis:
                lines.append(f"  - Hint: {row.diagnosis}")
    if result.output.strip():
        lines += ["", "## Your program's output", "", "```text", result.output[:_OUTPUT_CHARS].rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


RENDERERS = {"json": render_json, "gradescope": render_gradescope, "junit": render_junit, "markdown": render_markdown}


def write_outputs(result: SubmissionResult, paths: Mapping[str, Path]) -> None:
    """Write each requested format (``{format: path}``) atomically."""
    texts = {}
    for kind, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        texts[Path(path)] = RENDERERS[kind](result)
    _write_all_atomically(texts)


def summary_rows(results: Sequence[SubmissionResult]) -> list[dict[str, Any]]:
    """One row per submission: name, score, max score, verdict, failing checks, first hint."""
    rows = []
    for result in results:
        failing = [r for r in result.rows if not r.passed]
        first = failing[0] if failing else None
        rows.append(
            {
                "submission": result.submission,
                "score": result.score,
                "max_score": result.max_score,
                "passed": result.passed,
                "failing": len(failing),
                "first_failure": f"{first.check}: {first.quantity} ({first.status})" if first else "",
                "hint": first.diagnosis if first else "",
            }
        )
    return rows


def write_summary(results: Sequence[SubmissionResult], folder: Path) -> dict[str, Path]:
    """``summary.md`` and ``summary.csv`` of every submission in ``folder``, atomically."""
    rows = summary_rows(results)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["submission"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    passed = sum(1 for r in rows if r["passed"])
    interface = results[0].interface if results else ""
    seed = results[0].seed if results else 0
    lines = [
        "# Grading summary",
        "",
        f"{len(rows)} submissions, {passed} pass every check (interface `{interface}`, seed {seed}).",
        "",
        "| submission | score | passed | failing | first failure | hint |",
        "|---|---:|---|---:|---|---|",
    ]
    for row in rows:
        cells = [
            row["submission"],
            f"{row['score']:g}/{row['max_score']:g}",
            "yes" if row["passed"] else "no",
            str(row["failing"]),
            row["first_failure"],
            row["hint"],
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    paths = {"md": folder / "summary.md", "csv": folder / "summary.csv"}
    folder.mkdir(parents=True, exist_ok=True)
    _write_all_atomically({paths["md"]: "\n".join(lines) + "\n", paths["csv"]: buffer.getvalue()})
    return paths
