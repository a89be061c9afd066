"""The forward pass and the pieces of the backward pass that both implementations share.

Networks the demo supports (refbp's spec vocabulary): layout ``in_out`` (``X`` is
``(N, d)``, ``W_l`` is ``(n_{l-1}, n_l)``, ``z_l = a_{l-1} W_l + b_l``); biases
``per_unit``, ``shared`` or ``none``; hidden activations ``identity``, ``sigmoid``,
``tanh``, ``relu``, and those or ``softmax`` at the output; losses ``half_sse``
(``½ Σ (a − t)²``) and ``mse`` (``Σ (a − t)²``), summed, or averaged over the
``N`` examples (``mse``: over the ``N·k`` entries); no L2 penalty.
"""

from __future__ import annotations

import numpy as np

#: What the demo implements, in refbp's support-declaration fields (see ``oracle.supports``); refbp's gate
#: reads ``REFBP_SUPPORTS`` from the module of the function it checks, and draws only such networks.
REFBP_SUPPORTS = {
    "layouts": ["in_out"],
    "hidden_activations": ["identity", "sigmoid", "tanh", "relu"],
    "output_activations": ["identity", "sigmoid", "tanh", "relu", "softmax"],
    "losses": ["half_sse", "mse"],
    "bias_modes": ["per_unit", "shared", "none"],
    "l2": ["off"],
    "dtypes": ["float64", "float32"],
    "max_depth": 3,
    "max_width": 4,
    "max_inputs": 3,
}


def activate(name: str, z: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return z


def activation_backward(name: str, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
    """``∂L/∂z`` from ``∂L/∂a`` (shape ``(N, n)``)."""
    if name == "sigmoid":
        return grad_a * a * (1.0 - a)
    if name == "tanh":
        return grad_a * (1.0 - a**2)
    if name == "relu":
        return grad_a * (z > 0)
    if name == "softmax":
        return a * (grad_a - (a * grad_a).sum(axis=1, keepdims=True))
    return grad_a


def forward(spec, params, X) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pre-activations ``[z_1, …, z_L]`` and activations ``[x, a_1, …, a_L]``."""
    zs, activations = [], [X]
    for number, layer in enumerate(spec.layers, start=1):
        z = activations[-1] @ params[f"W{number}"]
        if layer.bias != "none":
            z = z + params[f"b{number}"]
        zs.append(z)
        activations.append(activate(layer.activation, z))
    return zs, activations


def loss_gradient(spec, output: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``∂L/∂a_L`` of the data loss."""
    n, k = output.shape
    factor = 1.0 if spec.loss.kind == "half_sse" else 2.0
    if spec.loss.reduction == "mean":
        factor /= n * k if spec.loss.kind == "mse" else n
    return factor * (output - T)


def bias_gradient(spec, number: int, delta: np.ndarray) -> np.ndarray | None:
    """``∂L/∂b_l`` from ``δ_l``: summed over examples (and over units for a shared bias)."""
    mode = spec.layers[number - 1].bias
    if mode == "none":
        return None
    return delta.sum(axis=0) if mode == "per_unit" else delta.sum(keepdims=True).reshape(1)


def backward_step(spec, params, number: int, zs, activations, grad_a: np.ndarray, grads: dict) -> np.ndarray:
    """Layer ``number``'s backward step: ``δ_l = f'(z_l) ⊙ ∂L/∂a_l``, then ``∂L/∂W_l``, ``∂L/∂b_l``
    (stored in ``grads``); returns ``∂L/∂a_{l-1}``."""
    layer = spec.layers[number - 1]
    delta = activation_backward(layer.activation, zs[number - 1], activations[number], grad_a)
    return parameter_gradients(spec, params, number, activations[number - 1], delta, grads)


def parameter_gradients(spec, params, number: int, a_below: np.ndarray, delta: np.ndarray, grads: dict) -> np.ndarray:
    """``∂L/∂W_l = a_{l-1}ᵀ δ_l`` and ``∂L/∂b_l`` into ``grads``; returns ``∂L/∂a_{l-1} = δ_l W_lᵀ``."""
    grads[f"W{number}"] = a_below.T @ delta
    grad_b = bias_gradient(spec, number, delta)
    if grad_b is not None:
        grads[f"b{number}"] = grad_b
    return delta @ params[f"W{number}"].T
