"""Compute every claimed number three independent ways and judge the printed value.

The three computations, each carried through the same number of gradient-descent steps
on its own parameters (``θ ← θ − η ∂L/∂θ`` with the example's learning rate):

``refbp``  :func:`refbp.network.backprop`, updates by :func:`refbp.train.sgd_step`;
``torch``  the torch twin (:func:`oracle.torch_twin.torch_backprop`, autograd) with the
           parameters held as torch tensors and updated in place by torch;
``fd``     central finite differences (:mod:`oracle.finite_diff`): its own forward pass for
           ``z``, ``a`` and the loss, per-entry differences for every gradient, and its own
           updates from those differences.

A value is *confirmed* when every available pair agrees within the tolerances of
:func:`oracle.compare.tolerance_for` (finite differences have nothing to say about
``data_loss`` and ``penalty``, which refbp and torch alone confirm). The printed number is
judged against refbp's value by :func:`worked.rounding.judge`.

Statuses: ``ok`` (consistent with the printed precision), ``wrong``, ``unsupported`` (a
derivative at a ReLU kink, where it is not defined and the printed number cannot be
checked), ``disagree`` (the three computations differ: an error of the tool, never of the
notes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oracle.compare import tolerance_for
from oracle.finite_diff import _activate, _swap, fd_gradients, preactivations, stacked_loss
from refbp.activations import activation_for
from refbp.network import backprop
from refbp.params import Parameters, copy_parameters
from refbp.spec import NetworkSpec
from refbp.trace import ForwardTrace, Gradients, quantity_map
from refbp.train import sgd_step
from worked.aliases import LOCAL_QUANTITY, Key
from worked.example_file import Claim, Part, WorkedExample
from worked.rounding import distance_in_units, judge, round_like

COMPUTATIONS = ("refbp", "torch", "fd")
STATUSES = ("ok", "wrong", "unsupported", "disagree")
FAILING = ("wrong", "disagree")
FD_STEP = np.finfo(np.float64).eps ** (1 / 3)

Values = dict[Key, np.ndarray]


@dataclass
class State:
    """What one computation knows at one step: ``values[(quantity, layer)]`` and its kink masks."""

    params: Parameters
    values: Values
    kinks: Values = field(default_factory=dict)


@dataclass
class ClaimResult:
    """One claim, judged."""

    example: str
    source: str
    part: str
    claim: Claim
    status: str
    value: float
    """refbp's value (the one the claim is judged against)."""
    by: dict[str, float | None]
    """Each computation's value; ``None`` where it has none (e.g. finite differences of ``penalty``)."""
    should_read: str
    """The true value written with the claim's precision."""
    match: str = ""
    """``rounded`` or ``hand-rounded`` for an ``ok`` claim."""
    units_off: float = 0.0
    agreement: str = ""
    hint: str = ""

    @property
    def where(self) -> str:
        """``part b, after 2 steps`` or ``""``."""
        bits = [f"part {self.part}"] if self.part else []
        if self.claim.step:
            bits.append(f"after {self.claim.step} step{'s' if self.claim.step > 1 else ''}")
        return ", ".join(bits)


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

    from oracle.torch_twin import _activation, torch_backprop

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
        values[("a", number)] = _swap(_activate(_swap(z, spec), layer), spec)
        if layer.activation != "softmax":
            h = FD_STEP * np.maximum(1.0, np.abs(z))
            values[(LOCAL_QUANTITY, number)] = (_activate(z + h, layer) - _activate(z - h, layer)) / (2 * h)
            kinks[(LOCAL_QUANTITY, number)] = (np.abs(z) < h) & (layer.activation in ("relu", "leaky_relu"))
    return State(params=params, values=values, kinks=kinks)


# ---------------------------------------------------------------------------- trajectories


def trajectories(
    example: WorkedExample, part: Part, steps: int, *, device: str | None = None
) -> dict[str, list[State]]:
    """Each computation's state before the first step and after each of ``steps`` steps.

    refbp carries one step further than the others (``steps + 1`` updates), so that a
    hint can compare a claim with the value after one more update.
    """
    import torch

    spec, lr = example.spec, example.learning_rate or 0.0
    X, T = part.X, part.T
    refbp: list[State] = []
    params = copy_parameters(example.params)
    for _ in range(steps + (2 if lr else 1)):
        state = refbp_state(spec, params, X, T)
        refbp.append(state)
        params = sgd_step(params, _gradients(state), lr)

    twin: list[State] = []
    tensors = {name: torch.tensor(value) for name, value in example.params.items()}
    for _ in range(steps + 1):
        state = torch_state(spec, tensors, X, T, device)
        twin.append(state)
        with torch.no_grad():
            for name, tensor in tensors.items():
                tensor -= lr * torch.as_tensor(_gradients(state)[name], dtype=tensor.dtype)

    diffs: list[State] = []
    params = copy_parameters(example.params)
    for _ in range(steps + 1):
        state = fd_state(spec, params, X, T)
        diffs.append(state)
        params = sgd_step(params, _gradients(state), lr)
    return {"refbp": refbp, "torch": twin, "fd": diffs}


def _gradients(state: State) -> dict[str, np.ndarray]:
    return {name: state.values[("dL/d" + name[0], int(name[1:]))] for name in state.params}


# ---------------------------------------------------------------------------- judging


def entry_value(state: State, key: Key, index: tuple[int, ...]) -> float | None:
    array = state.values.get(key)
    return None if array is None else float(np.asarray(array)[index])


def _agreement(
    spec: NetworkSpec, states: Mapping[str, State], claim: Claim
) -> tuple[dict[str, float | None], str, bool]:
    """Each computation's value, a sentence on their agreement, and whether they agree."""
    key, index = claim.entry.key, claim.entry.index
    by = {name: entry_value(states[name], key, index) for name in COMPUTATIONS}
    reference = states["refbp"]
    scale = max(float(np.abs(reference.values[key]).max()), abs(float(reference.values[("loss", spec.depth)])))
    agree, differ = ["refbp"], []
    for name in ("torch", "fd"):
        value = by[name]
        if value is None:
            continue
        tol = tolerance_for(f"refbp~{name}", spec.dtype, scale)
        if abs(value - by["refbp"]) <= tol.atol + tol.rtol * max(abs(value), abs(by["refbp"])):
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


def judge_claim(example: WorkedExample, part: Part, claim: Claim, runs: Mapping[str, list[State]]) -> ClaimResult:
    """The :class:`ClaimResult` of one claim, without its hint."""
    states = {name: runs[name][claim.step] for name in COMPUTATIONS}
    by, agreement, agree = _agreement(example.spec, states, claim)
    value = float(by["refbp"])
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
        result.agreement += "; at a ReLU kink, where the derivative is not defined"
        return result
    if not agree:
        result.status = "disagree"
        return result
    match = judge(claim.printed, value, claim.slack_units)
    result.status = "ok" if match else "wrong"
    result.match = match or ""
    return result


def check_example(example: WorkedExample, *, device: str | None = None) -> list[ClaimResult]:
    """Judge every claim of ``example``, in file order, wrong ones with a hint where one fits."""
    from worked.hints import HintContext, hint_for

    runs = {part.name: trajectories(example, part, part.max_step, device=device) for part in example.parts}
    results: list[ClaimResult] = []
    for part in example.parts:
        context = HintContext(example=example, part=part, runs={name: r["refbp"] for name, r in runs.items()})
        for claim in part.claims:
            result = judge_claim(example, part, claim, runs[part.name])
            if result.status == "wrong":
                result.hint = hint_for(result, context)
            results.append(result)
    return results
