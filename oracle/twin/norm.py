"""Twin of ``batchnorm``, ``layernorm`` and ``groupnorm``: ``torch.nn.functional``'s own normalisations.

Batchnorm's updated running statistics are computed here from the batch (``torch.var`` with
or without Bessel's correction, as the spec says), not read back from ``batch_norm``, whose
in-place update always uses the unbiased variance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional

from refbp.errors import InputError


def _running(buffers: dict, channels: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, var = buffers.get("running_mean"), buffers.get("running_var")
    to = {"dtype": like.dtype, "device": like.device}
    return (
        torch.zeros(channels, **to) if mean is None else torch.as_tensor(np.asarray(mean), **to),
        torch.ones(channels, **to) if var is None else torch.as_tensor(np.asarray(var), **to),
    )


def batchnorm(layer: Any, params: dict[str, torch.Tensor], x: torch.Tensor, buffers: dict) -> tuple:
    """``(z, state)``; ``x`` is ``(N, D)`` or ``(N, C, H, W)``."""
    running_mean, running_var = _running(buffers, x.shape[1], x)
    gamma, beta = params["gamma"], params["beta"]
    if layer.mode == "eval":
        z = functional.batch_norm(x, running_mean, running_var, gamma, beta, training=False, eps=layer.eps)
        return z, {}
    if x.numel() // x.shape[1] < 2:
        raise InputError("X", "at least 2 values per feature for a train-mode batchnorm", "1 value")
    z = functional.batch_norm(x, None, None, gamma, beta, training=True, eps=layer.eps)
    with torch.no_grad():
        dims = [0] if x.dim() == 2 else [0, 2, 3]
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=layer.unbiased_running_var)
        state = {
            "running_mean": torch.lerp(running_mean, mean, layer.momentum),
            "running_var": torch.lerp(running_var, var, layer.momentum),
        }
    return z, state


def layernorm(layer: Any, params: dict[str, torch.Tensor], x: torch.Tensor, buffers: dict) -> tuple:
    return functional.layer_norm(x, tuple(x.shape[1:]), params["gamma"], params["beta"], eps=layer.eps), {}


def groupnorm(layer: Any, params: dict[str, torch.Tensor], x: torch.Tensor, buffers: dict) -> tuple:
    return functional.group_norm(x, layer.groups, params["gamma"], params["beta"], eps=layer.eps), {}
