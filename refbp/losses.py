"""Losses, each with its gradient; the formulas are in :mod:`refbp.spec`.

Every loss returns ``(value, grad_a, delta)`` for the output layer:

* ``grad_a = ∂L/∂a_L`` — the loss seen as a function of the output ``a_L``;
* ``delta = ∂L/∂z_L`` when the loss is computed straight from the logits (softmax
  cross-entropy: ``δ_L = (a_L Σ_units t − t) · scale``, i.e. ``(a_L − t) · scale`` for
  one-hot targets; sigmoid binary cross-entropy: ``δ_L = (a_L − t) · scale``; stable
  and exact), otherwise ``None`` and the caller applies the output activation's
  backward to ``grad_a``.

A typed network with a sequence output takes :func:`refbp.temporal_loss.temporal_softmax_loss`
(from the scores, ``grad_a`` is ``∂L/∂scores``, ``delta`` is ``None``).

``scale`` is the reduction factor: 1 for ``sum``; ``1/N`` (``1/(N·k)`` for ``mse``) for
``mean``.
"""

from __future__ import annotations

import numpy as np

from refbp.spec import NetworkSpec
from refbp.temporal_loss import masked_labels, temporal_softmax_loss


def reduction_scale(spec: NetworkSpec, batch: int) -> float:
    """The factor that turns the summed loss into the reduced one."""
    if spec.loss.reduction == "sum":
        return 1.0
    return 1.0 / (batch * spec.outputs) if spec.loss.kind == "mse" else 1.0 / batch


def dense_targets(spec: NetworkSpec, T: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Integer labels ``(N,)`` → one-hot in the spec's layout; dense targets pass through."""
    if spec.loss.targets != "index":
        return T
    one_hot = np.zeros((T.shape[0], spec.outputs), dtype=dtype)
    one_hot[np.arange(T.shape[0]), T] = 1.0
    return one_hot if spec.layout == "in_out" else one_hot.T


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _softplus(z: np.ndarray) -> np.ndarray:
    """``log(1 + e^z)`` as ``max(z, 0) + log1p(e^{-|z|})``: no overflow at ``|z| = 1000``."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def compute_loss(
    spec: NetworkSpec, z: np.ndarray, a: np.ndarray, T: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Data loss of the output layer (no penalty).

    Parameters
    ----------
    z, a : ndarray, shape ``(N, k)`` (``in_out``) or ``(k, N)`` (``out_in``)
        Output pre-activation and activation.
    T : ndarray
        Targets: shaped like ``a``, or integer labels ``(N,)``.

    Returns ``(loss, ∂L/∂a_L, ∂L/∂z_L or None)``.
    """
    batch = a.shape[spec.batch_axis]
    if getattr(spec, "sequence_output", False):
        labels, mask = masked_labels(T)
        loss, grad_a = temporal_softmax_loss(a, labels, mask, reduction=spec.loss.reduction)
        return loss, grad_a, None
    scale = reduction_scale(spec, batch)
    t = dense_targets(spec, T, a.dtype)
    kind = spec.loss.kind
    if kind == "half_sse":
        diff = a - t
        return float(0.5 * scale * np.sum(diff * diff)), scale * diff, None
    if kind == "mse":
        diff = a - t
        return float(scale * np.sum(diff * diff)), 2.0 * scale * diff, None
    if kind == "softmax_cross_entropy":
        unit_axis = 1 - spec.batch_axis
        loss = -scale * np.sum(t * _log_softmax(z, unit_axis))
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_a = -scale * np.where(t != 0, t / a, 0.0)
        # ∂/∂z_j of −Σ_i t_i log softmax_i is a_j Σ_i t_i − t_j; the familiar a − t only
        # when each example's targets sum to 1, which dense targets need not do.
        delta = scale * (a * t.sum(axis=unit_axis, keepdims=True) - t)
        return float(loss), grad_a.astype(a.dtype, copy=False), delta.astype(a.dtype, copy=False)
    # binary cross-entropy from logits: −[t log σ(z) + (1−t) log(1−σ(z))] = softplus(z) − t z
    loss = scale * np.sum(_softplus(z) - t * z)
    with np.errstate(divide="ignore", invalid="ignore"):
        grad_a = scale * (a - t) / (a * (1.0 - a))
    return float(loss), grad_a.astype(a.dtype, copy=False), scale * (a - t)
