"""Compute every claimed number three independent ways and judge the printed value.

The three computations, each carried through the same number of optimiser steps on its
own parameters (see :mod:`worked.optimizers`; plain ``θ ← θ − η ∂L/∂θ`` by default):

``refbp``  :func:`refbp.network.backprop` at every step a claim (or a hint) needs; the steps
           between are taken by the lean :class:`refbp.train.Trainer` (validated once, the
           same numbers bit for bit), with the rules of :mod:`worked.optimizers`;
``torch``  the torch twin (:func:`oracle.torch_twin.torch_backprop`, autograd) with the
           parameters held as torch tensors and updated in place by ``torch.optim``;
``fd``     central finite differences (:mod:`oracle.finite_diff`): its own forward pass for
           ``z``, ``a`` and the loss, per-entry differences for every gradient, and its own
           updates from those differences.

Beyond :data:`FULL_PATH_STEPS` steps, torch and finite differences no longer walk the whole
path themselves: they check each claimed step at refbp's parameters there (refbp alone
takes the steps, keeping only the states a claim or a hint needs).

A value is *confirmed* when every available pair agrees within the tolerances of
:func:`oracle.compare.tolerance_for` (finite differences have nothing to say about
``data_loss`` and ``penalty``, which refbp and torch alone confirm). The printed number is
judged against refbp's value by :func:`worked.rounding.judge`.

Statuses: see :mod:`worked.results`. ``[nodes]`` are evaluated on each computation's own
values (:mod:`worked.network_nodes`); graph examples are computed by :mod:`worked.graph_check`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from oracle.compare import tolerance_for
from oracle.fd_dense import layout_swap, preactivations, stacked_loss
from oracle.fd_functions import activate
from oracle.finite_diff import fd_gradients
from refbp.activations import activation_for
from refbp.data import batch_size
from refbp.network import backprop
from refbp.params import Parameters, copy_parameters
from refbp.spec import NetworkSpec
from refbp.trace import ForwardTrace, Gradients, quantity_map
from refbp.train import NonFiniteError, Trainer
from worked.aliases import LOCAL_QUANTITY, NAMED, Key
from worked.claim import Claim
from worked.example_file import Part, WorkedExample
from worked.network_nodes import add_node_values
from worked.optimizers import Optimizer, torch_optimizer
from worked.results import COMPUTATIONS, FAILING, STATUSES, ClaimResult, Runs, State, Values
from worked.rounding import EXACT, HAND_ROUNDED, ROUNDED, distance_in_units, judge, round_like

__all__ = ["COMPUTATIONS", "FAILING", "STATUSES", "ClaimResult", "State", "check_example", "trajectories"]

FD_STEP = np.finfo(np.float64).eps ** (1 / 3)
FULL_PATH_STEPS = 500


# ---------------------------------------------------------------------------- one state


def _from_trace(spec: NetworkSpec, params: Mapping[str, np.ndarray], trace: ForwardTrace, grads: Gradients) -> Values:
    values: Values = {(q, layer): np.asarray(v) for (layer, q), v in quantity_map(trace, grads).items()}
    values[("x", 0)] = np.asarray(trace.x)
    values[("data_loss", spec.depth)] = np.asarray(trace.data_loss)
    values[("penalty", spec.depth)] = np.asarray(trace.penalty)
    for name, value in params.items():
        values[(name[0], int(name[1:]))] = np.asarray(value)
    return values


def refbp_state(spec: NetworkSpec, params: Parameters, X: np.ndarray, T: np.ndarray) -> State:
    """refbp's forward and backward pass; ``da/dz`` from refbp's activation derivatives."""
    trace, grads = backprop(spec, params, X, T)
    values = _from_trace(spec, params, trace, grads)
    for number, layer in enumerate(spec.layers, start=1):
        if layer.activation != "softmax":
            z, a = trace.layers[number - 1].z, trace.layers[number - 1].a
            slope = activation_for(layer, 1 - spec.batch_axis).backward(z, a, np.ones_like(z))
            values[(LOCAL_QUANTITY, number)] = slope
    return State(params=params, values=values)


def torch_state(
    spec: NetworkSpec, tensors: Mapping[str, Any], X: np.ndarray, T: np.ndarray, device: str | None
) -> State:
    """The torch twin on the current torch parameters; ``da/dz`` by autograd through torch's activation."""
    import torch

    from oracle.torch_twin import torch_backprop
    from oracle.twin.losses import activation as _activation

    params = {name: t.detach().cpu().numpy().copy() for name, t in tensors.items()}
    trace, grads = torch_backprop(spec, params, X, T, device=device)
    values = _from_trace(spec, params, trace, grads)
    for number, layer in enumerate(spec.layers, start=1):
        if layer.activation != "softmax":
            z = torch.tensor(trace.layers[number - 1].z, requires_grad=True)
            (slope,) = torch.autograd.grad(_activation(layer, 1 - spec.batch_axis)(z).sum(), z)
            values[(LOCAL_QUANTITY, number)] = slope.numpy()
    return State(params=params, values=values)


