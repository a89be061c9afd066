"""A graph's loss gradient with the walk through its expressions laid out once, for long training runs.

:func:`worked.graph.gradients_of` walks every expression tree recursively at every step,
keeping each sub-expression's value in a dictionary by ``id``. :class:`GradientTape` flattens
the trees once: the forward pass is a list of sub-expressions in evaluation order (post-order),
each reading its operands by position, and the reverse pass of each node a list in the order
the recursion visits them (pre-order), so that a leaf used several times accumulates its
adjoint in the same order. Each operation is still the evaluator's own rule
(:func:`worked.expressions.apply_rule`, :func:`worked.expressions.input_grads`), so the
gradients are the numbers of :func:`~worked.graph.gradients_of` bit for bit
(``tests/test_lean_training.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from worked.expressions import Expr, apply_rule, input_grads
from worked.graph import Graph


def _post_order(expr: Expr, out: list[Expr]) -> None:
    for arg in expr.args:
        _post_order(arg, out)
    out.append(expr)


def _pre_order(expr: Expr, out: list[Expr]) -> None:
    out.append(expr)
    for arg in expr.args:
        _pre_order(arg, out)


class GradientTape:
    """``∂loss/∂leaf`` of ``graph`` for every leaf in ``names`` (``loss`` a node with one entry)."""

    def __init__(self, graph: Graph, loss: str, names: list[str]) -> None:
        self.leaves, self.names = list(graph.leaves), names
        nodes = list(graph.nodes)[: list(graph.nodes).index(loss) + 1]
        self.loss = loss
        forward: list[Expr] = []
        for name in nodes:
            _post_order(graph.nodes[name], forward)
        position = {id(expr): number for number, expr in enumerate(forward)}
        # forward: (expr, kind, payload, operand positions); a node's value is its root's
        self.forward = [
            (expr, expr.kind, np.asarray(expr.value) if expr.kind == "const" else expr.name,
             [position[id(arg)] for arg in expr.args])
            for expr in forward
        ]  # fmt: skip
        self.roots = {name: position[id(graph.nodes[name])] for name in nodes}
        self.backward = []
        for name in reversed(nodes):
            walk: list[Expr] = []
            _pre_order(graph.nodes[name], walk)
            self.backward.append((name, [(expr, expr.kind, position[id(expr)]) for expr in walk]))

    def gradients(self, leaves: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``∂loss/∂leaf`` for the named leaves at ``leaves`` (zeros where the loss does not read one)."""
        env = {name: np.asarray(leaves[name], dtype=np.float64) for name in self.leaves}
        values: list[np.ndarray] = [None] * len(self.forward)  # type: ignore[list-item]
        roots = self.roots
        with np.errstate(all="ignore"):
            for number, (expr, kind, payload, operands) in enumerate(self.forward):
                if kind == "const":
                    values[number] = payload
                elif kind == "name":
                    value = env[payload] if payload in env else values[roots[payload]]
                    values[number] = np.asarray(value, dtype=np.float64)
                else:
                    values[number] = apply_rule(expr, [values[i] for i in operands], None)
            loss_value = values[roots[self.loss]]
            seed = np.zeros(loss_value.shape)
            seed[(0,) * loss_value.ndim] = 1.0
            adjoints: dict[str, np.ndarray] = {self.loss: seed}
            for name, walk in self.backward:
                if name not in adjoints:
                    continue
                grads_of: dict[int, np.ndarray] = {walk[0][2]: adjoints[name]}
                for expr, kind, number in walk:
                    grad = grads_of.get(number)
                    if grad is None or kind == "const":  # not reached: a constant, or under one
                        continue
                    if kind == "name":
                        previous = adjoints.get(expr.name)
                        adjoints[expr.name] = grad if previous is None else previous + grad
                        continue
                    positions = self.forward[number][3]
                    pulled = input_grads(expr, np.asarray(grad, dtype=np.float64), [values[i] for i in positions],
                                         values[number])  # fmt: skip
                    for at, g in zip(positions, pulled, strict=True):
                        if g is not None:
                            grads_of[at] = np.asarray(g)
        return {name: adjoints[name] if name in adjoints else np.zeros_like(env[name]) for name in self.names}
