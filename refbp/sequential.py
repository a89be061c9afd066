"""Forward and backward pass of a typed network (:class:`~refbp.sequential_spec.SequentialSpec`).

Layer ``l = 1…L`` runs its registry entry (:mod:`refbp.layers.registry`) on ``a_{l-1}``
(``a_0 = x``). A layer with an activation field gives its output as the pre-activation
``z_l`` and ``a_l = f(z_l)``; the others (pooling, dropout, flatten) give ``a_l`` only.
Backward, from the loss's ``∂L/∂a_L`` down::

    δ_l = f'(z_l) ⊙ ∂L/∂a_l                      (layers with an activation)
    ∂L/∂a_{l-1}, ∂L/∂θ_l = layer l's backward of δ_l (or of ∂L/∂a_l)

and ``∂L/∂x = ∂L/∂a_0``. L2 adds ``λ W_l`` (``λ b_l`` with ``include_bias``) to those
gradients. Buffers (``running_mean<l>``, ``running_var<l>``, ``mask<l>``) come in through
``buffers``; a train-mode batchnorm reports its updated running statistics in
``trace.layers[l-1].state``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from refbp.activations import activation_for
from refbp.data import as_targets
from refbp.layers.names import STEP_KINDS, WEIGHT_KINDS, split_name
from refbp.layers.registry import layer_type
from refbp.losses import compute_loss
from refbp.sequential_data import Buffers, as_image_inputs, check_parameters, layer_buffers
from refbp.sequential_spec import SequentialSpec
from refbp.trace import ForwardTrace, Gradients, LayerForward, LayerGradients


def l2_penalty(spec: SequentialSpec, params: Mapping[str, np.ndarray]) -> float:
    """``λ/2 · Σ ‖W_l‖²`` over ``W``, ``Wx``, ``Wh`` (plus ``‖b_l‖²`` with ``include_bias``).

    ``γ``, ``β`` and ``h0`` are never penalised."""
    if spec.l2.lam == 0.0:
        return 0.0
    kinds = (*WEIGHT_KINDS, "b") if spec.l2.include_bias else WEIGHT_KINDS
    names = [n for n in params if (split_name(n) or ("",))[0] in kinds]
    return 0.5 * spec.l2.lam * float(sum(np.sum(params[n] * params[n]) for n in names))


def _layer_params(params: Mapping[str, np.ndarray], number: int, spec: SequentialSpec) -> dict[str, np.ndarray]:
    shapes = spec.layers[number - 1].parameter_shapes(spec.shapes[number - 1])
    return {kind: params[f"{kind}{number}"] for kind in shapes}


def _run(spec: SequentialSpec, params: dict, X: np.ndarray, buffers: Buffers | None) -> tuple[ForwardTrace, list]:
    per_layer = layer_buffers(spec, buffers, X.shape[0])
    a, layers, caches = X, [], []
    for number, layer in enumerate(spec.layers, start=1):
        entry = layer_type(layer)
        out, cache, state = entry.forward(layer, _layer_params(params, number, spec), a, per_layer[number - 1])
        if layer.has_activation:
            z, a = out, activation_for(layer, 1).forward(out)
        else:
            z, a = None, out
        layers.append(LayerForward(z=z, a=a, state=state))
        caches.append(cache)
    return ForwardTrace(x=X, layers=layers), caches


def forward(
    spec: SequentialSpec, params: Mapping[str, Any], X: Any, T: Any = None, *, buffers: Buffers | None = None
) -> ForwardTrace:
    """Run the network on ``X (N, *inputs)``; with targets ``T`` the loss is computed too."""
    X = as_image_inputs(spec, X)
    checked = check_parameters(spec, params)
    trace, _ = _run(spec, checked, X, buffers)
    if T is not None:
        out = trace.layers[-1]
        T = as_targets(spec, T, X.shape[0])
        trace.data_loss, _, _ = compute_loss(spec, out.z if out.z is not None else out.a, out.a, T)
        trace.penalty = l2_penalty(spec, checked)
    return trace


def _backward(spec: SequentialSpec, params: dict, trace: ForwardTrace, caches: list, T: np.ndarray) -> Gradients:
    out = trace.layers[-1]
    _, grad_a, delta = compute_loss(spec, out.z if out.z is not None else out.a, out.a, T)
    grads: list[LayerGradients] = []
    for number in range(spec.depth, 0, -1):
        layer, forward_values = spec.layers[number - 1], trace.layers[number - 1]
        if layer.has_activation:
            if delta is None:
                delta = activation_for(layer, 1).backward(forward_values.z, forward_values.a, grad_a)
            grad_out = delta
        else:
            grad_out = grad_a
        layer_params = _layer_params(params, number, spec)
        grad_below, by_kind = layer_type(layer).backward(layer, layer_params, caches[number - 1], grad_out)
        if spec.l2.lam:
            for kind in (*WEIGHT_KINDS, "b") if spec.l2.include_bias else WEIGHT_KINDS:
                if kind in by_kind:
                    by_kind[kind] = by_kind[kind] + spec.l2.lam * layer_params[kind]
        steps = {kind: by_kind.pop(kind) for kind in STEP_KINDS if kind in by_kind}
        grads.append(
            LayerGradients(
                delta=delta if layer.has_activation else None,
                grad_a=grad_a,
                grad_W=by_kind.pop("W", None),
                grad_b=by_kind.pop("b", None),
                grad_params=by_kind,
                steps=steps,
            )
        )
        grad_a, delta = grad_below, None
    grads.reverse()
    return Gradients(layers=grads, grad_x=grad_a)


def backprop(
    spec: SequentialSpec, params: Mapping[str, Any], X: Any, T: Any, *, buffers: Buffers | None = None
) -> tuple[ForwardTrace, Gradients]:
    """Forward then backward: ``(trace, grads)`` as for a dense :class:`~refbp.spec.NetworkSpec`."""
    X = as_image_inputs(spec, X)
    checked = check_parameters(spec, params)
    T = as_targets(spec, T, X.shape[0])
    trace, caches = _run(spec, checked, X, buffers)
    out = trace.layers[-1]
    trace.data_loss, _, _ = compute_loss(spec, out.z if out.z is not None else out.a, out.a, T)
    trace.penalty = l2_penalty(spec, checked)
    return trace, _backward(spec, checked, trace, caches, T)


def backward(
    spec: SequentialSpec, params: Mapping[str, Any], trace: ForwardTrace, T: Any, *, buffers: Buffers | None = None
) -> Gradients:
    """Backpropagate through ``trace`` (the layers' caches are rebuilt by running the forward pass on ``trace.x``)."""
    checked = check_parameters(spec, params)
    again, caches = _run(spec, checked, as_image_inputs(spec, trace.x), buffers)
    return _backward(spec, checked, again, caches, as_targets(spec, T, trace.x.shape[0]))


def init_parameters(spec: SequentialSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded parameters: ``W ~ N(0, 2/(fan_in + fan_out))`` (a kernel's fan is channels × kernel area),
    biases and ``β`` ``~ N(0, 0.1²)``, ``γ ~ 1 + N(0, 0.1²)``."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in spec.parameter_shapes().items():
        kind = split_name(name)[0]
        if kind in WEIGHT_KINDS:
            area = math.prod(shape[2:])
            fan_in, fan_out = (shape[1] * area, shape[0] * area) if len(shape) == 4 else shape
            value = rng.standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))
        else:
            value = rng.standard_normal(shape) * 0.1 + (1.0 if kind == "gamma" else 0.0)
        params[name] = value.astype(spec.dtype)
    return params
