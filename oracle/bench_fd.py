"""Finite differences against ``torch.autograd.gradcheck`` in ``refbp bench``, both modes, on ≥ 10k parameters.

Per-entry finite differences of every parameter entry (:func:`oracle.finite_diff.fd_gradients`
plus refbp's gradients and the comparison, :func:`fd_full_check`) against
``gradcheck(fast_mode=False)``, and the directional check (:func:`fd_directional_check`:
every parameter tensor and the input, :func:`oracle.finite_diff.fd_directional_many`,
per-entry differences of a tensor that disagrees) against ``gradcheck(fast_mode=True)``, on
the same networks and data. gradcheck's fast mode, with the parameters as its inputs, draws
one random direction ``u`` per input tensor (uniform ``[0, 1)``, normalised), takes ``J·u`` by
a central difference (two forward passes per tensor) and compares it with ``vᵀJ·u`` from
backward passes. The target compares equal work: :data:`GRADCHECK_DIRECTIONS` direction per
tensor (the input on top, which gradcheck does not check); the oracle's
:data:`oracle.check.DIRECTIONS` per tensor is timed and reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from oracle.bench_grid import CLASSES
from oracle.bench_measure import hotspots, median, phase_shares, profile_summary, time_interleaved, verdict_row
from oracle.bench_torch import TorchNet
from oracle.cases import Case
from oracle.check import DIRECTIONS
from oracle.compare import compare_arrays
from oracle.fd_directions import random_directions_many
from oracle.finite_diff import fd_directional_many, fd_gradients
from refbp.network import backprop
from refbp.spec import L2Spec, LayerSpec, LossSpec, NetworkSpec
from refbp.trace import quantity_map

FD_BATCH = 16
FD_SLOW_TARGET = 20.0
FD_FAST_TARGET = 3.0
GRADCHECK_DIRECTIONS = 1
"""Directions per tensor of the directional check timed against gradcheck's fast mode: as many as gradcheck draws."""
DIRECTION_ENTRIES = "uniform"
"""How the directional check draws its directions (see :func:`oracle.finite_diff.random_directions_many`):
uniform on [−1, 1), as good a random direction as a Gaussian one and about 5× cheaper to draw in NumPy."""


