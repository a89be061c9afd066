"""Central finite differences for typed networks (convolution, pooling, normalisation, dropout, …).

The same quantities, steps and kink rules as :mod:`oracle.finite_diff`, with the forward pass
of :mod:`oracle.fd_layers`. Every perturbed copy carries the whole batch: a train-mode
batchnorm couples the examples through the batch statistics, so moving one entry of ``x``
or of a ``z`` moves every example's output, and every example's loss term is evaluated.

Kinks: an entry is a *kink* (NaN, mask True) when its perturbation moves a ``relu`` /
``leaky_relu`` pre-activation across 0 or changes which entry of a max-pool window is the
largest (a tie, or a near-tie within the step), in any layer at or after the perturbed one.
:func:`kink_clearance` measures how far a case is from both, so that generated cases can be
drawn away from them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracle.fd_functions import activate, logit_terms, output_terms
from oracle.fd_layers import FD_FORWARD, patches
from refbp.data import as_targets
from refbp.errors import InputError
from refbp.layers.names import WEIGHT_KINDS, split_name
from refbp.sequential_data import as_image_inputs, check_parameters, layer_buffers
from refbp.sequential_spec import SequentialSpec
from refbp.spec import KINKED_ACTIVATIONS, LOSS_OUTPUT_ACTIVATION

EPS = float(np.finfo(np.float64).eps)
STEP_SCALE = EPS ** (1.0 / 3.0)
MEMORY_BUDGET = 32 * 2**20

Key = tuple[int, str]


@dataclass
class _Net:
    spec: SequentialSpec  # float64
    params: list[dict[str, np.ndarray]]  # per layer, by kind, with a leading stack axis of 1
    buffers: list[dict[str, np.ndarray]]
    T: np.ndarray  # (1, N, k)
    zs: list[np.ndarray | None]  # (1, N, …) per layer
    acts: list[np.ndarray]  # a_0 … a_L, (1, N, …)
    argmax: list[np.ndarray | None]  # max-pool window maxima positions per layer
    divisor: float

    @property
    def from_logits(self) -> bool:
        return self.spec.loss.kind in LOSS_OUTPUT_ACTIVATION


def typed_targets(spec: SequentialSpec) -> list[Key]:
    """Every ``(layer, quantity)`` finite differences produce, output layer first, ``dL/dx`` last."""
    keys: list[Key] = []
    for number in range(spec.depth, 0, -1):
        layer = spec.layers[number - 1]
        keys.append((number, "dL/da"))
        if layer.has_activation:
            keys.append((number, "delta"))
        keys += [(number, f"dL/d{kind}") for kind in layer.parameter_shapes(spec.shapes[number - 1])]
    return [*keys, (0, "dL/dx")]


def loss_terms_from(
    net: _Net, start: int, entry: str, value: np.ndarray, override: tuple[str, np.ndarray] | None = None
):
    """Loss terms ``(S, N)`` and kink flags ``(S,)`` from a value injected as ``z_start`` or ``a_start``
    (``override``: a stacked parameter of layer ``start`` instead, run from ``a_{start−1}``)."""
    spec = net.spec
    S = max(value.shape[0], 1 if override is None else override[1].shape[0])
    kink = np.zeros(S, dtype=bool)
    if entry == "a" and start == spec.depth and override is None:
        return output_terms(spec.loss.kind, value, net.T), kink
    a, z = value, None
    first = start if entry == "z" or override is not None else start + 1
    for number in range(first, spec.depth + 1):
        layer = spec.layers[number - 1]
        if entry == "z" and number == start:
            z = value
        else:
            params = net.params[number - 1]
            if override is not None and number == start:
                params = {**params, override[0]: override[1]}
            out, where = FD_FORWARD[layer.type](layer, params, a, net.buffers[number - 1])
            if where is not None:
                kink |= (where != net.argmax[number - 1]).reshape(where.shape[0], -1).any(axis=1)
            z = out
            if not layer.has_activation:
                a = out
                continue
        if layer.activation in KINKED_ACTIVATIONS:
            kink |= (np.sign(z) != np.sign(net.zs[number - 1])).reshape(z.shape[0], -1).any(axis=1)
        if not (number == spec.depth and net.from_logits):
            a = activate(z, layer)
    if net.from_logits:
        return logit_terms(spec.loss.kind, z, net.T), kink
    return output_terms(spec.loss.kind, a, net.T), kink


def prepare_net(spec: Any, params: Any, X: Any, T: Any, buffers: Any) -> tuple[_Net, float]:
    """The float64 network with every layer's base values, and the loss."""
    if not isinstance(spec, SequentialSpec):
        raise InputError("spec", "a SequentialSpec", type(spec).__name__)
    spec = spec if spec.dtype == "float64" else spec.replace(dtype="float64")
    x = as_image_inputs(spec, X)
    batch = x.shape[0]
    targets = as_targets(spec, T, batch)
    # index labels one-hot; a masked time step (label -1) is a row of zeros
    dense_t = np.eye(spec.outputs)[targets] * (targets >= 0)[..., None] if spec.loss.targets == "index" else targets
    checked = check_parameters(spec, params)
    per_layer_params = []
    for number, layer in enumerate(spec.layers, start=1):
        kinds = layer.parameter_shapes(spec.shapes[number - 1])
        per_layer_params.append({kind: checked[f"{kind}{number}"][None] for kind in kinds})
    divisor = 1.0
    if spec.loss.reduction == "mean":
        divisor = float(batch * spec.outputs) if spec.loss.kind == "mse" else float(batch)
    net = _Net(spec, per_layer_params, layer_buffers(spec, buffers, batch), dense_t[None], [], [x[None]], [], divisor)
    a = x[None]
    for number, layer in enumerate(spec.layers, start=1):
        out, where = FD_FORWARD[layer.type](layer, net.params[number - 1], a, net.buffers[number - 1])
        net.argmax.append(where)
        net.zs.append(out if layer.has_activation else None)
        a = activate(out, layer) if layer.has_activation else out
        net.acts.append(a)
    terms, _ = (
        loss_terms_from(net, spec.depth, "z", net.zs[-1])
        if net.from_logits
        else loss_terms_from(net, spec.depth, "a", a)
    )
    penalty = 0.5 * spec.l2.lam * sum(float(np.sum(v**2)) for k, v in checked.items() if _penalised(spec, k))
    return net, float(terms.sum() / divisor + penalty)


