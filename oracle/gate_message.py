"""What a failing gate says: the verdict, the failing cases, each way of failing with its smallest case,
diagnosis and replay command (:func:`mismatch_message`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oracle.compare import CALL
from oracle.gate_records import (
    SHRUNK_PREFIX,
    failing_rows,
    generated_cases,
    unsupported_cases,
    unsupported_verdict,
)
from oracle.report_format import quantity_label
from refbp.spec import NetworkSpec

_SHRUNK_PREFIX = SHRUNK_PREFIX
#: Failing cases listed in a message, ways of failing shown with their smallest case, and rows of each table.
MESSAGE_CASES = 5
MESSAGE_ROWS = 8


def _where(layer: int, quantity: str = "") -> str:
    if quantity == CALL:
        return "call"
    return "input" if int(layer) == 0 else f"layer {int(layer)}"


def _first_row(rows: list[Mapping[str, Any]], depth: int) -> Mapping[str, Any]:
    from oracle.compare import divergence_rank

    errors = [r for r in rows if r["status"] == "error"]
    return (
        errors[0]
        if errors
        else min(rows, key=lambda r: divergence_rank(r["layer"], r["quantity"], depth, r.get("step")))
    )


def row_summary(row: Mapping[str, Any]) -> str:
    """One line for a row: ``layer 2, dL/dW (impl~torch): mismatch, max rel err 5.0e-1 — diagnosis``;
    for a call that raised: ``impl(spec, params, X, T) raised ValueError: … — raised in the library: …``."""
    from oracle.report_format import fmt_err as _fmt_err

    if row["status"] == "error":
        return f"{row['pair'].split('~')[0]}(spec, params, X, T) raised {row['message']}"
    what = quantity_label(row["quantity"], row.get("step"))
    text = f"{_where(row['layer'], row['quantity'])}, {what} ({row['pair']}): {row['status']}, "
    text += f"max rel err {_fmt_err(row['max_rel_err'], row['status'])}"
    return text + (f" — {row['diagnosis']}" if row["diagnosis"] else "")


def _case_table(record: Mapping[str, Any], case_id: str, rows: list[Mapping[str, Any]], title: str) -> list[str]:
    """A failing case's rows as a table, its diagnosis and its replay command."""
    from tabulate import tabulate

    from oracle.report_format import fmt_err as _fmt_err
    from oracle.report_format import fmt_tol as _fmt_tol

    case = record["cases_json"][case_id]
    lines = [f"{title} ({case_id}: {record['depth_by_case'][case_id]} layer(s), batch {case['batch']}):"]
    errors = [row for row in rows if row["status"] == "error"]
    if errors:
        lines.append("  " + row_summary(errors[0]))
    else:
        shown_rows = rows[:MESSAGE_ROWS]
        # One diagnosis shared by the rows it explains reads better once, under the table.
        diagnoses = {row["diagnosis"] for row in shown_rows if row["diagnosis"]}
        single = diagnoses.pop() if len(diagnoses) == 1 else ""
        notes = [("" if single else row["diagnosis"]) or row["message"] for row in shown_rows]
        table = [
            [
                _where(row["layer"], row["quantity"]),
                quantity_label(row["quantity"], row.get("step")),
                row["pair"],
                row["status"],
                _fmt_err(row["max_rel_err"], row["status"]),
                _fmt_tol(row["rtol"], row["atol"]),
                note,
            ]
            for row, note in zip(shown_rows, notes, strict=True)
        ]
        headers = ["layer", "quantity", "pair", "status", "max rel err", "tolerance", "diagnosis"]
        if not any(notes):  # no row has a diagnosis of its own: the column would be empty
            table, headers = [line[:-1] for line in table], headers[:-1]
        text = tabulate(table, headers, tablefmt="plain", disable_numparse=True)
        lines += ["  " + line.rstrip() for line in text.splitlines()]
        if len(rows) > MESSAGE_ROWS:
            lines.append(f"  … and {len(rows) - MESSAGE_ROWS} more failing rows")
        if single:
            lines.append(f"  diagnosis: {single}")
    lines.append(f"  replay: {replay_command(record, case_id)}")
    return lines


