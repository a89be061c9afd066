"""Central finite differences of a recurrent layer's per-step gradients ``∂L/∂h_t`` and ``∂L/∂c_t``.

For layer ``l``, step ``t`` and a step kind its registry entry declares (``"h"``, ``"c"``): every
entry of the state at step ``t`` is moved by ``±h`` inside the unrolled forward pass of
:mod:`oracle.fd_recurrent` (the perturbation injected at step ``t``, the recursion continuing
from the moved value through steps ``t + 1 … T − 1``), the rest of the network and the loss run
on the layer's output as in :mod:`oracle.fd_typed`, and the difference of the losses over
``2h`` is the total gradient at that step — what is carried back from later steps included,
with no backward recursion anywhere. Steps ``h = ε^{1/3}·max(1, |value|)``, in float64; an entry
whose perturbation crosses a kink further up is NaN and flagged, as for every other quantity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from oracle.fd_recurrent import FD_RECURRENT
from oracle.fd_typed import MEMORY_BUDGET, STEP_SCALE, loss_terms_from, prepare_net
from refbp.errors import InputError
from refbp.layers.registry import layer_type
from refbp.sequential_spec import SequentialSpec

Key = tuple[int, str]


def step_targets(spec: Any) -> list[Key]:
    """``(layer, "dL/dh")``, ``(layer, "dL/dc")``, … of every layer that declares per-step gradients."""
    if not isinstance(spec, SequentialSpec):
        return []
    return [
        (number, f"dL/d{kind}") for number, layer in enumerate(spec.layers, start=1) for kind in layer_type(layer).steps
    ]


def _layer_states(net: Any, number: int) -> dict[str, list[np.ndarray]]:
    """Every step's base value of each step kind of layer ``number``, ``(1, N, H)`` each."""
    layer = net.spec.layers[number - 1]
    seen: dict[str, list[np.ndarray]] = {}

    def record(t: int, kind: str, value: np.ndarray) -> np.ndarray:
        seen.setdefault(kind, []).append(value)
        return value

    FD_RECURRENT[layer.type](layer, net.params[number - 1], net.acts[number - 1], net.buffers[number - 1], record)
    return seen


def _one_step(net: Any, number: int, kind: str, t: int, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central differences ``(N, H)`` and kink flags of the loss with respect to the state ``kind`` at step ``t``."""
    layer = net.spec.layers[number - 1]
    flat = base.reshape(-1)
    h = STEP_SCALE * np.maximum(1.0, np.abs(flat))
    values, kinks = np.full(flat.size, np.nan), np.zeros(flat.size, dtype=bool)
    per_copy = 8 * net.acts[number].size * max(1, len(net.spec.layers) - number + 1)
    size = max(1, MEMORY_BUDGET // (12 * max(per_copy, 1)))
    for begin in range(0, flat.size, size):
        idx = np.arange(begin, min(begin + size, flat.size))
        p = idx.size
        copies = np.repeat(flat[None], 2 * p, axis=0)
        copies[np.arange(2 * p), np.concatenate([idx, idx])] += np.concatenate([h[idx], -h[idx]])
        moved = copies.reshape(2 * p, *base.shape[1:])

        def inject(step: int, which: str, value: np.ndarray, moved: np.ndarray = moved) -> np.ndarray:
            return moved if (step, which) == (t, kind) else value

        out, _ = FD_RECURRENT[layer.type](
            layer, net.params[number - 1], net.acts[number - 1], net.buffers[number - 1], inject
        )
        terms, kink = loss_terms_from(net, number, "a", out)
        with np.errstate(invalid="ignore", divide="ignore"):
            values[idx] = (terms[:p] - terms[p:]).sum(axis=1) / net.divisor / (2.0 * h[idx])
        kinks[idx] = kink[:p] | kink[p:]
    values[kinks] = np.nan
    return values.reshape(base.shape[1:]), kinks.reshape(base.shape[1:])


def step_gradients(
    spec: Any,
    params: Mapping[str, Any],
    X: Any,
    T: Any,
    targets: Iterable[Key] | None = None,
    *,
    buffers: Mapping[str, Any] | None = None,
) -> tuple[dict[Key, np.ndarray], dict[Key, np.ndarray]]:
    """``(values, kinks)``: for each key of ``targets`` (default :func:`step_targets`), ``(N, T, H)`` arrays."""
    with np.errstate(under="ignore"):
        net, _ = prepare_net(spec, params, X, T, buffers)
        keys = step_targets(net.spec) if targets is None else list(targets)
        values: dict[Key, np.ndarray] = {}
        kinks: dict[Key, np.ndarray] = {}
        states: dict[int, dict[str, list[np.ndarray]]] = {}
        for number, quantity in keys:
            allowed = step_targets(net.spec)
            if (number, quantity) not in allowed:
                raise InputError("target", "one of " + ", ".join(map(str, allowed)), (number, quantity))
            kind = quantity[len("dL/d") :]
            bases = states.setdefault(number, _layer_states(net, number))[kind]
            pairs = [_one_step(net, number, kind, t, base) for t, base in enumerate(bases)]
            values[(number, quantity)] = np.stack([v for v, _ in pairs], axis=1)
            kinks[(number, quantity)] = np.stack([k for _, k in pairs], axis=1)
    return values, kinks