def _penalised(spec: SequentialSpec, name: str) -> bool:
    kind = (split_name(name) or ("",))[0]
    return kind in WEIGHT_KINDS or (kind == "b" and spec.l2.include_bias)


def _chunks(n: int, per_copy: int):
    size = max(1, MEMORY_BUDGET // (2 * 6 * max(per_copy, 1)))
    for begin in range(0, n, size):
        yield np.arange(begin, min(begin + size, n))


def _difference(net: _Net, key: Key) -> tuple[np.ndarray, np.ndarray]:
    """Central differences and kink flags of one quantity, shaped like it (without the stack axis)."""
    spec, (number, quantity) = net.spec, key
    if quantity.startswith("dL/d") and quantity not in ("dL/da", "dL/dx"):
        kind = quantity[4:]
        base, entry, start = net.params[number - 1][kind], "param", number
    elif quantity == "delta":
        base, entry, start = net.zs[number - 1], "z", number
    else:
        base, entry, start = net.acts[number], "a", number
    flat = base.reshape(-1)
    h = STEP_SCALE * np.maximum(1.0, np.abs(flat))
    probability = entry == "a" and number == spec.depth and net.from_logits
    if probability:  # keep a ± h inside (0, 1), where the probability form of the loss lives
        room = flat if spec.loss.kind == "softmax_cross_entropy" else np.minimum(flat, 1.0 - flat)
        h = STEP_SCALE * np.minimum(1.0, room)
    values, kinks = np.full(flat.size, np.nan), np.zeros(flat.size, dtype=bool)
    per_copy = 8 * math.prod(net.acts[0].shape[1:2]) * sum(math.prod(s) for s in spec.shapes[max(number - 1, 0) :])
    for idx in _chunks(flat.size, per_copy):
        p = idx.size
        copies = np.repeat(flat[None], 2 * p, axis=0)
        rows = np.arange(2 * p)
        copies[rows, np.concatenate([idx, idx])] += np.concatenate([h[idx], -h[idx]])
        stacked = copies.reshape(2 * p, *base.shape[1:])
        if entry == "param":
            terms, kink = loss_terms_from(net, start, "a", net.acts[number - 1], (kind, stacked))
        else:
            terms, kink = loss_terms_from(net, start, entry, stacked)
        with np.errstate(invalid="ignore", divide="ignore"):
            diff = (terms[:p] - terms[p:]).sum(axis=1) / net.divisor
            if entry == "param" and _penalised(spec, f"{kind}{number}"):
                diff += 0.5 * spec.l2.lam * ((flat[idx] + h[idx]) ** 2 - (flat[idx] - h[idx]) ** 2)
            values[idx] = diff / (2.0 * h[idx])
        kinks[idx] = kink[:p] | kink[p:] | (h[idx] <= 0)
    values[kinks] = np.nan
    shape = base.shape[1:]
    return values.reshape(shape), kinks.reshape(shape)


def typed_gradients(
    spec: SequentialSpec,
    params: Mapping[str, Any],
    X: Any,
    T: Any,
    targets: Iterable[Key] | None = None,
    *,
    buffers: Mapping[str, Any] | None = None,
) -> tuple[dict[Key, np.ndarray], dict[Key, np.ndarray], float]:
    """``(values, kinks, loss)``: per-entry central differences of the total loss for each target key."""
    with np.errstate(under="ignore"):
        net, loss = prepare_net(spec, params, X, T, buffers)
        allowed = typed_targets(net.spec)
        keys = allowed if targets is None else [(int(k[0]), str(k[1])) for k in targets]
        values, kinks = {}, {}
        for key in keys:
            if key not in allowed:
                raise InputError("target", "one of " + ", ".join(map(str, allowed)), key)
            values[key], kinks[key] = _difference(net, key)
    return values, kinks, loss


def kink_clearance(spec: SequentialSpec, params: Mapping[str, Any], X: Any, buffers: Any = None) -> float:
    """The smallest ``|z|`` of a kinked activation and the smallest gap between a max-pool window's two
    largest entries, over the batch (``inf`` when the network has neither)."""
    with np.errstate(under="ignore"):
        if spec.sequence_output:  # the loss only picks the targets' shape: labels (N, T)
            net, _ = prepare_net(spec, params, X, np.zeros(spec.target_shape(np.shape(X)[0]), int), buffers)
        else:
            targets = np.zeros((np.shape(X)[0], spec.outputs))
            net, _ = prepare_net(spec.replace(loss=spec.loss.__class__()), params, X, targets, buffers)
    gaps = [math.inf]
    for number, layer in enumerate(net.spec.layers, start=1):
        if layer.has_activation and layer.activation in KINKED_ACTIVATIONS:
            gaps.append(float(np.abs(net.zs[number - 1]).min()))
        if layer.type == "max_pool2d":
            flat = patches(net.acts[number - 1], layer.kernel, layer.stride)
            flat = flat.reshape(-1, layer.kernel[0] * layer.kernel[1])
            if flat.shape[1] > 1:
                top = np.partition(flat, -2, axis=1)[:, -2:]
                gaps.append(float((top[:, 1] - top[:, 0]).min()))
    return min(gaps)
