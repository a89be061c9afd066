"""Twin of ``dense``, ``flatten`` and ``dropout`` (the mask is the same explicit or seeded one as refbp's)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from refbp.errors import InputError
from refbp.layers.dropout import seeded_mask


def dense(layer: Any, params: dict[str, torch.Tensor], x: torch.Tensor, buffers: dict) -> tuple:
    z = x @ params["W"]
    return (z + params["b"] if "b" in params else z), {}


def flatten(layer: Any, params: dict, x: torch.Tensor, buffers: dict) -> tuple:
    return torch.flatten(x, start_dim=1), {}


def dropout(layer: Any, params: dict, x: torch.Tensor, buffers: dict) -> tuple:
    """Inverted dropout through the explicit ``mask`` buffer, else the seeded draw of the spec."""
    if layer.mode == "eval":
        return x, {}
    given = buffers.get("mask")
    mask = seeded_mask(layer, tuple(x.shape)) if given is None else np.asarray(given)
    if mask.shape != tuple(x.shape):
        raise InputError("mask", f"shape {tuple(x.shape)}", f"shape {mask.shape}", source="buffers")
    keep = torch.as_tensor(mask.astype(np.float64), dtype=x.dtype, device=x.device)
    return x * keep / layer.keep_prob, {}