def fd_state(spec: NetworkSpec, params: Parameters, X: np.ndarray, T: np.ndarray) -> State:
    """Finite differences of every gradient, with the difference module's own forward pass.

    ``da/dz`` is a central difference of that forward's activation; an entry whose step
    crosses a ReLU kink is marked in ``kinks``.
    """
    fd = fd_gradients(spec, params, X, T)
    values: Values = {(q, layer): v for (layer, q), v in fd.values.items()}
    kinks: Values = {(q, layer): k for (layer, q), k in fd.kinks.items()}
    values[("x", 0)] = np.asarray(X, dtype=np.float64)
    values[("loss", spec.depth)] = np.asarray(stacked_loss(spec, params, X, T)[0])
    for name, value in params.items():
        values[(name[0], int(name[1:]))] = np.asarray(value, dtype=np.float64)
    for number, (layer, z) in enumerate(zip(spec.layers, preactivations(spec, params, X), strict=True), start=1):
        values[("z", number)] = z
        values[("a", number)] = layout_swap(activate(layout_swap(z, spec), layer), spec)
        if layer.activation != "softmax":
            h = FD_STEP * np.maximum(1.0, np.abs(z))
            values[(LOCAL_QUANTITY, number)] = (activate(z + h, layer) - activate(z - h, layer)) / (2 * h)
            kinks[(LOCAL_QUANTITY, number)] = (np.abs(z) < h) & (layer.activation in ("relu", "leaky_relu"))
    return State(params=params, values=values, kinks=kinks)


# ---------------------------------------------------------------------------- trajectories


def needed_steps(claims: tuple[Claim, ...], has_rate: bool) -> tuple[set[int], set[int]]:
    """Steps whose states refbp keeps (claims, and one step either side for hints) and the claimed steps."""
    claimed = {0} | {c.step for c in claims}
    kept = set(claimed)
    for step in claimed:
        kept |= {step - 1, step + 1} if has_rate else set()
    return {s for s in kept if s >= 0}, claimed


def _with_nodes(example: WorkedExample, part: Part, state: State) -> State:
    if example.nodes:
        # a node may read what this computation does not have (finite differences of the penalty)
        with contextlib.suppress(KeyError):
            add_node_values(example.spec, batch_size(example.spec, part.X), example.nodes, state.values)
    return state


