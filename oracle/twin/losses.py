"""The twin's activations and losses in torch (see :mod:`oracle.torch_twin` for the conventions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn.functional import binary_cross_entropy_with_logits, leaky_relu, log_softmax

from refbp.errors import InputError


def activation(layer: Any, unit_dim: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation of ``layer`` (softmax along ``unit_dim``)."""
    kind = layer.activation
    if kind == "identity":
        return lambda z: z
    if kind == "sigmoid":
        return torch.sigmoid
    if kind == "tanh":
        return torch.tanh
    if kind == "relu":
        return torch.relu
    if kind == "leaky_relu":
        return lambda z: leaky_relu(z, negative_slope=layer.negative_slope)
    if kind == "softmax":
        return lambda z: torch.softmax(z, dim=unit_dim)
    raise InputError("activation", "a known activation", kind)  # unreachable for a validated spec


def reduction_scale(spec: Any, batch: int) -> float:
    """The factor applied to the summed data loss: 1 for ``sum``; 1/N, or 1/(N·k) for ``mse``, for ``mean``."""
    if spec.loss.reduction == "sum":
        return 1.0
    return 1.0 / (batch * spec.outputs) if spec.loss.kind == "mse" else 1.0 / batch


def summed_data_loss(kind: str, z: torch.Tensor, a: torch.Tensor, t: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """The data loss summed over every entry (before the reduction scale)."""
    if kind == "half_sse":
        return 0.5 * ((a - t) ** 2).sum()
    if kind == "mse":
        return ((a - t) ** 2).sum()
    if kind == "softmax_cross_entropy":
        return -(t * log_softmax(z, dim=unit_dim)).sum()
    if kind == "temporal_softmax_cross_entropy":  # t is one-hot per step, all zeros at a masked step
        return -(t * log_softmax(z, dim=-1)).sum()
    # binary cross-entropy from the logits: softplus(z) − t·z, evaluated stably by torch.
    return binary_cross_entropy_with_logits(z, t, reduction="sum")


def _xlogy_masked(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``t·log p`` with ``0·log p = 0`` and no NaN in the gradient where ``t == 0``."""
    live = t != 0
    return torch.where(live, t * torch.log(torch.where(live, p, torch.ones_like(p))), torch.zeros_like(p))


def probability_loss_grad(kind: str, a: torch.Tensor, t: torch.Tensor, scale: float) -> torch.Tensor:
    """``∂L/∂a_L`` for a from-logits loss, from the loss written in the probabilities ``a_L``."""
    with torch.enable_grad():
        leaf = a.detach().clone().requires_grad_(True)
        if kind == "softmax_cross_entropy":
            summed = -_xlogy_masked(t, leaf).sum()
        else:
            summed = -(_xlogy_masked(t, leaf) + _xlogy_masked(1 - t, 1 - leaf)).sum()
        (grad,) = torch.autograd.grad(summed * scale, leaf)
    return grad
