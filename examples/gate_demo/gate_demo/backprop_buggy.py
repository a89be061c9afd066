"""Backprop with a classic bug: the backward loop stops one layer early.

The loop over layers runs ``L … 2``; layer 1 is handled after it, and there the
activation derivative is forgotten (``δ_1 = ∂L/∂a_1`` instead of ``f'(z_1) ⊙ ∂L/∂a_1``).
Every gradient of layer 1, and ``∂L/∂x``, is wrong whenever layer 1 is not linear.
"""

from __future__ import annotations

import numpy as np

from gate_demo.mlp import (
    REFBP_SUPPORTS,  # noqa: F401 - what the gate may draw, read beside backprop
    backward_step,
    forward,
    loss_gradient,
    parameter_gradients,
)


def backprop(spec, params, X, T) -> dict[str, np.ndarray]:
    zs, activations = forward(spec, params, X)
    grad_a = loss_gradient(spec, activations[-1], T)
    grads: dict[str, np.ndarray] = {}
    if spec.depth == 1:
        grads["x"] = backward_step(spec, params, 1, zs, activations, grad_a, grads)
        return grads
    for number in range(spec.depth, 1, -1):
        grad_a = backward_step(spec, params, number, zs, activations, grad_a, grads)
    delta = grad_a  # the bug: f'(z_1) is missing
    grads["x"] = parameter_gradients(spec, params, 1, X, delta, grads)
    return grads
