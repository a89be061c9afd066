"""Computational graphs of a worked example: leaves and named nodes, and their derivatives three ways.

A graph is written in file order: a *leaf* is a number or an array (an input or a
parameter), a *node* an expression (see :mod:`worked.expressions`) over earlier names.

**Derivatives.** ``dN/dM`` is the derivative of one entry of node ``N`` with respect to one
entry of ``M``:

* ``M`` a leaf — the total derivative: the sum over every path from ``M`` to ``N`` (a leaf
  used several times, a weight tied across the steps of an unrolled RNN, accumulates over
  every use);
* ``M`` a node — the derivative with ``M`` treated as a variable of its own: ``M``'s value
  is moved and every node after it recomputed, while everything ``M`` is computed from is
  held where it is. Every path from ``M`` to ``N`` counts; paths that reach ``N`` from
  ``M``'s inputs without passing through ``M`` do not. This is the adjoint of ``M`` in
  reverse mode, and ``df/dq`` of ``q = x + y``, ``f = q·z`` is ``z``, as in a circuit
  diagram. A node that ``N`` does not depend on (or that comes after ``N``) gives 0.

The three computations:

``refbp``  :func:`reverse_mode`: one forward pass, then the hand-written rules of
           :func:`worked.expressions.backward` from ``N`` back through the nodes in reverse
           file order;
``torch``  :func:`torch_derivative`: the same expressions in torch, ``torch.autograd.grad``;
``fd``     :func:`fd_derivative`: central differences, ``M`` moved by ``±h`` with
           ``h = ε^{1/3}·max(1, |m|)`` and the nodes after it recomputed. A difference that
           moves an entry across a kink (``relu``, ``abs``, a ``max``/``min`` tie) is marked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from worked.expressions import Expr, backward, forward
from worked.torch_expressions import torch_forward

FD_STEP = np.finfo(np.float64).eps ** (1 / 3)
Values = dict[str, np.ndarray]


@dataclass(frozen=True)
class Graph:
    """Leaves (their starting values) and nodes (their expressions), both in file order."""

    leaves: Mapping[str, np.ndarray]
    nodes: Mapping[str, Expr]

    @property
    def order(self) -> list[str]:
        return [*self.leaves, *self.nodes]

    def is_leaf(self, name: str) -> bool:
        return name in self.leaves


def evaluate(graph: Graph, leaves: Mapping[str, np.ndarray], *, memo: dict[int, np.ndarray] | None = None,
             overrides: Mapping[str, np.ndarray] | None = None, signs: list | None = None) -> Values:  # fmt: skip
    """Every leaf and node value; a node in ``overrides`` takes that value instead of its expression's."""
    overrides = overrides or {}
    values: Values = {name: np.asarray(overrides.get(name, value), dtype=np.float64) for name, value in leaves.items()}
    for name, expr in graph.nodes.items():
        if name in overrides:
            if memo is not None:
                forward(expr, values, memo)  # the local derivatives of a moved node are taken at its inputs
            values[name] = np.asarray(overrides[name], dtype=np.float64)
        else:
            values[name] = forward(expr, values, memo, signs)
    return values


def _one_hot(shape: tuple[int, ...], index: tuple[int, ...]) -> np.ndarray:
    seed = np.zeros(shape)
    seed[index] = 1.0
    return seed


def reverse_mode(graph: Graph, leaves: Mapping[str, np.ndarray], top: str, index: tuple[int, ...] | None,
                 *, overrides: Mapping[str, np.ndarray] | None = None) -> Values:  # fmt: skip
    """``∂top[index]/∂name`` for every leaf and node (zeros where ``top`` does not depend on it).

    ``index`` ``None`` is the one entry of a ``top`` that has one. With ``overrides``, the
    named nodes take those values in the forward pass (the values a source printed) and the
    derivatives are taken there.
    """
    memo: dict[int, np.ndarray] = {}
    values = evaluate(graph, leaves, memo=memo, overrides=overrides)
    shape = values[top].shape
    adjoints: Values = {top: _one_hot(shape, (0,) * len(shape) if index is None else index)}
    names = list(graph.nodes)
    for name in reversed(names[: names.index(top) + 1] if top in graph.nodes else []):
        if name in adjoints:
            backward(graph.nodes[name], adjoints[name], memo, adjoints)
    return {name: adjoints[name] if name in adjoints else np.zeros_like(values[name]) for name in graph.order}