def fd_specs(smoke: bool = False) -> tuple[NetworkSpec, ...]:
    """The networks of the finite-difference comparison: ≥ 10k parameters each (tiny ones for a smoke run).

    One ``in_out`` classifier (tanh, softmax cross-entropy) and one ``out_in`` regressor
    (ReLU, sigmoid, squared error with an L2 term); case data keep ReLU pre-activations
    away from the kink, so both checks can pass.
    """
    scale = 8 if smoke else 1
    return (
        NetworkSpec(
            inputs=32 // scale,
            layers=(LayerSpec(128 // scale, "tanh"), LayerSpec(64 // scale, "tanh"), LayerSpec(CLASSES, "softmax")),
            loss=LossSpec("softmax_cross_entropy", "mean", targets="index"),
        ),
        NetworkSpec(
            inputs=20 // scale,
            layers=(LayerSpec(100 // scale, "relu"), LayerSpec(80 // scale, "sigmoid"), LayerSpec(5, "identity")),
            layout="out_in",
            loss=LossSpec("half_sse", "sum"),
            l2=L2Spec(lam=0.01),
        ),
    )


def parameter_keys(spec: NetworkSpec) -> list[tuple[int, str]]:
    """``(layer, "dL/dW")`` and ``(layer, "dL/db")`` for every parameter, in the order of the spec."""
    return [(int(name[1:]), f"dL/d{name[0]}") for name in spec.parameter_shapes()]


DIRECTIONAL_PHASES = {
    "stacked forward pass": "directional_stacked",
    "refbp's fwd+bwd": "backprop",
    "drawing directions": "random_directions_many",
    "validation and unperturbed forward": "prepare_net",
    "checking directions": "check_directions",
    "comparison": "compare_arrays",
}
"""Where the time of :func:`fd_directional_check` goes: label → the function that does that part."""


def fd_full_check(spec: NetworkSpec, data: Any) -> bool:
    """refbp's parameter gradients against per-entry central differences of every parameter entry."""
    _, grads = backprop(spec, data.params, data.X, data.T)
    mine = grads.by_parameter()
    keys = parameter_keys(spec)
    fd = fd_gradients(spec, data.params, data.X, data.T, targets=keys)
    return all(_agrees(mine[_name(key)], fd.values[key], spec) for key in keys)


def directional_keys(spec: NetworkSpec) -> list[tuple[int, str]]:
    """What the directional check covers: every parameter tensor (:func:`parameter_keys`) and the input."""
    return [*parameter_keys(spec), (0, "dL/dx")]


def fd_directional_check(spec: NetworkSpec, data: Any, seed: int = 0, *, directions: int = DIRECTIONS) -> bool:
    """refbp's gradients against directional finite differences: :func:`directional_disagreements` finds none."""
    return not directional_disagreements(spec, data, seed, directions=directions)


def directional_disagreements(
    spec: NetworkSpec,
    data: Any,
    seed: int = 0,
    *,
    directions: int = DIRECTIONS,
    gradients: Mapping[tuple[int, str], np.ndarray] | None = None,
) -> list[tuple[int, str]]:
    """The tensors whose gradient disagrees with finite differences, located as the oracle's directional mode does.

    ``gradients`` (``{(layer, quantity): array}`` for :func:`directional_keys`; default
    refbp's) is projected on ``directions`` random unit directions per tensor (every
    parameter tensor and the input; entries :data:`DIRECTION_ENTRIES`, one generator draw
    for all of them) and compared with the directional derivatives of
    :func:`oracle.finite_diff.fd_directional_many` (one stacked forward pass for all the
    ``±h`` copies). Where the projections disagree, the tensors whose own projections
    disagree are differenced entry by entry (:func:`oracle.finite_diff.fd_gradients`) and
    those that still disagree are returned, in the order of :func:`directional_keys` — as
    gradcheck's fast mode reruns its slow mode for an input that fails. An empty list
    means the check passed.
    """
    if gradients is None:
        _, grads = backprop(spec, data.params, data.X, data.T)
        gradients = quantity_map(None, grads)
    keys = directional_keys(spec)
    rng = np.random.default_rng(seed)
    shapes = [np.shape(gradients[key]) for key in keys]
    drawn = dict(zip(keys, random_directions_many(shapes, directions, rng, entries=DIRECTION_ENTRIES), strict=True))
    fd = fd_directional_many(spec, data.params, data.X, data.T, drawn)
    projected = {key: drawn[key].reshape(directions, -1) @ np.ravel(gradients[key]) for key in keys}
    mine, theirs = np.concatenate(list(projected.values())), np.concatenate([fd[key][0] for key in keys])
    kinks = np.concatenate([fd[key][1] for key in keys])
    if _agrees(mine, theirs, spec, kinks):
        return []
    # Each tensor's tolerance as in the joint comparison: relative to the largest projection of any tensor.
    scale = float(np.maximum(np.abs(mine), np.abs(theirs))[~kinks].max(initial=0.0))
    suspects = [key for key in keys if not _agrees(projected[key], fd[key][0], spec, fd[key][1], scale)]
    if not suspects:
        return []
    entries = fd_gradients(spec, data.params, data.X, data.T, targets=suspects)
    return [
        key for key in suspects if not _agrees(gradients[key], entries.values[key], spec, entries.kinks[key], scale)
    ]


def _name(key: tuple[int, str]) -> str:
    """``(2, "dL/dW")`` → ``"W2"``."""
    layer, quantity = key
    return f"{quantity[-1]}{layer}"


def _agrees(
    candidate: np.ndarray,
    reference: np.ndarray,
    spec: NetworkSpec,
    kinks: np.ndarray | None = None,
    scale_floor: float = 0.0,
) -> bool:
    row = compare_arrays(
        candidate,
        reference,
        case="bench",
        layer=0,
        quantity="dL/dW",
        pair="refbp~fd",
        dtype=spec.dtype,
        kinks=kinks,
        scale_floor=scale_floor,
    )
    return row.status in ("ok", "kink")


def measure_fd(spec: NetworkSpec, *, repeats: int, fast_repeats: int = 7, sample_seconds: float = 0.05) -> dict:
    """Finite differences against gradcheck, both modes, on one network (median seconds per check).

    Two interleaved runs. The slow pair (seconds a call: :func:`fd_full_check` and
    gradcheck's slow mode) is sampled one call at a time, ``repeats`` samples. The
    directional checks and gradcheck's fast mode (milliseconds a call) are timed on their
    own, ``fast_repeats`` samples of at least ``sample_seconds`` each: timed in the same
    run as the slow pair, one call a sample, each fast call ran cold right after a
    seconds-long slow one (caches and the allocator's memory churned by it), and which
    slow check preceded which fast one weighed on the ratio (ours came after gradcheck's
    slow mode, gradcheck's fast mode after our millisecond check).

    ``fd_directional`` draws :data:`GRADCHECK_DIRECTIONS` direction per tensor, as
    gradcheck's fast mode does (the target's comparison); ``fd_directional_oracle``
    draws :data:`oracle.check.DIRECTIONS`, as the oracle's directional mode does.
    """
    import torch

    data = Case(spec, batch=FD_BATCH, seed=0).materialize()
    net = TorchNet.build(spec, data.params, data.X, data.T)
    loss_of, leaves = net.function_of_parameters(), tuple(net.parameters)
    slow: dict[str, Callable[[], Any]] = {
        "fd_full": lambda: fd_full_check(spec, data),
        "gradcheck_slow": lambda: torch.autograd.gradcheck(loss_of, leaves, fast_mode=False, raise_exception=False),
    }
    fast: dict[str, Callable[[], Any]] = {
        "fd_directional": lambda: fd_directional_check(spec, data, directions=GRADCHECK_DIRECTIONS),
        "fd_directional_oracle": lambda: fd_directional_check(spec, data, directions=DIRECTIONS),
        "gradcheck_fast": lambda: torch.autograd.gradcheck(loss_of, leaves, fast_mode=True, raise_exception=False),
    }
    passed = {name: bool(call()) for name, call in {**slow, **fast}.items()}
    samples = time_interleaved(slow, repeats=repeats, sample_seconds=0.0)
    samples.update(time_interleaved(fast, repeats=fast_repeats, sample_seconds=sample_seconds))
    seconds = {name: median(values) for name, values in samples.items()}
    row = {
        "network": describe_spec(spec),
        "parameters": spec.n_parameters,
        "batch": FD_BATCH,
        "directions": {"fd_directional": GRADCHECK_DIRECTIONS, "fd_directional_oracle": DIRECTIONS},
        "seconds": seconds,
        "samples": samples,
        "passed": passed,
        "speedup_full": seconds["gradcheck_slow"] / seconds["fd_full"],
        "speedup_directional": seconds["gradcheck_fast"] / seconds["fd_directional"],
        "speedup_directional_oracle": seconds["gradcheck_fast"] / seconds["fd_directional_oracle"],
    }
    if row["speedup_full"] < FD_SLOW_TARGET:
        row["hotspots_full"] = hotspots(slow["fd_full"], seconds=0.0)
    for name in ("fd_directional", "fd_directional_oracle"):
        suffix = name.removeprefix("fd")  # "_directional", "_directional_oracle"
        if row["speedup" + suffix] < FD_FAST_TARGET:
            row["hotspots" + suffix] = hotspots(fast[name])
            row["phases" + suffix] = phase_shares(fast[name], DIRECTIONAL_PHASES)
    return row


def describe_spec(spec: NetworkSpec) -> str:
    """``"32 → 128 tanh → 64 tanh → 10 softmax, softmax_cross_entropy/mean, in_out"``."""
    layers = " → ".join(f"{layer.units} {layer.activation}" for layer in spec.layers)
    l2 = f", L2 λ={spec.l2.lam:g}" if spec.l2.lam else ""
    return f"{spec.inputs} → {layers}, {spec.loss.kind}/{spec.loss.reduction}{l2}, {spec.layout}"


def why_directional(row: Mapping, suffix: str) -> str:
    """``"time: …; profile: …"`` from the phase shares and hot spots of a directional check ("" without them)."""
    parts = []
    phases = row.get("phases" + suffix)
    if phases:
        ranked = sorted(phases.items(), key=lambda item: item[1], reverse=True)
        parts.append("time: " + ", ".join(f"{label} {share:.0%}" for label, share in ranked))
    if row.get("hotspots" + suffix):
        parts.append(profile_summary(row["hotspots" + suffix]))
    return "; ".join(parts)


def fd_verdicts(fd_rows: list[dict]) -> list[dict]:
    """Target rows: per-entry FD ≥ 20× faster than gradcheck's slow mode, directional ≥ 3× than its fast mode."""
    rows = []
    for row in fd_rows:
        big = row["parameters"] >= 10_000
        label = f"{row['parameters']:,} parameters" + ("" if big else " (smoke network, < 10k)")
        for key, target, mode in (
            ("speedup_full", FD_SLOW_TARGET, "full"),
            ("speedup_directional", FD_FAST_TARGET, "directional"),
        ):
            speedup = row[key]
            against = "gradcheck slow mode" if mode == "full" else "gradcheck fast mode"
            measured = f"{speedup:.1f}×"
            why = profile_summary(row.get(f"hotspots_{mode}"))
            oracle_speedup = row.get("speedup_directional_oracle")
            if mode == "directional" and oracle_speedup is not None:
                # The target compares equal work (gradcheck's one direction per tensor); the oracle draws more.
                measured += f" ({GRADCHECK_DIRECTIONS}/tensor as gradcheck; {DIRECTIONS}/tensor: {oracle_speedup:.1f}×)"
                why = why_directional(row, "_directional")
            rows.append(
                verdict_row(
                    f"FD {mode} vs {against}, {label}",
                    f"≥ {target:.0f}× faster",
                    measured,
                    speedup >= target,
                    f"{1 - speedup / target:.0%} short",
                    why,
                )
            )
    return rows
