"""The temporal softmax cross-entropy with a mask over time steps (CS231n's ``temporal_softmax_loss``).

Shapes::

    x (N, T, V) scores     y (N, T) labels in 0…V−1     mask (N, T) booleans (True: the step counts)
    L = −(1/N) Σ_{n, t} mask[n, t] · log softmax(x[n, t])[y[n, t]]        (``reduction = "mean"``)
    ∂L/∂x[n, t] = mask[n, t] · (softmax(x[n, t]) − onehot(y[n, t])) / N

The sum runs over the unmasked steps and is divided by ``N`` (not by the number of steps
counted), as the course does; ``reduction = "sum"`` leaves out the ``1/N``. In a typed
network the targets are the labels with the mask folded in: a label of ``-1`` masks its step
out (:data:`MASKED`), so ``mask = y >= 0``.
"""

from __future__ import annotations

import numpy as np

MASKED = -1
"""The target label of a step the loss leaves out."""


def temporal_softmax_loss(
    x: np.ndarray, y: np.ndarray, mask: np.ndarray, *, reduction: str = "mean"
) -> tuple[float, np.ndarray]:
    """``(loss, ∂L/∂x)`` for scores ``x (N, T, V)``, labels ``y (N, T)`` and ``mask (N, T)``."""
    N = x.shape[0]
    scale = 1.0 / N if reduction == "mean" else 1.0
    shifted = x - x.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    labels = np.where(mask, y, 0).astype(np.int64)
    picked = np.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]
    loss = -scale * np.sum(np.where(mask, picked, 0.0))
    dx = np.exp(log_probs)
    np.put_along_axis(dx, labels[..., None], np.take_along_axis(dx, labels[..., None], axis=-1) - 1.0, axis=-1)
    dx *= scale * mask[..., None]
    return float(loss), dx.astype(x.dtype, copy=False)


def masked_labels(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network targets ``(N, T)`` (``-1`` for a masked step) → ``(labels, mask)``."""
    mask = T != MASKED
    return np.where(mask, T, 0), mask
