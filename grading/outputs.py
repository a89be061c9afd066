"""Grader outputs: JSON, Gradescope's ``results.json``, JUnit XML, Markdown feedback, a summary table.

Everything is rendered from a :class:`~grading.grader.SubmissionResult` after the student
process is gone, then written atomically (all files staged first, then renamed into place).
Nothing rendered here holds a timestamp or a duration: the same submission graded with the
same seed gives byte-identical files.

``refbp check`` writes one file per format. ``refbp grade`` writes all four per submission
into its output folder (:data:`FOLDER_FILES`), the summary table, and, when asked, one
combined file for the whole folder (:data:`FOLDER_RENDERERS`: every result in one JSON, one
JUnit ``testsuite`` per submission, the summary followed by every feedback in Markdown).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from grading.checks import UNCHANGED, CheckRow
from grading.grader import SubmissionResult
from grading.isolation import WEAKEST
from grading.report_text import markdown_block, printable
from refbp.output_paths import write_atomically

FORMATS = ("json", "gradescope", "junit", "markdown")
#: File names inside a submission's output folder (``refbp grade``).
FOLDER_FILES = {"json": "result.json", "gradescope": "results.json", "junit": "junit.xml", "markdown": "feedback.md"}
_OUTPUT_CHARS = 4000
#: Statuses that JUnit reports as an ``error`` (the code did not produce a value) rather than a ``failure``.
_JUNIT_ERRORS = ("error", "timeout", "crashed")
#: Each status in plain words, for the student.
STATUS_WORDS = {
    "ok": "pass",
    "mismatch": "wrong values",
    "shape": "wrong shape",
    "nan": "NaN or infinity",
    "type": "not an array of numbers",
    "key": "missing key",
    "mutated": "changed an input in place",
    "missing": "not defined",
    "error": "raised an exception",
    "timeout": "took too long",
    "crashed": "crashed the process",
    "not_run": "not run (out of time)",
    "warn": "warning",
    "skipped": "optional, not submitted",
}


def isolation_words(result: SubmissionResult) -> str:
    """``"isolation namespaces"``, with the warning when the submission ran without an OS boundary."""
    text = f"isolation {result.isolation or 'unknown'}"
    return text + (" (no OS boundary)" if result.isolation == WEAKEST else "")


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _result_dict(result: SubmissionResult) -> dict[str, Any]:
    data = result.as_dict()
    data["checks"] = [{k: _clean(v) for k, v in row.items()} for row in data["checks"]]
    return data


def render_json(result: SubmissionResult) -> str:
    """``{"passed", "score", "max_score", "checks": [{"target", "quantity", "status", …}]}`` as text."""
    return _json(_result_dict(result))


def _row_line(row: CheckRow) -> str:
    parts = [row.status]
    if row.max_rel_err is not None and row.status != "ok":
        parts.append(f"max rel err {row.max_rel_err:.2e}")
    if row.message:
        parts.append(row.message)
    text = f"{row.quantity}: " + "; ".join(parts)
    return text + (f"\n  hint: {row.diagnosis}" if row.diagnosis else "")


def _groups(result: SubmissionResult, key: Callable[[CheckRow], str]) -> dict[str, list[CheckRow]]:
    """The rows by ``key`` (a check or a function name), in first-appearance order."""
    groups: dict[str, list[CheckRow]] = {}
    for row in result.rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def render_gradescope(result: SubmissionResult) -> str:
    """Gradescope's autograder ``results.json``: the total and one test per check (all its rows).

    Top level: ``score``, ``output``, ``visibility``, ``stdout_visibility``, ``tests``; each
    test: ``name``, ``number``, ``score``, ``max_score``, ``status`` (``passed``/``failed``),
    ``output``, ``visibility`` — the fields of Gradescope's autograder specification. No
    ``execution_time``: regrades stay identical.
    """
    tests = []
    for number, (name, rows) in enumerate(_groups(result, lambda r: r.check).items(), start=1):
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
    notes = "".join(f"\nNote: {note}" for note in result.notes)
    return _json(
        {
            "score": result.score,
            "output": f"{verdict} Assignment {result.assignment or result.interface}, seed {result.seed}, "
            f"{isolation_words(result)}.{notes}",
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": tests,
        }
    )


def _junit_counts(rows: Sequence[CheckRow]) -> tuple[int, int]:
    """``(failures, errors)`` among ``rows``."""
    errors = sum(1 for r in rows if r.status in _JUNIT_ERRORS)
    return sum(1 for r in rows if not r.passed) - errors, errors


def _junit_suite(result: SubmissionResult) -> list[str]:
    """The ``<testsuite>`` element of one submission, one ``<testcase>`` per check row, indented by two."""
    failures, errors = _junit_counts(result.rows)
    lines = [
        f'  <testsuite name={quoteattr(result.submission)} tests="{len(result.rows)}" '
        f'failures="{failures}" errors="{errors}">',
        f'    <properties><property name="isolation" value={quoteattr(result.isolation)}/></properties>',
    ]
    for row in result.rows:
        classname, name = quoteattr(f"{result.interface}.{row.target}"), quoteattr(f"{row.check}: {row.quantity}")
        attrs = f"classname={classname} name={name}"
        if row.passed:
            lines.append(f"    <testcase {attrs}/>")
            continue
        tag = "error" if row.status in _JUNIT_ERRORS else "failure"
        lines += [
            f"    <testcase {attrs}>",
            f"      <{tag} type={quoteattr(row.status)} message={quoteattr(row.message or row.status)}>"
            f"{escape(_row_line(row))}</{tag}>",
            "    </testcase>",
        ]
    return [*lines, "  </testsuite>"]


def _junit(results: Sequence[SubmissionResult]) -> str:
    """The ``<testsuites>`` document; every character a submission controls is printable (valid XML 1.0)."""
    rows = [row for result in results for row in result.rows]
    failures, errors = _junit_counts(rows)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuites name={quoteattr("refbp grade")} tests="{len(rows)}" failures="{failures}" errors="{errors}">',
        *(line for result in results for line in _junit_suite(result)),
        "</testsuites>",
        "",
    ]
    return printable("\n".join(lines))


def render_junit(result: SubmissionResult) -> str:
    """JUnit XML: one ``testsuite`` for the submission, one ``testcase`` per check row."""
    return _junit([result])


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def _bullet(part: Sequence[CheckRow], whole_check: bool, where: str) -> str:
    """One bullet for rows of one check that fail alike (``whole_check``: they are all of its rows)."""
    row = part[0]
    words = STATUS_WORDS.get(row.status, row.status)
    if whole_check:  # the check failed as a whole: no list of quantities
        if row.status == "missing":
            return f"- {_sentence(row.message)}"
        text = f"{words}{where}: {row.message}" if row.message else f"{words}{where}"
        return f"- {_sentence(text[0].upper() + text[1:])}"
    if row.status == "mutated":
        changed = ", ".join(f"`{name}`" for name in row.message.partition(": ")[2].split(", ") if name)
        return f"- It changed its argument{'s' if ',' in changed else ''} {changed} in place{where}."
    names = ", ".join("the inputs" if r.quantity == UNCHANGED else f"`{r.quantity}`" for r in part)
    if row.status == "error" and row.message.startswith("raised "):
        return f"- {names}{where}: {_sentence(row.message)}"
    detail = f" — {_sentence(row.message)}" if row.message else "."
    if row.status == "mismatch" and row.max_rel_err is not None:
        detail = f" (relative error up to {row.max_rel_err:.1e}){detail}"
    return f"- {names}{where}: {words}{detail}"


def _what_to_fix(rows: Sequence[CheckRow]) -> list[str]:
    """Bullets for the failing rows of one function: rows of a check that fail alike share one bullet.

    The inputs row of a check that did not complete says nothing new and is left out; a
    bullet is not repeated; a hint follows the run of bullets it explains.
    """
    items: list[tuple[str, str]] = []  # (bullet, hint)
    for check, group in itertools.groupby(rows, key=lambda r: r.check):
        rows_of_check = list(group)
        failing = [r for r in rows_of_check if not r.passed]
        if any(r.quantity != UNCHANGED for r in failing):
            failing = [r for r in failing if not (r.quantity == UNCHANGED and r.message.startswith("not checked"))]
        if not failing:
            continue
        alike = len(failing) > 1 and len({(r.status, r.message, r.diagnosis) for r in failing}) == 1
        where = "" if check == failing[0].target else f" in *{check}*"
        for part in [failing] if alike else [[r] for r in failing]:
            whole = len(part) == len(rows_of_check) > 1
            items.append(
                (_bullet(part, whole, "" if whole and part[0].status == "missing" else where), part[0].diagnosis)
            )
    lines: list[str] = []
    for hint, group in itertools.groupby(dict.fromkeys(items), key=lambda item: item[1]):
        lines += [bullet for bullet, _ in group]
        if hint:
            lines.append(f"  - Hint: {_sentence(hint)}")
    return lines


def render_markdown(result: SubmissionResult, level: int = 1) -> str:
    """Feedback for the student: the score, what to fix per function with hints, then every check.

    ``level`` is the level of the title heading (``refbp grade``'s combined file uses 2).
    """
    h = "#" * level
    by_function = _groups(result, lambda r: r.target)
    failing = [name for name, rows in by_function.items() if not all(r.passed for r in rows)]
    checks = _groups(result, lambda r: r.check)
    failed_checks = sum(1 for rows in checks.values() if not all(r.passed for r in rows))
    warned = [r for r in result.rows if r.status == "warn"]
    if not failing:
        verdict = f"all {len(checks)} checks pass" if len(checks) != 1 else "the check passes"
    else:
        fails = "fails" if failed_checks == 1 else "fail"
        names = ", ".join(f"`{name}`" for name in failing)
        verdict = f"{failed_checks} of {len(checks)} checks {fails}, in {names}"
    if warned:
        verdict += f" ({len(warned)} warning{'s' if len(warned) != 1 else ''}, costing no points)"
    lines = [
        f"{h} Feedback for {result.submission}",
        "",
        f"Score: **{result.score:g} / {result.max_score:g}** — {verdict}.",
        "",
        f"Each function was called on random inputs (assignment `{result.assignment or result.interface}`, "
        f"seed {result.seed}) and what it returned was compared with a reference solution; "
        f"the code ran with {isolation_words(result)}.",
    ]
    if result.notes:
        lines += ["", f"{h}# How your file was read", "", *(f"- {_sentence(note)}" for note in result.notes)]
    if failing and len({(r.status, r.message) for r in result.rows}) == 1:  # one cause for all: say it once
        cause = _sentence(result.rows[0].message)
        lines += ["", f"{h}# What to fix", "", f"- {cause[:1].upper()}{cause[1:]}"]
    elif failing:
        lines += ["", f"{h}# What to fix"]
        for name in failing:
            lines += ["", f"{h}## {name}", "", *_what_to_fix(by_function[name])]
    if warned:
        lines += ["", f"{h}# Warnings (no points lost)", ""]
        for line in dict.fromkeys(
            f"- *{r.check}*, {r.quantity}: {_sentence(r.message)}"
            + (f"\n  - Hint: {_sentence(r.diagnosis)}" if r.diagnosis else "")
            for r in warned
        ):
            lines.append(line)
    lines += ["", f"{h}# Points by function", "", "| function | points | result |", "|---|---:|---|"]
    for name, rows in by_function.items():
        points = f"{sum(r.score for r in rows):g}/{sum(r.max_score for r in rows):g}"
        bad = sorted({STATUS_WORDS.get(r.status, r.status) for r in rows if not r.passed})
        verdict = "pass" if any(r.status != "skipped" for r in rows) else STATUS_WORDS["skipped"]
        lines.append(f"| {_cell(name)} | {points} | {_cell('fail: ' + ', '.join(bad)) if bad else verdict} |")
    lines += ["", f"{h}# Every check", "", "| check | quantity | result | points |", "|---|---|---|---:|"]
    for row in result.rows:
        cells = [row.check, row.quantity, STATUS_WORDS.get(row.status, row.status), f"{row.score:g}/{row.max_score:g}"]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if result.output.strip():
        lines += ["", f"{h}# Your program's output", "", *markdown_block(result.output[:_OUTPUT_CHARS].rstrip("\n"))]
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[SubmissionResult], str]] = {
    "json": render_json,
    "gradescope": render_gradescope,
    "junit": render_junit,
    "markdown": render_markdown,
}


def write_outputs(result: SubmissionResult, paths: Mapping[str, Path]) -> None:
    """Write each requested format (``{format: path}``) atomically."""
    texts = {}
    for kind, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        texts[Path(path)] = RENDERERS[kind](result)
    write_atomically(texts)


def summary_rows(results: Sequence[SubmissionResult]) -> list[dict[str, Any]]:
    """One row per submission: name, score, max score, verdict, failing checks, warnings, first failure, its hint."""
    rows = []
    for result in results:
        failing = [r for r in result.rows if not r.passed]
        first = failing[0] if failing else None
        first_text = ""
        if first is not None:
            first_text = f"{first.check}: {first.quantity} ({first.status})" + (
                f": {first.message}" if first.message else ""
            )
        rows.append(
            {
                "submission": result.submission,
                "score": result.score,
                "max_score": result.max_score,
                "passed": result.passed,
                "isolation": result.isolation,
                "failing": len({r.check for r in failing}),
                "warnings": sum(1 for r in result.rows if r.status == "warn"),
                "first_failure": first_text,
                "hint": first.diagnosis if first else "",
            }
        )
    return rows


def render_summary(results: Sequence[SubmissionResult], total: int | None = None) -> str:
    """The summary table in Markdown: a count line, then one row per submission.

    ``total``: the submissions there were, when grading stopped (Ctrl-C) before all of them.
    """
    rows = summary_rows(results)
    passed = sum(1 for r in rows if r["passed"])
    assignment = (results[0].assignment or results[0].interface) if results else ""
    seed = results[0].seed if results else 0
    levels = ", ".join(sorted({isolation_words(r) for r in results}))
    lines = [
        "# Grading summary",
        "",
        f"{len(rows)} submissions, {passed} pass every check (assignment `{assignment}`, seed {seed}; {levels}).",
        "",
        *([f"interrupted: yes — {len(rows)} of {total} submissions graded.", ""] if total is not None else []),
        "| submission | score | passed | failing checks | warnings | first failure | hint |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    for row in rows:
        cells = [
            row["submission"],
            f"{row['score']:g}/{row['max_score']:g}",
            "yes" if row["passed"] else "no",
            str(row["failing"]),
            str(row["warnings"]),
            row["first_failure"],
            row["hint"],
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def render_summary_csv(results: Sequence[SubmissionResult]) -> str:
    """The summary table as CSV (same columns as :func:`summary_rows`)."""
    rows = summary_rows(results)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["submission"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def render_folder_json(results: Sequence[SubmissionResult]) -> str:
    """Every result of a folder in one JSON: counts, then each submission's result as :func:`render_json` has it."""
    return _json(
        {
            "assignment": (results[0].assignment or results[0].interface) if results else "",
            "interface": results[0].interface if results else "",
            "seed": results[0].seed if results else 0,
            "isolation": sorted({r.isolation for r in results}),
            "submissions": len(results),
            "passed": sum(1 for r in results if r.passed),
            "results": [_result_dict(r) for r in results],
        }
    )


def render_folder_junit(results: Sequence[SubmissionResult]) -> str:
    """One JUnit file for a folder: one ``testsuite`` per submission."""
    return _junit(results)


def render_folder_markdown(results: Sequence[SubmissionResult]) -> str:
    """The summary table, then every submission's feedback (its headings one level down)."""
    return render_summary(results) + "".join("\n" + render_markdown(r, level=2) for r in results)


#: The combined file of a whole folder, per format (a Gradescope ``results.json`` is per submission only).
FOLDER_RENDERERS: dict[str, Callable[[Sequence[SubmissionResult]], str]] = {
    "json": render_folder_json,
    "junit": render_folder_junit,
    "markdown": render_folder_markdown,
}


def write_folder_outputs(results: Sequence[SubmissionResult], paths: Mapping[str, Path]) -> None:
    """Write each requested combined format (``{format: path}``, see :data:`FOLDER_RENDERERS`) atomically."""
    texts = {}
    for kind, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        texts[Path(path)] = FOLDER_RENDERERS[kind](results)
    write_atomically(texts)


def write_summary(results: Sequence[SubmissionResult], folder: Path, total: int | None = None) -> dict[str, Path]:
    """``summary.md`` and ``summary.csv`` of every submission in ``folder``, atomically (``total``: see
    :func:`render_summary`)."""
    paths = {"md": folder / "summary.md", "csv": folder / "summary.csv"}
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically({paths["md"]: render_summary(results, total), paths["csv"]: render_summary_csv(results)})
    return paths