def trajectories(example: WorkedExample, part: Part, *, device: str | None = None) -> Runs:
    """Each computation's states at the steps the part's claims (and their hints) need.

    refbp carries one step further than the claims (so that a hint can compare a claim with
    the value after one more update) and keeps its optimiser's state at every kept step.
    """
    import torch

    spec, lr, X, T = example.spec, example.learning_rate or 0.0, part.X, part.T
    kept, claimed = needed_steps(part.claims, bool(lr))
    refbp = refbp_trajectory(example, part, kept, claimed)

    last = max(claimed)
    twin: dict[int, State] = {}
    diffs: dict[int, State] = {}
    if last > FULL_PATH_STEPS:
        for step in sorted(claimed):
            at = refbp[step].params
            twin[step] = _with_nodes(example, part, torch_state(spec, {n: torch.tensor(v) for n, v in at.items()},
                                                                X, T, device))  # fmt: skip
            diffs[step] = _with_nodes(example, part, fd_state(spec, at, X, T))
        return {"refbp": refbp, "torch": twin, "fd": diffs}

    tensors = {name: torch.tensor(value) for name, value in example.start(part).items()}
    trained = [tensor for name, tensor in tensors.items() if name not in example.frozen]
    torch_opt = torch_optimizer(example.optimizer, lr, trained) if lr and trained else None
    for step in range(last + 1):
        state = torch_state(spec, tensors, X, T, device)
        if step in claimed:
            twin[step] = _with_nodes(example, part, state)
        if step < last and torch_opt is not None:
            for name, tensor in tensors.items():
                tensor.grad = torch.as_tensor(_gradients(state)[name], dtype=tensor.dtype)
            torch_opt.step()

    params = copy_parameters(example.start(part))
    optimizer = Optimizer(example.optimizer, lr, example.frozen)
    for step in range(last + 1):
        state = fd_state(spec, params, X, T)
        if step in claimed:
            diffs[step] = _with_nodes(example, part, state)
        if step < last:
            params = optimizer.step(params, _gradients(state))
    return {"refbp": refbp, "torch": twin, "fd": diffs}


def refbp_trajectory(example: WorkedExample, part: Part, kept: set[int], claimed: set[int]) -> dict[int, State]:
    """refbp's states at the ``kept`` steps: the steps between are taken by the lean :class:`refbp.train.Trainer`.

    Parameters that become NaN or infinite stop the check with one line naming the file,
    the ``after_steps`` table and the step (:class:`refbp.train.NonFiniteError`).
    """
    spec, X, T = example.spec, part.X, part.T
    start = example.start(part)
    if max(kept) == 0:
        return {0: _with_nodes(example, part, refbp_state(spec, copy_parameters(start), X, T))}
    trainer = Trainer(spec, start, X, T, lr=example.learning_rate, optimizer=example.optimizer.kind,
                      settings=example.optimizer.settings, frozen=example.frozen)  # fmt: skip
    refbp: dict[int, State] = {}
    for step in sorted(kept):
        try:
            trainer.run(step - trainer.step)
        except NonFiniteError as err:
            table = min((s for s in claimed if s >= err.step), default=max(claimed))
            where = (f"parts.{part.name}." if part.name else "") + f"after_steps.{table}"
            raise err.with_source(example.source, where) from None
        state = refbp_state(spec, trainer.parameters(), X, T)
        state.optimizer, state.t = trainer.optimizer_state(), step
        refbp[step] = _with_nodes(example, part, state)
    return refbp


def _gradients(state: State) -> dict[str, np.ndarray]:
    return {name: state.values[("dL/d" + name[0], int(name[1:]))] for name in state.params}


# ---------------------------------------------------------------------------- judging


def entry_value(state: State, key: Key, index: tuple[int, ...]) -> float | None:
    array = state.values.get(key)
    return None if array is None else float(np.asarray(array)[index])


