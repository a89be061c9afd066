"""The three computations of a graph example, step by step (see :mod:`worked.graph` for each).

Each computation trains the ``[graph.train]`` parameters with its own gradients and its own
optimiser (NumPy rules for ``refbp`` and ``fd``, ``torch.optim`` for ``torch``), and at every
step a claim needs records every leaf and node value and every claimed derivative, keyed
``(name, NAMED)`` like the entries of the claims. As for networks, beyond
:data:`worked.evaluate.FULL_PATH_STEPS` steps torch and finite differences check each claimed
step at refbp's leaves.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from refbp.update_rules import UpdateRule
from worked.aliases import NAMED
from worked.evaluate import FULL_PATH_STEPS, needed_steps
from worked.graph import (
    evaluate,
    fd_derivative,
    fd_gradients,
    reverse_mode,
    torch_derivative,
    torch_gradients,
    torch_values,
)
from worked.graph_file import GraphExample, GraphPart
from worked.graph_tape import GradientTape
from worked.optimizers import Optimizer, torch_optimizer
from worked.results import Runs, State


def _derivatives(example: GraphExample, part: GraphPart) -> dict[str, Any]:
    used = {claim.entry.quantity for claim in part.claims}
    return {quantity: d for quantity, d in example.derivatives.items() if quantity in used}


def refbp_graph_state(example: GraphExample, part: GraphPart, leaves: dict[str, np.ndarray]) -> State:
    """Values by the NumPy forward pass, derivatives by its reverse mode."""
    values = {(name, NAMED): value for name, value in evaluate(example.graph, leaves).items()}
    by_top: dict[tuple[str, tuple[int, ...]], dict[str, np.ndarray]] = {}
    for quantity, d in _derivatives(example, part).items():
        if (d.top, d.index) not in by_top:
            by_top[(d.top, d.index)] = reverse_mode(example.graph, leaves, d.top, d.index)
        values[(quantity, NAMED)] = by_top[(d.top, d.index)][d.wrt]
    return State(params=dict(leaves), values=values)


def torch_graph_state(example: GraphExample, part: GraphPart, leaves: dict[str, np.ndarray]) -> State:
    """Values by torch, derivatives by ``torch.autograd.grad``."""
    import torch

    tensors = {name: torch.tensor(np.asarray(value, dtype=np.float64)) for name, value in leaves.items()}
    values = {(name, NAMED): t.detach().numpy().copy() for name, t in torch_values(example.graph, tensors).items()}
    for quantity, d in _derivatives(example, part).items():
        values[(quantity, NAMED)] = torch_derivative(example.graph, leaves, d.top, d.index, d.wrt)
    return State(params=dict(leaves), values=values)


def fd_graph_state(example: GraphExample, part: GraphPart, leaves: dict[str, np.ndarray]) -> State:
    """Derivatives by central differences, entry by entry; an entry whose difference crosses a kink is marked."""
    values = {(name, NAMED): value for name, value in evaluate(example.graph, leaves).items()}
    kinks = {}
    for quantity, d in _derivatives(example, part).items():
        shape = np.shape(values[(d.wrt, NAMED)])
        grad, kink = np.zeros(shape), np.zeros(shape, dtype=bool)
        for at in np.ndindex(shape):
            grad[at], kink[at] = fd_derivative(example.graph, leaves, d.top, d.index, d.wrt, at)
        values[(quantity, NAMED)], kinks[(quantity, NAMED)] = grad, kink
    return State(params=dict(leaves), values=values, kinks=kinks)


def refbp_graph_trajectory(example: GraphExample, part: GraphPart, kept: set[int]) -> dict[int, State]:
    """refbp's states at the ``kept`` steps.

    The trained leaves are views into one flat vector that the optimiser's in-place rule
    (:class:`refbp.update_rules.UpdateRule`, the numbers of :class:`worked.optimizers.Optimizer`
    bit for bit) updates, with each step's gradients (:class:`worked.graph_tape.GradientTape`,
    the numbers of :func:`worked.graph.gradients_of` bit for bit) copied in.
    """
    start, loss, names = example.start(part), example.loss, list(example.parameters)
    layout = [(name, np.shape(start[name])) for name in names]
    theta = np.concatenate([np.ravel(start[name]) for name in names]) if names else np.zeros(0)
    g = np.zeros_like(theta)
    views, grad_views, offset = {}, [], 0
    for name, shape in layout:
        size = math.prod(shape)
        views[name] = theta[offset : offset + size].reshape(shape)
        grad_views.append((name, g[offset : offset + size].reshape(shape)))
        offset += size
    leaves = {**start, **views}
    tape = GradientTape(example.graph, loss, names) if loss is not None else None
    spec = example.optimizer
    rule = UpdateRule(spec.kind, spec.settings, example.learning_rate or 0.0, theta, g)
    refbp: dict[int, State] = {}
    with np.errstate(all="ignore"):
        for step in range(max(kept) + 1):
            if step in kept:
                state = refbp_graph_state(example, part, {n: np.array(v, copy=True) for n, v in leaves.items()})
                state.optimizer, state.t = rule.state_by_name(layout), step
                refbp[step] = state
            if step < max(kept) and tape is not None:
                grads = tape.gradients(leaves)
                for name, view in grad_views:
                    np.copyto(view, grads[name])
                rule.step()
    return refbp


def graph_trajectories(example: GraphExample, part: GraphPart, *, device: str | None = None) -> Runs:
    """Each computation's states at the steps the part's claims (and their hints) need."""
    import torch

    del device  # graphs are small: torch runs them on the CPU
    lr, graph, loss = example.learning_rate or 0.0, example.graph, example.loss
    kept, claimed = needed_steps(part.claims, bool(lr and loss))
    names = list(example.parameters)

    refbp = refbp_graph_trajectory(example, part, kept)

    last = max(claimed)
    twin: dict[int, State] = {}
    diffs: dict[int, State] = {}
    if last > FULL_PATH_STEPS or loss is None:
        for step in sorted(claimed):
            twin[step] = torch_graph_state(example, part, refbp[step].params)
            diffs[step] = fd_graph_state(example, part, refbp[step].params)
        return {"refbp": refbp, "torch": twin, "fd": diffs}

    tensors = {n: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=n in names)
               for n, v in example.start(part).items()}  # fmt: skip
    torch_opt = torch_optimizer(example.optimizer, lr, [tensors[n] for n in names])
    for step in range(last + 1):
        if step in claimed:
            twin[step] = torch_graph_state(example, part, {n: t.detach().numpy().copy() for n, t in tensors.items()})
        if step < last:
            torch_opt.zero_grad()
            torch_gradients(graph, tensors, loss, names)
            torch_opt.step()

    leaves = example.start(part)
    optimizer = Optimizer(example.optimizer, lr)
    for step in range(last + 1):
        if step in claimed:
            diffs[step] = fd_graph_state(example, part, leaves)
        if step < last:
            grads = fd_gradients(graph, leaves, loss, names)
            leaves = {**leaves, **optimizer.step({n: leaves[n] for n in names}, grads)}
    return {"refbp": refbp, "torch": twin, "fd": diffs}
