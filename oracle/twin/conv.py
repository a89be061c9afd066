"""Twin of ``conv2d``, ``max_pool2d`` and ``avg_pool2d``: ``torch.nn.functional`` on NCHW tensors."""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional


def conv2d(layer: Any, params: dict[str, torch.Tensor], x: torch.Tensor, buffers: dict) -> tuple:
    """``z (N, F, Ho, Wo)`` from ``x (N, C, H, W)``, ``W (F, C, kh, kw)``, ``b (F,)``."""
    return functional.conv2d(x, params["W"], params.get("b"), stride=layer.stride, padding=layer.padding), {}


def max_pool2d(layer: Any, params: dict, x: torch.Tensor, buffers: dict) -> tuple:
    return functional.max_pool2d(x, layer.kernel, stride=layer.stride), {}


def avg_pool2d(layer: Any, params: dict, x: torch.Tensor, buffers: dict) -> tuple:
    return functional.avg_pool2d(x, layer.kernel, stride=layer.stride), {}
