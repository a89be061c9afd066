"""Standardising over some axes, and its backward pass: the core of batch, layer and group norm.

Over the ``m`` entries that ``axes`` span (per position of the other axes)::

    μ = mean(x)      σ² = mean((x − μ)²)  (biased)      x̂ = (x − μ) / √(σ² + ε)

and, given ``g = ∂L/∂x̂``, every entry of the group depends on every other through μ and σ²::

    ∂L/∂x = 1/√(σ² + ε) · (g − mean(g) − x̂ · mean(g ⊙ x̂))

(the two mean terms are the paths through μ and σ²; dropping them is the classic bug).
"""

from __future__ import annotations

import numpy as np


def standardize(x: np.ndarray, axes: tuple[int, ...], eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x̂, μ, σ²)``, with ``μ`` and ``σ²`` kept as size-1 axes (broadcastable against ``x``)."""
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    return centred / np.sqrt(var + eps), mean, var


def standardize_backward(
    grad_xhat: np.ndarray, xhat: np.ndarray, var: np.ndarray, eps: float, axes: tuple[int, ...]
) -> np.ndarray:
    """``∂L/∂x`` from ``∂L/∂x̂`` through the batch statistics (see the module docstring)."""
    mean_g = grad_xhat.mean(axis=axes, keepdims=True)
    mean_gx = (grad_xhat * xhat).mean(axis=axes, keepdims=True)
    return (grad_xhat - mean_g - xhat * mean_gx) / np.sqrt(var + eps)
