"""Follow-on attribution: a wrong claim that is right given the wrongly printed numbers it was computed from.

A hand computation carries its printed numbers forward, so one slip makes every later number
that reads it wrong too. For each wrong claim (in order of step, then file order) the
claim is recomputed from the *printed* values of the claims it depends on, at the same
step; the true value is used for anything not claimed. If that reproduces the printed
number (by the rounding rule, hand-rounding included) and at least one of the values it
read is itself wrong, the claim's status is ``follows`` and ``follows_from`` names the
wrong claims it read. What a claim depends on:

* an updated parameter (a weight after step ``k``, a trained leaf of a graph) — its own
  value and its gradient ``∂L/∂θ`` after step ``k − 1``, through the example's optimiser
  from its state at that step (``w ← w − η·g`` for plain gradient descent);
* a ``[nodes]`` value of a network — the claimed entries its expression reads;
* a node's value or a derivative of a graph — the claimed values of the graph's nodes and
  leaves: each moved to its printed value, and everything after it recomputed;
* a derivative ``dN/dM`` of a graph — also the chain rule through a node ``K`` with one
  entry that every path from ``M`` to ``N`` passes through: ``dN/dK · dK/dM`` from their
  printed values (the notes' ``dl/dz = da/dz · dl/da`` with a wrongly printed ``da/dz``).
  ``K`` qualifies when the true values satisfy the same product.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from refbp.data import batch_size
from worked.aliases import NAMED, Entry
from worked.example_file import WorkedExample
from worked.graph import evaluate, reverse_mode
from worked.graph_file import GraphExample
from worked.network_nodes import evaluate_node
from worked.optimizers import Optimizer
from worked.results import ClaimResult, State
from worked.rounding import judge

WRONG = ("wrong", "follows")


def _printed_into(array: np.ndarray, results: Iterable[ClaimResult], key: Any) -> tuple[np.ndarray, list[ClaimResult]]:
    """A copy of ``array`` with every claimed entry of ``key`` set to its printed value, and those claims."""
    out, used = np.array(array, dtype=np.float64, copy=True), []
    for r in results:
        if r.claim.entry.key == key:
            out[r.claim.entry.index] = float(r.claim.printed)
            used.append(r)
    return out, used


def _parameter_name(example: Any, entry: Entry) -> str | None:
    if isinstance(example, WorkedExample):
        name = f"{entry.quantity}{entry.layer}"
        return name if entry.quantity in ("W", "b") and name not in example.frozen else None
    return entry.quantity if entry.layer == NAMED and entry.quantity in example.parameters else None


def _gradient_key(example: Any, name: str) -> Any:
    if isinstance(example, WorkedExample):
        return ("dL/d" + name[0], int(name[1:]))
    for quantity, d in example.derivatives.items():
        if d.top == example.loss and d.wrt == name:
            return (quantity, NAMED)
    return ("", NAMED)


Found = tuple[float, list[ClaimResult]] | None
"""A value recomputed from printed ones, and the claims whose printed values it read."""


def _updated(example: Any, result: ClaimResult, done: list[ClaimResult], states: dict[int, State]) -> Found:
    """An updated parameter recomputed from the printed value and gradient one step earlier."""
    entry, step = result.claim.entry, result.claim.step
    name = _parameter_name(example, entry)
    if name is None or step < 1 or (step - 1) not in states:
        return None
    before = states[step - 1]
    earlier = [r for r in done if r.claim.step == step - 1]
    value_key = entry.key
    grad_key = _gradient_key(example, name)
    value, used_value = _printed_into(before.values[value_key], earlier, value_key)
    grad_source = before.values.get(grad_key)
    if grad_source is None:
        grad_source = _true_gradient(example, before, name)
    grad, used_grad = _printed_into(grad_source, earlier, grad_key)
    optimizer = Optimizer(example.optimizer, example.learning_rate or 0.0)
    update = optimizer.update_of(name, grad, before.optimizer.get(name, {}), step)
    return float((value - update)[entry.index]), used_value + used_grad


def _true_gradient(example: GraphExample, state: State, name: str) -> np.ndarray:
    leaves = state.params
    return reverse_mode(example.graph, leaves, example.loss, (0,) * np.ndim(state.values[(example.loss, NAMED)]))[name]


def _network_node(example: WorkedExample, part: Any, result: ClaimResult, done: list[ClaimResult],
                  states: dict[int, State]) -> Found:  # fmt: skip
    entry, step = result.claim.entry, result.claim.step
    if entry.layer != NAMED or entry.quantity not in example.nodes:
        return None
    node = example.nodes[entry.quantity]
    values = dict(states[step].values)
    used: list[ClaimResult] = []
    same_step = [r for r in done if r.claim.step == step]
    for binding in node.bindings.values():
        if binding.key in values:
            values[binding.key], found = _printed_into(values[binding.key], same_step, binding.key)
            used += found
    value = evaluate_node(example.spec, batch_size(example.spec, part.X), node, values)
    return float(np.asarray(value)[entry.index]), used


def _graph_claim(example: GraphExample, result: ClaimResult, done: list[ClaimResult],
                 states: dict[int, State]) -> Found:  # fmt: skip
    entry, step = result.claim.entry, result.claim.step
    state = states[step]
    own = example.derivatives[entry.quantity].top if entry.quantity in example.derivatives else entry.quantity
    overrides: dict[str, np.ndarray] = {}
    used: list[ClaimResult] = []
    for r in done:
        name = r.claim.entry.quantity
        if r.claim.step != step or name == own or name in example.derivatives or name in overrides:
            continue
        overrides[name], found = _printed_into(state.values[(name, NAMED)], done, (name, NAMED))
        used += [f for f in found if f.claim.step == step]
    if not overrides:
        return None
    leaves = {k: overrides.get(k, v) for k, v in state.params.items()}
    nodes = {k: v for k, v in overrides.items() if k in example.graph.nodes}
    if entry.quantity in example.derivatives:
        d = example.derivatives[entry.quantity]
        value = reverse_mode(example.graph, leaves, d.top, d.index, overrides=nodes)[d.wrt]
    else:
        value = evaluate(example.graph, leaves, overrides=nodes)[entry.quantity]
    return float(np.asarray(value)[entry.index]), used


def _printed_or_true(pool: list[ClaimResult], step: int, quantity: str, index: tuple[int, ...],
                     true: float) -> tuple[float, list[ClaimResult]]:  # fmt: skip
    for r in pool:
        if r.claim.step == step and r.claim.entry.quantity == quantity and r.claim.entry.index == index:
            return float(r.claim.printed), [r]
    return true, []


def _chain(example: GraphExample, result: ClaimResult, pool: list[ClaimResult], states: dict[int, State]) -> Found:
    """``dN/dM`` from printed ``dN/dK`` and ``dK/dM`` through a node ``K`` that every path passes through."""
    entry, step = result.claim.entry, result.claim.step
    d = example.derivatives.get(entry.quantity)
    if d is None:
        return None
    leaves = states[step].params
    outer = reverse_mode(example.graph, leaves, d.top, d.index)
    for node in example.graph.nodes:
        if node in (d.top, d.wrt) or np.size(outer[node]) != 1:
            continue
        inner = reverse_mode(example.graph, leaves, node, (0,) * np.ndim(outer[node]))[d.wrt]
        through, local = float(np.ravel(outer[node])[0]), float(np.asarray(inner)[entry.index])
        true = float(np.asarray(outer[d.wrt])[entry.index])
        if abs(through * local - true) > 1e-9 * max(1.0, abs(true)) or (through == 0 and local == 0):
            continue
        outer_q = next((q for q, o in example.derivatives.items() if (o.top, o.index, o.wrt) == (d.top, d.index, node)),
                       None)  # fmt: skip
        inner_q = next((q for q, o in example.derivatives.items() if o.top == node and o.wrt == d.wrt), None)
        a, used_a = _printed_or_true(pool, step, outer_q or "", (0,) * np.ndim(outer[node]), through)
        b, used_b = _printed_or_true(pool, step, inner_q or "", entry.index, local)
        if any(r.status in WRONG for r in used_a + used_b):
            return a * b, used_a + used_b
    return None


def attribute_follow_ons(example: Any, part: Any, results: list[ClaimResult], states: dict[int, State]) -> None:
    """Mark the wrong claims of one part that follow from earlier wrong ones (in place)."""
    order = sorted(range(len(results)), key=lambda i: (results[i].claim.step, i))
    done: list[ClaimResult] = []
    for i in order:
        result = results[i]
        if result.status == "wrong":
            others = [r for r in results if r is not result]
            found = _updated(example, result, done, states)
            if found is None and isinstance(example, WorkedExample):
                found = _network_node(example, part, result, others, states)
            if found is None and isinstance(example, GraphExample):
                found = _graph_claim(example, result, others, states)
                chained = _chain(example, result, others, states)
                if chained is not None and (found is None or not _reproduces(result, found[0])):
                    found = chained
            if found is not None:
                value, used = found
                sources = [r for r in used if r.status in WRONG]
                if sources and judge(result.claim.printed, value, result.claim.slack_units):
                    names = ", ".join(dict.fromkeys(_label(r) for r in sources))
                    result.status, result.follows_from, result.recomputed = "follows", names, value
                    result.hint = f"follows from {names}: recomputed from the printed values it reads, {value:.6g}"
        done.append(result)


def _reproduces(result: ClaimResult, value: float) -> bool:
    return judge(result.claim.printed, value, result.claim.slack_units) is not None


def _label(result: ClaimResult) -> str:
    where = result.where
    return f"{result.claim.reference} = {result.claim.printed.text}" + (f" ({where})" if where else "")
