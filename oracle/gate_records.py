"""Gate records: a gate run as a plain, JSON-able dict, merged across pytest-xdist shards, and its reports.

A record (see :func:`sweep_record`) survives JSON and pytest-xdist: workers ship their
shards to the controller, where :func:`merge_records` puts them together into the record
the serial run would have made — the same rows in the same order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from oracle.compare import FAILING_STATUSES
from oracle.supports import DEFAULT_MAX_UNSUPPORTED
from oracle.supports import unsupported_verdict as _unsupported_verdict

SHRUNK_PREFIX = "shrunk-"
_SHRUNK_PREFIX = SHRUNK_PREFIX


def sweep_record(
    result: Any,
    *,
    label: str,
    seed: int,
    cases: int,
    dtype: str,
    fd: str,
    implementation: str,
    shard: tuple[int, int] | None,
    max_shrinks: int,
    supports: str | None = None,
    max_unsupported: float = DEFAULT_MAX_UNSUPPORTED,
    replay_env: str = "",
) -> dict[str, Any]:
    """A :class:`oracle.sweep.SweepResult` as a plain dict that survives JSON and pytest-xdist.

    Keys: ``label``, ``seed``, ``cases``, ``dtype``, ``fd``, ``implementation``,
    ``max_shrinks``, ``shard`` (``[k, n]`` or ``None``), ``rows`` (every row as a dict, in
    sweep order), ``signatures`` (failing generated case → how it fails, see
    :func:`oracle.sweep.failure_signature`), ``shrunk`` (the sweep's shrunk failures),
    ``depth_by_case``, ``cases_json`` (case id → case), ``wall_seconds``, ``interrupted``,
    ``supports`` (the declaration in force, one line, or ``None``), ``max_unsupported``
    and ``replay_env`` (what a replay command needs in front, e.g. ``PYTHONPATH=.``).
    ``dtype`` is the dtype of the arrays the cases actually ran in.
    Numbers are plain Python numbers; NaN (an error that was not measured) is ``None``.
    """
    from oracle.report_table import jsonable as _jsonable
    from oracle.sweep import failure_signature

    record = {
        "label": label,
        "seed": seed,
        "cases": cases,
        "dtype": dtype,
        "fd": fd,
        "implementation": implementation,
        "max_shrinks": max_shrinks,
        "shard": None if shard is None else [int(shard[0]), int(shard[1])],
        "rows": [row.as_dict() for r in result.results for row in r.rows],
        "signatures": {
            r.case: failure_signature(r)
            for r in result.results
            if not r.passed and not r.case.startswith(_SHRUNK_PREFIX)
        },
        "shrunk": [dict(item) for item in result.shrunk],
        "depth_by_case": {r.case: r.depth for r in result.results},
        "cases_json": {case_id: case.to_dict() for case_id, case in result.cases.items()},
        "wall_seconds": result.wall_seconds,
        "interrupted": result.interrupted,
        "supports": supports,
        "max_unsupported": max_unsupported,
        "replay_env": replay_env,
    }
    return _jsonable(record)


def failing_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``record`` with a failing status, in order."""
    return [row for row in record["rows"] if row["status"] in FAILING_STATUSES]


def unsupported_cases(record: Mapping[str, Any]) -> dict[str, str]:
    """Generated case id → why the implementation said it does not support it."""
    return {
        row["case"]: row["message"]
        for row in record["rows"]
        if row["status"] == "unsupported" and not row["case"].startswith(_SHRUNK_PREFIX)
    }


def generated_cases(record: Mapping[str, Any]) -> int:
    return len([c for c in record["cases_json"] if not c.startswith(_SHRUNK_PREFIX)])


def unsupported_verdict(record: Mapping[str, Any]) -> str:
    """Why a gate fails for its unsupported cases, or ``""`` (see :func:`oracle.supports.unsupported_verdict`)."""
    limit = record.get("max_unsupported", DEFAULT_MAX_UNSUPPORTED)
    return _unsupported_verdict(len(unsupported_cases(record)), generated_cases(record), limit)


def record_passed(record: Mapping[str, Any]) -> bool:
    return not record["interrupted"] and not failing_rows(record) and not unsupported_verdict(record)


def _case_number(case_id: str) -> int:
    return int(case_id[1:])


_SAME_RUN = (
    "label",
    "seed",
    "cases",
    "fd",
    "implementation",
    "max_shrinks",
    "supports",
    "max_unsupported",
    "replay_env",
)


def merge_records(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Combine the shard records of one sharded gate into the record of the serial run.

    Generated cases are put back in sweep order (``c0001``, ``c0002``, …). Shrunk
    failures are chosen as the serial sweep chooses them: the first ``max_shrinks``
    signatures in order of the case where each first appears. The shard that saw a
    signature first has shrunk it (shrinking depends only on the seed and the signature),
    and its shrunk case is renumbered ``shrunk-K``. ``wall_seconds`` is the longest shard's.
    A single unsharded record is returned unchanged; anything else that is not one
    complete set of shards ``0…n-1`` of one run raises ``ValueError``.
    """
    records = list(records)
    if not records:
        raise ValueError("no records to merge")
    if len(records) == 1 and records[0]["shard"] is None:
        return dict(records[0])
    first = records[0]
    for record in records:
        different = [key for key in _SAME_RUN if record[key] != first[key]]
        if different:
            raise ValueError(f"records of different gate runs (they differ in {', '.join(different)})")
    shards = sorted(tuple(r["shard"]) if r["shard"] is not None else (0, 1) for r in records)
    n = shards[0][1]
    if shards != [(k, n) for k in range(n)]:
        raise ValueError(f"expected shards 0…{n - 1} of {n} once each, got {shards}")

    generated: list[dict[str, Any]] = []
    signatures: dict[str, str] = {}
    depth_by_case: dict[str, int] = {}
    cases_json: dict[str, Any] = {}
    shrunk_by_signature: dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
    for record in records:
        generated += [row for row in record["rows"] if not row["case"].startswith(_SHRUNK_PREFIX)]
        signatures.update(record["signatures"])
        for case_id, depth in record["depth_by_case"].items():
            if not case_id.startswith(_SHRUNK_PREFIX):
                depth_by_case[case_id] = depth
                cases_json[case_id] = record["cases_json"][case_id]
        for item in record["shrunk"]:
            shrunk_by_signature.setdefault(item["signature"], (item, record))
    generated.sort(key=lambda row: _case_number(row["case"]))  # stable: a case's rows keep their order
    depth_by_case = dict(sorted(depth_by_case.items(), key=lambda kv: _case_number(kv[0])))
    cases_json = {case_id: cases_json[case_id] for case_id in depth_by_case}

    ordered = list(dict.fromkeys(signatures[c] for c in sorted(signatures, key=_case_number)))
    rows, shrunk = list(generated), []
    for number, signature in enumerate(ordered[: first["max_shrinks"]], start=1):
        if signature not in shrunk_by_signature:
            continue  # hypothesis found no case to shrink for it, in the serial run too
        item, source = shrunk_by_signature[signature]
        old, new = item["case_id"], f"{_SHRUNK_PREFIX}{number}"
        rows += [{**row, "case": new} for row in source["rows"] if row["case"] == old]
        shrunk.append({**item, "case_id": new})
        depth_by_case[new] = source["depth_by_case"][old]
        cases_json[new] = source["cases_json"][old]
    return {
        **{key: first[key] for key in _SAME_RUN},
        "dtype": ", ".join(sorted({d.strip() for r in records for d in r["dtype"].split(",")})),
        "shard": None,
        "rows": rows,
        "signatures": dict(sorted(signatures.items(), key=lambda kv: _case_number(kv[0]))),
        "shrunk": shrunk,
        "depth_by_case": depth_by_case,
        "cases_json": cases_json,
        "wall_seconds": max(r["wall_seconds"] for r in records),
        "interrupted": any(r["interrupted"] for r in records),
    }


def record_meta(record: Mapping[str, Any], *, command: str = "") -> dict[str, Any]:
    """The ``meta`` of :func:`oracle.report.write_reports` for a gate record."""
    meta = {
        "title": f"refbp gate: {record['label']}" if record["label"] else "refbp gate",
        "seed": record["seed"],
        "cases": len([c for c in record["cases_json"] if not c.startswith(_SHRUNK_PREFIX)]),
        "dtype": record["dtype"],
        "fd_mode": record["fd"],
        "implementation": record["implementation"],
        "wall_seconds": round(record["wall_seconds"], 3),
        "interrupted": record["interrupted"],
        "supports": record.get("supports") or "not declared",
        "unsupported cases": _unsupported_text(record),
        "shrunk": record["shrunk"],
        "depth_by_case": record["depth_by_case"],
        "cases_json": record["cases_json"],
    }
    return {"command": command, **meta} if command else meta


def write_record_reports(record: Mapping[str, Any], out_dir: Path | str, *, stem: str) -> dict[str, Path]:
    """Write the csv/json/md/html reports of a gate record (see :func:`oracle.report.write_reports`)."""
    from oracle.report import write_reports

    return write_reports(out_dir, record["rows"], record_meta(record), stem=stem)


def record_markdown(record: Mapping[str, Any]) -> str:
    """The Markdown report of a gate record (what a CI step summary shows)."""
    from oracle.report import render_markdown, summarise

    return render_markdown(summarise(record["rows"], record_meta(record)))


def report_stem(label: str) -> str:
    """A file name stem for a gate's reports: ``tests/test_x.py::test_y[a]`` → ``test_x-test_y-a``."""
    path, _, rest = label.partition("::")
    text = f"{Path(path).stem}-{rest}" if rest else Path(path).stem
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-.") or "gate"


def _unsupported_text(record: Mapping[str, Any]) -> str:
    skipped = unsupported_cases(record)
    if not skipped:
        return "0"
    reasons = list(dict.fromkeys(skipped.values()))
    more = f"; … {len(reasons) - 3} more reasons" if len(reasons) > 3 else ""
    return f"{len(skipped)} of {generated_cases(record)} skipped ({'; '.join(reasons[:3])}{more})"
