"""The finite-difference checker's own activations and per-example losses, on stacks ``(S, B, n)``.

Written apart from refbp's (:mod:`refbp.activations`, :mod:`refbp.losses`) so that the third
way of computing gradients shares no math with the first. Softmax runs over the last axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.errors import InputError


def activate(z: np.ndarray, layer: Any) -> np.ndarray:
    """The activation of ``layer`` on a stack ``(..., n)``; softmax runs over the last (unit) axis."""
    kind = layer.activation
    if kind == "identity":
        return z
    if kind == "sigmoid":
        # exp(−|z|) ≤ 1 never overflows; each branch is the exact form for its sign of z.
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if kind == "tanh":
        return np.tanh(z)
    if kind == "relu":
        return np.where(z > 0, z, 0.0)
    if kind == "leaky_relu":
        return np.where(z > 0, z, layer.negative_slope * z)
    if kind == "softmax":
        # Subtracting the max makes every exponent ≤ 0: no overflow, same result.
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise InputError("activation", "a known activation", kind)  # unreachable for a validated spec


def softplus(z: np.ndarray) -> np.ndarray:
    """``log(1 + e^z)`` as ``max(z, 0) + log1p(e^{−|z|})``: exact for large ``|z|``, no overflow."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def xlogy(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``t·log p`` with ``0·log p = 0`` (so ``p = 0`` under a zero target is harmless)."""
    live = t != 0
    with np.errstate(divide="ignore"):  # log 0 = −inf is the intended value under a positive target
        return np.where(live, t * np.log(np.where(live, p, 1.0)), 0.0)


def logit_terms(kind: str, z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-example from-logits loss ``(S, B)`` (summed over units, not reduced)."""
    if kind == "softmax_cross_entropy":
        log_softmax = z - z.max(axis=-1, keepdims=True)
        log_softmax -= np.log(np.exp(log_softmax).sum(axis=-1, keepdims=True))
        log_softmax *= t
        return -log_softmax.sum(axis=-1)
    return (softplus(z) - t * z).sum(axis=-1)  # binary cross-entropy from the logits


def output_terms(kind: str, a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-example loss of the output ``a_L`` ``(S, B)``; the probability form for CE/BCE."""
    if kind == "half_sse":
        return 0.5 * ((a - t) ** 2).sum(axis=-1)
    if kind == "mse":
        return ((a - t) ** 2).sum(axis=-1)
    if kind == "softmax_cross_entropy":
        return -xlogy(t, a).sum(axis=-1)
    if kind == "temporal_softmax_cross_entropy":  # a: scores (S, B, T, V); t one-hot per step, 0 when masked
        log_softmax = a - a.max(axis=-1, keepdims=True)
        log_softmax -= np.log(np.exp(log_softmax).sum(axis=-1, keepdims=True))
        return -(t * log_softmax).sum(axis=(-2, -1))
    return -(xlogy(t, a) + xlogy(1.0 - t, 1.0 - a)).sum(axis=-1)
