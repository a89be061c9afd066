"""Forward and backward pass of a fully connected network, as in the lecture notes.

Forward (layer ``l = 1…L``, ``a_0 = x``)::

    in_out:  z_l = a_{l-1} @ W_l + b_l        out_in:  z_l = W_l @ a_{l-1} + b_l
             a_l = f_l(z_l)                            a_l = f_l(z_l)

Backward, from ``δ_L = ∂L/∂z_L`` down to the input (seed 001 ⑤, seed 003)::

    in_out:  ∂L/∂W_l     = a_{l-1}ᵀ @ δ_l     out_in:  ∂L/∂W_l     = δ_l @ a_{l-1}ᵀ
             ∂L/∂a_{l-1} = δ_l @ W_lᵀ                  ∂L/∂a_{l-1} = W_lᵀ @ δ_l
             ∂L/∂b_l     = δ_l summed over the batch (and over the units for a shared bias)
             δ_{l-1}     = f'_{l-1}(z_{l-1}) ⊙ ∂L/∂a_{l-1}

and ``∂L/∂x = ∂L/∂a_0``. The L2 term adds ``λ W_l`` (and ``λ b_l``) to the parameter
gradients; it does not touch ``δ`` or ``∂L/∂a``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from refbp.activations import activation_for
from refbp.data import as_inputs, as_targets, batch_size
from refbp.losses import compute_loss
from refbp.spec import NetworkSpec
from refbp.trace import ForwardTrace, Gradients, LayerForward, LayerGradients


def _bias(params: Mapping[str, np.ndarray], layer: int, spec: NetworkSpec) -> np.ndarray | None:
    """``b_l`` shaped to broadcast against ``z_l`` (a column in ``out_in``)."""
    b = params.get(f"b{layer}")
    if b is None:
        return None
    return b if spec.layout == "in_out" else b[:, None]


def l2_penalty(spec: NetworkSpec, params: Mapping[str, np.ndarray]) -> float:
    """``λ/2 · Σ_l ‖W_l‖²_F`` (plus ``‖b_l‖²`` when biases are penalised)."""
    if spec.l2.lam == 0.0:
        return 0.0
    names = [n for n in params if n.startswith("W") or (spec.l2.include_bias and n.startswith("b"))]
    return 0.5 * spec.l2.lam * float(sum(np.sum(params[n] * params[n]) for n in names))


def forward(spec: NetworkSpec, params: Mapping[str, np.ndarray], X: Any, T: Any = None) -> ForwardTrace:
    """Run the network on a batch.

    Parameters
    ----------
    X : array, shape ``(N, inputs)`` for ``in_out`` or ``(inputs, N)`` for ``out_in``
    T : array or None
        Targets (see :func:`refbp.data.as_targets`); when given, the loss is computed.

    Returns a :class:`ForwardTrace` with ``z_l`` and ``a_l`` for every layer.
    """
    X = as_inputs(spec, X)
    unit_axis = 1 - spec.batch_axis
    a = X
    layers: list[LayerForward] = []
    for number, layer in enumerate(spec.layers, start=1):
        W = params[f"W{number}"]
        z = a @ W if spec.layout == "in_out" else W @ a
        b = _bias(params, number, spec)
        if b is not None:
            z = z + b
        a = activation_for(layer, unit_axis).forward(z)
        layers.append(LayerForward(z=z, a=a))
    trace = ForwardTrace(x=X, layers=layers)
    if T is not None:
        T = as_targets(spec, T, batch_size(spec, X))
        trace.data_loss, _, _ = compute_loss(spec, layers[-1].z, layers[-1].a, T)
        trace.penalty = l2_penalty(spec, params)
    return trace


def backward(spec: NetworkSpec, params: Mapping[str, np.ndarray], trace: ForwardTrace, T: Any) -> Gradients:
    """Backpropagate the loss through ``trace`` (from :func:`forward` on the same parameters).

    Returns a :class:`Gradients` whose arrays have the shapes of the corresponding
    ``z``, ``a``, ``W``, ``b`` and ``x``.
    """
    T = as_targets(spec, T, batch_size(spec, trace.x))
    unit_axis = 1 - spec.batch_axis
    out = trace.layers[-1]
    _, grad_a, delta = compute_loss(spec, out.z, out.a, T)
    if delta is None:
        delta = activation_for(spec.layers[-1], unit_axis).backward(out.z, out.a, grad_a)

    grads: list[LayerGradients] = []
    for number in range(spec.depth, 0, -1):
        W = params[f"W{number}"]
        a_prev = trace.layers[number - 2].a if number > 1 else trace.x
        if spec.layout == "in_out":
            grad_W = a_prev.T @ delta
            grad_a_prev = delta @ W.T
        else:
            grad_W = delta @ a_prev.T
            grad_a_prev = W.T @ delta
        grad_b = _bias_gradient(spec, number, delta)
        if spec.l2.lam:
            grad_W = grad_W + spec.l2.lam * W
            if grad_b is not None and spec.l2.include_bias:
                grad_b = grad_b + spec.l2.lam * params[f"b{number}"]
        grads.append(LayerGradients(delta=delta, grad_a=grad_a, grad_W=grad_W, grad_b=grad_b))
        if number > 1:
            below = trace.layers[number - 2]
            grad_a = grad_a_prev
            delta = activation_for(spec.layers[number - 2], unit_axis).backward(below.z, below.a, grad_a)
    grads.reverse()
    return Gradients(layers=grads, grad_x=grad_a_prev)


def _bias_gradient(spec: NetworkSpec, layer: int, delta: np.ndarray) -> np.ndarray | None:
    """``∂L/∂b``: ``δ`` summed over the batch; a shared bias also sums over the units."""
    mode = spec.layers[layer - 1].bias
    if mode == "none":
        return None
    if mode == "shared":
        return np.array([delta.sum()], dtype=delta.dtype)
    return delta.sum(axis=spec.batch_axis)


def backprop(spec: NetworkSpec, params: Mapping[str, np.ndarray], X: Any, T: Any) -> tuple[ForwardTrace, Gradients]:
    """Forward then backward: the protocol every implementation under test follows."""
    trace = forward(spec, params, X, T)
    return trace, backward(spec, params, trace, T)
