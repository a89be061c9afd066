"""Check formula claims (see :mod:`worked.formulas`) at the example's values and at many random points.

At every point the true side is computed by the NumPy evaluator (reverse mode for a
derivative, refbp's backward pass for a network) and the claimed side from its expression;
they must agree to ``|claimed − true| ≤ 1e-9 + 1e-7·|true|`` in every entry. torch autograd
confirms the true side at the example's point and at a counterexample. Points where
either side is not finite (``log`` of a negative number) are skipped.

Points: the example's own values first (for a free formula, a variable that is also a
number of the example's graph takes that number); then :data:`RANDOM_POINTS` free
variables drawn uniformly from ``[−4, 4]``, or leaves moved by ``N(0, max(1, |leaf|))``, or
:data:`RANDOM_NETWORKS` networks of the example's spec with Xavier weights of seeds
1, 2, … and inputs drawn ``N(0, 1)``. The draws are seeded: a report is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from refbp.params import init_parameters
from worked.example_file import WorkedExample
from worked.expressions import ExpressionError, backward, forward
from worked.formulas import Formula, graph_side
from worked.graph import evaluate, reverse_mode, torch_derivative
from worked.graph_file import GraphExample
from worked.network_nodes import evaluate_node
from worked.torch_expressions import torch_forward

RANDOM_POINTS = 200
RANDOM_NETWORKS = 30
RTOL, ATOL = 1e-7, 1e-9


@dataclass
class FormulaResult:
    """One formula, checked: ``ok``, or ``wrong`` with a counterexample (``point``, ``claimed``, ``true``)."""

    example: str
    source: str
    formula: Formula
    status: str
    points: int
    """How many points were checked."""
    point: str = ""
    claimed: float | None = None
    true: float | None = None
    note: str = ""
    agreement: str = ""
    part: str = ""

    @property
    def hint(self) -> str:
        if self.status == "ok":
            return ""
        return f"{self.note}at {self.point}: the formula gives {self.claimed:.6g}, the true value is {self.true:.6g}"


Side = Callable[[], tuple[np.ndarray, np.ndarray]]


def _scalar_env(example: Any) -> dict[str, float]:
    if not isinstance(example, GraphExample):
        return {}
    values = evaluate(example.graph, example.graph.leaves)
    return {name: float(v) for name, v in values.items() if np.size(v) == 1}


def _free_true(formula: Formula, env: Mapping[str, np.ndarray]) -> np.ndarray:
    memo: dict[int, np.ndarray] = {}
    value = forward(formula.left, env, memo)  # type: ignore[arg-type]
    if not formula.variable:
        return value
    adjoints: dict[str, np.ndarray] = {}
    backward(formula.left, np.ones_like(value), memo, adjoints)  # type: ignore[arg-type]
    return adjoints.get(formula.variable, np.zeros(()))


def _free_torch(formula: Formula, env: Mapping[str, np.ndarray]) -> np.ndarray:
    import torch

    tensors = {k: torch.tensor(float(v), dtype=torch.float64, requires_grad=True) for k, v in env.items()}
    value = torch_forward(formula.left, tensors)  # type: ignore[arg-type]
    if not formula.variable:
        return value.detach().numpy()
    (grad,) = torch.autograd.grad(value.sum(), [tensors[formula.variable]], allow_unused=True)
    return np.zeros(()) if grad is None else grad.detach().numpy()


def _free_points(formula: Formula, example: Any) -> Iterator[tuple[str, Side, Callable[[], np.ndarray]]]:
    known = _scalar_env(example)
    rng = np.random.default_rng(0)
    first = {name: known[name] for name in formula.free if name in known}
    draws = [first] if len(first) == len(formula.free) else []
    draws += [{name: float(rng.uniform(-4, 4)) for name in formula.free} for _ in range(RANDOM_POINTS)]
    for draw in draws:
        env = {k: np.asarray(v) for k, v in draw.items()}
        text = ", ".join(f"{k} = {v:.6g}" for k, v in draw.items())
        yield (
            text,
            lambda env=env: (forward(formula.right, env), _free_true(formula, env)),
            lambda env=env: _free_torch(formula, env),
        )


def _graph_points(formula: Formula, example: GraphExample) -> Iterator[tuple[str, Side, Callable[[], np.ndarray]]]:
    graph = example.graph
    (top, index), wrt = graph_side(formula.text, set(graph.order))  # type: ignore[misc]
    rng = np.random.default_rng(0)
    starts = [dict(graph.leaves)] + [
        {k: v + rng.normal(size=np.shape(v)) * max(1.0, float(np.abs(v).max())) for k, v in graph.leaves.items()}
        for _ in range(RANDOM_POINTS)
    ]

    def true(leaves: dict, torch: bool = False) -> np.ndarray:
        if wrt is None:
            value = evaluate(graph, leaves)[top]
            return value if index is None else np.asarray(value[index])
        tops = [index] if index is not None else list(np.ndindex(np.shape(evaluate(graph, leaves)[top])))
        rows = [
            torch_derivative(graph, leaves, top, i, wrt) if torch else reverse_mode(graph, leaves, top, i)[wrt]
            for i in tops
        ]
        return rows[0] if index is not None or len(rows) == 1 else np.stack(rows)

    for n, leaves in enumerate(starts):
        text = "the example's values" if n == 0 else ", ".join(
            f"{k} = {np.array2string(np.asarray(v), precision=6)}" for k, v in leaves.items()
        )  # fmt: skip
        yield (
            text,
            lambda leaves=leaves: (forward(formula.right, evaluate(graph, leaves)), true(leaves)),
            lambda leaves=leaves: true(leaves, torch=True),
        )


def _network_points(formula: Formula, example: WorkedExample) -> Iterator[tuple[str, Side, Callable[[], np.ndarray]]]:
    from worked.evaluate import refbp_state, torch_state

    spec, part = example.spec, example.parts[0]
    left, right = formula.node
    rng = np.random.default_rng(0)
    batch = part.X.shape[spec.batch_axis]
    nets = [("the example's values", example.start(part), part.X)] + [
        (f"a random network (seed {seed})", init_parameters(spec, seed=seed), rng.normal(size=part.X.shape))
        for seed in range(1, RANDOM_NETWORKS + 1)
    ]

    def sides(params: Any, X: np.ndarray, *, torch: bool = False) -> tuple[np.ndarray, np.ndarray]:
        if torch:
            import torch as th

            state = torch_state(spec, {k: th.tensor(v) for k, v in params.items()}, X, part.T, None)
        else:
            state = refbp_state(spec, params, X, part.T)
        values = dict(state.values)
        for name, node in example.nodes.items():
            values[(name, -1)] = evaluate_node(spec, batch, node, values)
        return evaluate_node(spec, batch, right, values), evaluate_node(spec, batch, left, values)

    for text, params, X in nets:
        yield text, lambda p=params, X=X: sides(p, X), lambda p=params, X=X: sides(p, X, torch=True)[1]


def _close(claimed: np.ndarray, true: np.ndarray) -> np.ndarray:
    return np.abs(claimed - true) <= ATOL + RTOL * np.abs(true)


def check_formula(example: Any, formula: Formula) -> FormulaResult:
    """Check one formula at the example's point and the random points; the first failure is the counterexample."""
    if formula.kind == "free":
        points = _free_points(formula, example)
    elif formula.kind == "graph":
        points = _graph_points(formula, example)
    else:
        points = _network_points(formula, example)
    result = FormulaResult(example.title, example.source, formula, "ok", 0, agreement="refbp = torch")
    held_at_first: bool | None = None
    for n, (text, sides, torch_side) in enumerate(points):
        try:
            claimed, true = (np.asarray(side, dtype=np.float64) for side in sides())
            if claimed.shape != true.shape and claimed.size == true.size:
                claimed = claimed.reshape(true.shape)  # one example: (2,) holds what (2, 1) holds
            claimed, true = np.broadcast_arrays(claimed, true)
        except (ExpressionError, ValueError):
            result.status, result.point, result.note = "wrong", text, "the two sides have different shapes "
            result.claimed, result.true = float("nan"), float("nan")
            return result
        if not (np.isfinite(claimed).all() and np.isfinite(true).all()):
            continue
        result.points += 1
        close = _close(claimed, true)
        if n == 0:
            held_at_first = bool(close.all())
            _confirm(result, true, torch_side)
        if not close.all():
            worst = np.unravel_index(int(np.argmax(np.abs(claimed - true))), true.shape) if true.ndim else ()
            entry = f" (entry {[int(i) for i in worst]})" if true.size > 1 else ""
            result.status, result.point = "wrong", text + entry
            result.claimed, result.true = float(claimed[worst]), float(true[worst])
            if n > 0 and held_at_first:
                result.note = "right at the example's values only (a coincidence); "
            if n > 0:
                _confirm(result, true, torch_side)
            return result
    return result


def _confirm(result: FormulaResult, true: np.ndarray, torch_side: Callable[[], np.ndarray]) -> None:
    twin = np.asarray(torch_side(), dtype=np.float64)
    if twin.shape != true.shape or not np.allclose(twin, true, rtol=1e-9, atol=1e-12):
        result.status, result.agreement = "disagree", "refbp ≠ torch"


def check_formulas(example: Any) -> list[FormulaResult]:
    """Every formula of ``example``, in file order."""
    return [check_formula(example, formula) for formula in example.formulas]
