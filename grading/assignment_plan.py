"""The checks of an assignment for one seed: the style's checks, kept, renamed and weighted as the assignment says.

For each graded function, in the assignment's order: the style's checks of its role, once
per scenario (scenario ``k`` takes its inputs from seed ``seed + k``); every call renamed
to the course's names; the advisory checks (``large_inputs``: a check on inputs of
magnitude ~1000; ``inplace``: the row that the inputs are unchanged) dropped when ``off``
and worth nothing when ``warn``; the function's points shared equally by its other rows.
"""

from __future__ import annotations

import dataclasses
import functools

from grading.assignment import Assignment
from grading.interfaces import build_plan
from grading.plan import ARGUMENTS, FunctionCheck
from grading.sandbox import Call

#: What an advisory check is, in the words a feedback uses for it.
ADVISORY_WORDS = {"inplace": "an input modified in place", "large_inputs": "inputs of magnitude ~1000"}


def _renamed_call(call: Call, names: dict[str, str]) -> Call:
    return Call(names.get(call.function, call.function), call.args)


def _is_large(check: FunctionCheck) -> bool:
    return any(expect.hints.large_inputs for expect in check.expects)


def _adapted(
    check: FunctionCheck, assignment: Assignment, name: str, scenario: int, scenarios: int, optional: bool = False
) -> FunctionCheck:
    """``check`` with the course's names, the scenario in its name and the assignment's severities (no points yet)."""
    names = assignment.renamed
    label = name + check.name[len(check.target) :]
    if scenarios > 1:
        label += f" [scenario {scenario + 1}]"
    large = _is_large(check)
    inplace = assignment.severity("inplace")
    return dataclasses.replace(
        check,
        name=label,
        target=name,
        calls=tuple(_renamed_call(call, names) for call in check.calls),
        watch=() if inplace == "off" else check.watch,
        watch_severity=inplace,
        advisory="large_inputs" if large else "",
        severity=assignment.severity("large_inputs") if large else "fail",
        rtol=assignment.rtol,
        atol=assignment.atol,
        grads_keys=assignment.grads_keys if check.target == "L_model_backward" else "",
        optional=optional,
        convention=assignment.dropout_p if check.derive else "",
        size1_scalars=assignment.size1_scalars,
    )


def _weighted(checks: list[FunctionCheck], points: float | None) -> list[FunctionCheck]:
    """``checks`` with the function's ``points`` shared by every row that counts (one each when ``None``)."""
    counting = sum(
        (len(c.expects) if c.severity == "fail" else 0) + (1 if c.watch and c.watch_severity == "fail" else 0)
        for c in checks
    )
    share = 1.0 if points is None else points / max(counting, 1)
    out = []
    for c in checks:
        weight = share if c.severity == "fail" else 0.0
        expects = tuple(dataclasses.replace(e, points=weight) for e in c.expects)
        watch_points = share if c.watch_severity == "fail" else 0.0
        out.append(dataclasses.replace(c, expects=expects, watch_points=watch_points))
    return out


@functools.lru_cache(maxsize=16)
def assignment_plan(assignment: Assignment, seed: int) -> tuple[FunctionCheck, ...]:
    """Every check of ``assignment`` for ``seed`` (see the module docstring)."""
    plan: list[FunctionCheck] = []
    for graded in assignment.functions:
        checks = []
        for scenario in range(graded.scenarios):
            for check in build_plan(assignment.style, seed + scenario):
                if check.target != graded.role:
                    continue
                if _is_large(check) and assignment.severity("large_inputs") == "off":
                    continue
                checks.append(_adapted(check, assignment, graded.name, scenario, graded.scenarios, graded.optional))
        plan += _weighted(checks, graded.points)
    return tuple(plan)


def called_functions(plan: tuple[FunctionCheck, ...]) -> tuple[str, ...]:
    """Every function the checks call (graded or needed for a cache), in first-use order."""
    return tuple(dict.fromkeys(call.function for check in plan for call in check.calls if call.function != ARGUMENTS))