def mismatch_message(record: Mapping[str, Any]) -> str:
    """What a failing gate says: the verdict, where each failing case first diverges (a few), then for each
    distinct way of failing (up to :data:`MESSAGE_CASES`) its smallest failing case as a table (layer,
    quantity, pair, max rel err, tolerance, diagnosis) with a ``refbp replay`` command; unsupported
    cases are counted, and too many of them are the verdict."""
    failing = failing_rows(record)
    by_case: dict[str, list[Mapping[str, Any]]] = {}
    for row in failing:
        by_case.setdefault(row["case"], []).append(row)
    generated = [c for c in by_case if not c.startswith(_SHRUNK_PREFIX)]
    shard = record["shard"]
    where = f"shard {shard[0] + 1} of {shard[1]}, " if shard else ""
    skipped = unsupported_cases(record)
    head = (
        f"backprop gate: {len(generated)} of {generated_cases(record)} cases diverge "
        f"({where}seed {record['seed']}, {record['dtype']}, fd {record['fd']}; impl {record['implementation']})"
    )
    if skipped:
        head += f"; {len(skipped)} unsupported"
    if record["interrupted"]:
        head += " — interrupted"
    lines = [head]
    verdict = unsupported_verdict(record)
    if verdict:
        reasons = list(dict.fromkeys(skipped.values()))
        lines.append(verdict)
        lines += [f"  unsupported: {reason}" for reason in reasons[:MESSAGE_CASES]]
        if record.get("supports"):
            lines.append(f"  declared: {record['supports']}")
    for case_id in generated[:MESSAGE_CASES]:
        lines.append(f"  {case_id}: {row_summary(_first_row(by_case[case_id], record['depth_by_case'][case_id]))}")
    if len(generated) > MESSAGE_CASES:
        lines.append(f"  … and {len(generated) - MESSAGE_CASES} more failing cases")

    shown = [item for item in record["shrunk"] if item["case_id"] in by_case]
    if not shown and generated:  # nothing shrunk (max_shrinks=0): the first failing case of each signature
        firsts: dict[str, str] = {}
        for case_id in generated:
            firsts.setdefault(record["signatures"].get(case_id, ""), case_id)
        shown = [{"case_id": c, "signature": sig} for sig, c in firsts.items()]
    for item in shown[:MESSAGE_CASES]:
        title = "smallest failing case" if item["case_id"].startswith(_SHRUNK_PREFIX) else "first failing case"
        if len(shown) > 1:
            title += f" for {item['signature']}"
        lines += _case_table(record, item["case_id"], by_case[item["case_id"]], title)
    if shown and ":" not in record["implementation"]:
        lines.append(
            f"  ({record['implementation']} cannot be imported by name, so these replay refbp itself; "
            "add --impl MODULE:FUNCTION to replay your implementation)"
        )
    return "\n".join(lines)


def divergence_hint(record: Mapping[str, Any], case_id: str) -> str:
    """:func:`oracle.diagnosis.entry_hint` for case ``case_id`` of a gate record."""
    from oracle.diagnosis import entry_hint

    spec = NetworkSpec.from_dict(record["cases_json"][case_id]["spec"])
    rows = [r for r in record["rows"] if r["case"] == case_id]
    return entry_hint(spec, [(r["layer"], r["quantity"], r["pair"], r["status"]) for r in rows])


def replay_command(record: Mapping[str, Any], case_id: str) -> str:
    """The ``refbp replay`` line that re-runs case ``case_id`` of a gate record, from the directory the gate ran in."""
    from oracle.cases import Case

    ref = record["implementation"] if ":" in record["implementation"] else None
    command = Case.from_dict(record["cases_json"][case_id]).replay_command(impl=ref)
    env = record.get("replay_env") or ""
    return f"{env} {command}" if env and ref else command
