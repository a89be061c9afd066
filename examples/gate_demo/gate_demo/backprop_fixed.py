"""Backprop, done right: ``backprop(spec, params, X, T) -> {"W1": ∂L/∂W1, "b1": ∂L/∂b1, …, "x": ∂L/∂X}``."""

from __future__ import annotations

import numpy as np

from gate_demo.mlp import (
    REFBP_SUPPORTS,  # noqa: F401 - what the gate may draw, read beside backprop
    backward_step,
    forward,
    loss_gradient,
)


def backprop(spec, params, X, T) -> dict[str, np.ndarray]:
    zs, activations = forward(spec, params, X)
    grad_a = loss_gradient(spec, activations[-1], T)
    grads: dict[str, np.ndarray] = {}
    for number in range(spec.depth, 0, -1):
        grad_a = backward_step(spec, params, number, zs, activations, grad_a, grads)
    grads["x"] = grad_a
    return grads