def _agreement(
    dtype: str, loss_key: Key | None, states: Mapping[str, State], claim: Claim
) -> tuple[dict[str, float | None], str, bool]:
    """Each computation's value, a sentence on their agreement, and whether they agree."""
    key, index = claim.entry.key, claim.entry.index
    by = {name: entry_value(states[name], key, index) for name in COMPUTATIONS}
    reference = states["refbp"]
    loss = reference.values.get(loss_key) if loss_key is not None else None
    scale = max(float(np.abs(reference.values[key]).max()), 0.0 if loss is None else abs(float(loss)))
    agree, differ = ["refbp"], []
    for name in ("torch", "fd"):
        value = by[name]
        if value is None:
            continue
        tol = tolerance_for(f"refbp~{name}", dtype, scale if np.isfinite(scale) else 1.0)
        both_undefined = not np.isfinite(value) and not np.isfinite(by["refbp"]) and str(value) == str(by["refbp"])
        if both_undefined or abs(value - by["refbp"]) <= tol.atol + tol.rtol * max(abs(value), abs(by["refbp"])):
            agree.append(name)
        else:
            differ.append(name)
    text = " = ".join(agree)
    if differ:
        text += " ≠ " + ", ".join(differ)
    missing = [name for name in COMPUTATIONS if by[name] is None]
    if missing:
        text += f" ({', '.join(missing)}: n/a)"
    return by, text, not differ


def _at_kink(state: State, claim: Claim) -> bool:
    kinks = state.kinks.get(claim.entry.key)
    return kinks is not None and bool(np.asarray(kinks)[claim.entry.index])


STATUS_OF_MATCH = {ROUNDED: "ok", EXACT: "ok", HAND_ROUNDED: "hand-rounded"}


def judge_claim(example: Any, part: Any, claim: Claim, runs: Runs) -> ClaimResult:
    """The :class:`ClaimResult` of one claim, without its hint (``example`` of either form)."""
    states = {name: runs[name][claim.step] for name in COMPUTATIONS}
    by, agreement, agree = _agreement(example.dtype, loss_key(example), states, claim)
    value = float(by["refbp"])  # type: ignore[arg-type]
    result = ClaimResult(
        example=example.title,
        source=example.source,
        part=part.name,
        claim=claim,
        status="ok",
        value=value,
        by=by,
        should_read=round_like(claim.printed, value),
        units_off=distance_in_units(claim.printed, value),
        agreement=agreement,
    )
    if _at_kink(states["fd"], claim):
        result.status = "unsupported"
        kink = "a ReLU kink" if isinstance(example, WorkedExample) else "a kink (relu, abs, a max or min tie)"
        result.agreement += f"; at {kink}, where the derivative is not defined"
        return result
    if not agree:
        result.status = "disagree"
        return result
    match = judge(claim.printed, value, claim.slack_units)
    result.status = STATUS_OF_MATCH.get(match or "", "wrong")
    result.match = match or ""
    return result


def loss_key(example: Any) -> Key | None:
    """Where the loss is in a state's values (``None``: a graph without a loss)."""
    if isinstance(example, WorkedExample):
        return ("loss", example.spec.depth)
    return (example.loss, NAMED) if example.loss else None


def check_example(example: Any, *, device: str | None = None) -> list[Any]:
    """Judge every claim of ``example`` (either form), in file order, then its formulas.

    Wrong claims get a hint where one fits; a wrong claim that its own printed inputs
    reproduce becomes ``follows`` (see :mod:`worked.follow_on`).
    """
    from worked.follow_on import attribute_follow_ons
    from worked.formula_check import check_formulas
    from worked.graph_check import graph_trajectories
    from worked.hints import HintContext, hint_for

    make = trajectories if isinstance(example, WorkedExample) else graph_trajectories
    runs = {part.name: make(example, part, device=device) for part in example.parts}
    results: list[Any] = []
    for part in example.parts:
        context = HintContext(example=example, part=part, runs={name: r["refbp"] for name, r in runs.items()})
        judged = [judge_claim(example, part, claim, runs[part.name]) for claim in part.claims]
        attribute_follow_ons(example, part, judged, runs[part.name]["refbp"])
        for result in judged:
            if result.status == "wrong":
                result.hint = hint_for(result, context)
        results += judged
    return results + check_formulas(example)
