"""A correctness gate for backprop implementations: one assertion that explains itself.

:func:`assert_backprop_matches` checks an implementation three ways (it, the torch twin,
finite differences) on random cases and raises :class:`BackpropMismatch` — an
``AssertionError`` — whose message is a compact table of where the gradients diverge
and the smallest failing case with its ``refbp replay`` command::

    from oracle.gate import assert_backprop_matches

    def test_my_backprop():
        assert_backprop_matches(my_backprop, cases=30, seed=0)

Without a ``spec`` the cases are random networks (:func:`oracle.sweep.run_sweep`, bounds
such as ``max_depth=3`` as keyword arguments); with a ``spec`` they are random parameters
and batches of that network.

An implementation is any callable ``(spec, params, X, T)`` returning one of the forms
:func:`oracle.check.result_quantities` accepts; an :class:`Adapter` wraps a callable
that provides only some quantities (say, parameter gradients from a grading interface).

A gate run is kept as a *record*: a plain, JSON-able dict (see :func:`sweep_record`),
so that pytest-xdist workers can ship their shards to the controller, where
:func:`merge_records` puts them together into the record the serial run would have
made — the same rows in the same order.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oracle.compare import FAILING_STATUSES
from refbp.spec import NetworkSpec
from refbp.trace import QUANTITIES

DEFAULT_CASES = 30
#: Failing cases listed in a :class:`BackpropMismatch` message, and rows of its table.
MESSAGE_CASES = 5
MESSAGE_ROWS = 8
_SHRUNK_PREFIX = "shrunk-"


@dataclass(frozen=True)
class Adapter:
    """An implementation under test: a callable and the quantities it provides.

    ``func(spec, params, X, T)`` returns any form :func:`oracle.check.result_quantities`
    accepts. ``provides`` (quantity names of :mod:`refbp.trace`: ``"dL/dW"``,
    ``"dL/db"``, ``"dL/dx"``, ``"delta"``, …) limits the comparison to those quantities;
    ``None`` compares whatever the result form holds. ``name`` labels the rows
    (``"impl~torch"``); ``ref`` (``MODULE:FUNCTION``) is how a replay command loads it.
    """

    func: Callable[..., Any]
    provides: frozenset[str] | None = None
    name: str = "impl"
    ref: str | None = None

    def __post_init__(self) -> None:
        if self.provides is not None:
            provides = frozenset(self.provides)
            unknown = sorted(provides - set(QUANTITIES))
            if unknown or not provides:
                raise ValueError(f"provides: expected a non-empty subset of {QUANTITIES}, got {sorted(provides)}")
            object.__setattr__(self, "provides", provides)

    def __call__(self, spec: NetworkSpec, params: Mapping[str, Any], X: Any, T: Any) -> Any:
        return self.func(spec, params, X, T)


def implementation_ref(impl: Callable[..., Any]) -> str | None:
    """``MODULE:FUNCTION`` that imports ``impl`` again, or ``None`` (a lambda, a local function, ``__main__``)."""
    if isinstance(impl, Adapter):
        return impl.ref if impl.ref is not None else implementation_ref(impl.func)
    module, name = getattr(impl, "__module__", None), getattr(impl, "__qualname__", "")
    if not module or module == "__main__" or not name or "<" in name or not inspect.isroutine(impl):
        return None
    return f"{module}:{name}"


class BackpropMismatch(AssertionError):  # noqa: N818 - the name the gate's users catch
    """The gate found gradients that disagree. ``str()`` is the compact table of :func:`mismatch_message`.

    ``record`` is the gate run (see :func:`sweep_record`); ``failing_rows`` its failing rows.
    """

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = dict(record)
        super().__init__(mismatch_message(record))

    @property
    def failing_rows(self) -> list[dict[str, Any]]:
        return failing_rows(self.record)


# --------------------------------------------------------------------------- running the gate


def run_gate(
    impl: Callable[..., Any],
    spec: NetworkSpec | None = None,
    *,
    cases: int = DEFAULT_CASES,
    seed: int = 0,
    dtype: str | None = None,
    fd: str = "full",
    shard: tuple[int, int] | None = None,
    max_shrinks: int = 3,
    label: str = "",
    device: str | None = None,
    **spec_bounds: Any,
) -> dict[str, Any]:
    """Run the gate and return its record (see :func:`sweep_record`); never raises on a mismatch.

    ``dtype`` defaults to the spec's (``float64`` without a spec); given with a spec it
    replaces the spec's. ``shard=(k, n)`` checks every ``n``-th case from the ``k``-th
    (0-based), as :func:`oracle.sweep.run_sweep` does.
    """
    from hypothesis import strategies as st

    from oracle.sweep import run_sweep

    if spec is not None:
        if spec_bounds:
            raise TypeError(f"bounds {sorted(spec_bounds)} apply to random networks, not to a given spec")
        spec = spec if dtype is None or dtype == spec.dtype else spec.replace(dtype=dtype)
        spec_bounds = {"specs": st.just(spec)}
    dtype = spec.dtype if spec is not None else (dtype or "float64")
    name = impl.name if isinstance(impl, Adapter) else "impl"
    ref = implementation_ref(impl)
    result = run_sweep(
        cases,
        seed,
        dtype=dtype,
        fd=fd,
        impl=impl,
        impl_name=name,
        impl_ref=ref,
        device=device,
        max_shrinks=max_shrinks,
        progress=False,
        shard=shard,
        **spec_bounds,
    )
    return sweep_record(
        result,
        label=label,
        seed=seed,
        cases=cases,
        dtype=dtype,
        fd=fd,
        implementation=ref or getattr(impl, "__qualname__", name),
        shard=shard,
        max_shrinks=max_shrinks,
    )


def assert_backprop_matches(
    impl: Callable[..., Any],
    spec: NetworkSpec | None = None,
    *,
    cases: int = DEFAULT_CASES,
    seed: int = 0,
    dtype: str | None = None,
    fd: str = "full",
    **options: Any,
) -> dict[str, Any]:
    """Check ``impl`` on ``cases`` random cases; raise :class:`BackpropMismatch` when it disagrees.

    Returns the record of the run when everything agrees. Other keyword arguments go to
    :func:`run_gate` (``shard``, ``max_shrinks``, ``label``, ``device``) or, without a
    ``spec``, bound the random networks (``max_depth``, ``max_width``, ``max_inputs``,
    ``max_batch``, ``activations``, ``losses``, ``layouts``, … of
    :func:`oracle.strategies.network_specs`).
    """
    __tracebackhide__ = True
    record = run_gate(impl, spec, cases=cases, seed=seed, dtype=dtype, fd=fd, **options)
    if not record_passed(record):
        raise BackpropMismatch(record)
    return record


# --------------------------------------------------------------------------- records


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
) -> dict[str, Any]:
    """A :class:`oracle.sweep.SweepResult` as a plain dict that survives JSON and pytest-xdist.

    Keys: ``label``, ``seed``, ``cases``, ``dtype``, ``fd``, ``implementation``,
    ``max_shrinks``, ``shard`` (``[k, n]`` or ``None``), ``rows`` (every row as a dict, in
    sweep order), ``signatures`` (failing generated case → how it fails, see
    :func:`oracle.sweep.failure_signature`), ``shrunk`` (the sweep's shrunk failures),
    ``depth_by_case``, ``cases_json`` (case id → case), ``wall_seconds``, ``interrupted``.
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
    }
    return _jsonable(record)