def gradients_of(graph: Graph, leaves: Mapping[str, np.ndarray], loss: str) -> Values:
    """``∂loss/∂leaf`` for every leaf (the loss is a node with one entry)."""
    every = reverse_mode(graph, leaves, loss, None)
    return {name: every[name] for name in graph.leaves}


def fd_derivative(graph: Graph, leaves: Mapping[str, np.ndarray], top: str, index: tuple[int, ...],
                  wrt: str, at: tuple[int, ...]) -> tuple[float, bool]:  # fmt: skip
    """``∂top[index]/∂wrt[at]`` by a central difference, and whether the two sides straddle a kink."""
    base = evaluate(graph, leaves)
    value = np.array(base[wrt], dtype=np.float64, copy=True)
    h = FD_STEP * max(1.0, abs(float(value[at])))
    sides = []
    for sign in (1.0, -1.0):
        moved = value.copy()
        moved[at] += sign * h
        signs: list[np.ndarray] = []
        if graph.is_leaf(wrt):
            out = evaluate(graph, {**leaves, wrt: moved}, signs=signs)
        else:
            kept = {name: base[name] for name in list(graph.nodes)[: list(graph.nodes).index(wrt)]}
            out = evaluate(graph, leaves, overrides={**kept, wrt: moved}, signs=signs)
        sides.append((float(out[top][index]), signs))
    (plus, signs_plus), (minus, signs_minus) = sides
    kink = len(signs_plus) != len(signs_minus) or any(
        a.shape != b.shape or bool(np.any(a != b)) for a, b in zip(signs_plus, signs_minus, strict=False)
    )
    return (plus - minus) / (2 * h), kink


def fd_gradients(graph: Graph, leaves: Mapping[str, np.ndarray], loss: str, names: list[str]) -> Values:
    """``∂loss/∂leaf`` for the named leaves, entry by entry, by central differences."""
    out: Values = {}
    index = (0,) * np.ndim(evaluate(graph, leaves)[loss])
    for name in names:
        grad = np.zeros_like(np.asarray(leaves[name], dtype=np.float64))
        for at in np.ndindex(grad.shape):
            grad[at] = fd_derivative(graph, leaves, loss, index, name, at)[0]
        out[name] = grad
    return out


def torch_values(graph: Graph, leaves: Mapping[str, object]) -> dict[str, object]:
    """Every leaf and node as torch tensors; ``leaves`` are tensors (those that require grad are tracked)."""
    values: dict[str, object] = dict(leaves)
    for name, expr in graph.nodes.items():
        values[name] = torch_forward(expr, values)
    return values


def torch_derivative(graph: Graph, leaves: Mapping[str, np.ndarray], top: str, index: tuple[int, ...],
                     wrt: str) -> np.ndarray:  # fmt: skip
    """``∂top[index]/∂wrt`` (the whole array of ``wrt``) by torch autograd."""
    import torch

    tensors = {name: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for name, v in leaves.items()}
    values = torch_values(graph, tensors)
    target, source = values[top][index], values[wrt]
    if not (target.requires_grad and source.requires_grad):
        return np.zeros(tuple(source.shape))
    (grad,) = torch.autograd.grad(target, [source], allow_unused=True)
    return np.zeros(tuple(source.shape)) if grad is None else grad.detach().numpy().copy()


def torch_gradients(graph: Graph, tensors: Mapping[str, object], loss: str, names: list[str]) -> None:
    """Fill ``.grad`` of the named leaf tensors with ``∂loss/∂leaf`` (for ``torch.optim``)."""
    import torch

    values = torch_values(graph, tensors)
    grads = torch.autograd.grad(values[loss].sum(), [tensors[n] for n in names], allow_unused=True)
    for name, grad in zip(names, grads, strict=True):
        tensor = tensors[name]
        tensor.grad = torch.zeros_like(tensor) if grad is None else grad  # type: ignore[attr-defined]