def failing_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``record`` with a failing status, in order."""
    return [row for row in record["rows"] if row["status"] in FAILING_STATUSES]


def record_passed(record: Mapping[str, Any]) -> bool:
    return not record["interrupted"] and not failing_rows(record)


def _case_number(case_id: str) -> int:
    return int(case_id[1:])


_SAME_RUN = ("label", "seed", "cases", "dtype", "fd", "implementation", "max_shrinks")


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


# --------------------------------------------------------------------------- the failure message


def _where(layer: int) -> str:
    return "input" if int(layer) == 0 else f"layer {int(layer)}"


def _first_row(rows: list[Mapping[str, Any]], depth: int) -> Mapping[str, Any]:
    from oracle.compare import divergence_rank

    errors = [r for r in rows if r["status"] == "error"]
    return errors[0] if errors else min(rows, key=lambda r: divergence_rank(r["layer"], r["quantity"], depth))


def row_summary(row: Mapping[str, Any]) -> str:
    """One line for a row: ``layer 2, dL/dW (impl~torch): mismatch, max rel err 5.0e-1 — diagnosis``."""
    from oracle.report_format import fmt_err as _fmt_err

    if row["status"] == "error":
        return f"{row['pair'].split('~')[0]} raised {row['message']}"
    text = f"{_where(row['layer'])}, {row['quantity']} ({row['pair']}): {row['status']}, "
    text += f"max rel err {_fmt_err(row['max_rel_err'], row['status'])}"
    return text + (f" — {row['diagnosis']}" if row["diagnosis"] else "")


def mismatch_message(record: Mapping[str, Any]) -> str:
    """What a failing gate says: the verdict, where each failing case first diverges (a few), the
    failing rows of the smallest failing case as a table (layer, quantity, pair, max rel err,
    tolerance, diagnosis), and that case as JSON in a ``refbp replay`` command."""
    from tabulate import tabulate

    from oracle.report_format import fmt_err as _fmt_err
    from oracle.report_format import fmt_tol as _fmt_tol

    failing = failing_rows(record)
    by_case: dict[str, list[Mapping[str, Any]]] = {}
    for row in failing:
        by_case.setdefault(row["case"], []).append(row)
    generated = [c for c in by_case if not c.startswith(_SHRUNK_PREFIX)]
    n_cases = len([c for c in record["cases_json"] if not c.startswith(_SHRUNK_PREFIX)])
    shard = record["shard"]
    where = f"shard {shard[0] + 1} of {shard[1]}, " if shard else ""
    head = (
        f"backprop gate: {len(generated)} of {n_cases} cases diverge "
        f"({where}seed {record['seed']}, {record['dtype']}, fd {record['fd']}; impl {record['implementation']})"
    )
    if record["interrupted"]:
        head += " — interrupted"
    lines = [head]
    for case_id in generated[:MESSAGE_CASES]:
        lines.append(f"  {case_id}: {row_summary(_first_row(by_case[case_id], record['depth_by_case'][case_id]))}")
    if len(generated) > MESSAGE_CASES:
        lines.append(f"  … and {len(generated) - MESSAGE_CASES} more failing cases")

    shown = next((item for item in record["shrunk"] if item["case_id"] in by_case), None)
    case_id = shown["case_id"] if shown else (generated[0] if generated else None)
    if case_id is None:
        return "\n".join(lines)
    rows = by_case[case_id]
    case = record["cases_json"][case_id]
    title = "smallest failing case" if shown else "first failing case"
    lines.append(f"{title} ({case_id}: {record['depth_by_case'][case_id]} layer(s), batch {case['batch']}):")
    shown_rows = rows[:MESSAGE_ROWS]
    # One diagnosis shared by the rows it explains reads better once, under the table.
    diagnoses = {row["diagnosis"] for row in shown_rows if row["diagnosis"]}
    single = diagnoses.pop() if len(diagnoses) == 1 else ""
    notes = [("" if single else row["diagnosis"]) or row["message"] for row in shown_rows]
    table = [
        [
            _where(row["layer"]),
            row["quantity"],
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
        lines.append(f"diagnosis: {single}")
    lines.append(f"replay: {replay_command(record, case_id)}")
    if ":" not in record["implementation"]:
        lines.append(
            f"  ({record['implementation']} cannot be imported by name, so this replays refbp itself; "
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
    """The ``refbp replay`` line that re-runs case ``case_id`` of a gate record."""
    from oracle.cases import Case

    ref = record["implementation"] if ":" in record["implementation"] else None
    return Case.from_dict(record["cases_json"][case_id]).replay_command(impl=ref)
