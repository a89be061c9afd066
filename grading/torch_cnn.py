"""Torch-autograd twins of the ``cnn`` interface's backward functions (see :mod:`grading.torch_confirm`).

Written with ``torch.nn.functional`` (``conv2d``, ``max_pool2d``, ``batch_norm``, ``layer_norm``,
``group_norm``), independently of refbp. A twin whose layer has hyperparameters is named
``"name:a,b"`` (:func:`twin`): ``conv_backward:stride,pad``, ``max_pool_backward:size,stride``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch.nn import functional

EPS = 1e-5


def _leaves(inputs: Mapping[str, np.ndarray], names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {n: torch.tensor(np.asarray(inputs[n], dtype=np.float64), requires_grad=True) for n in names}


def _grads(output: torch.Tensor, upstream: np.ndarray, leaves: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    found = torch.autograd.grad(output, list(leaves.values()), torch.tensor(upstream))
    return {"d" + n: g.numpy() for n, g in zip(leaves, found, strict=True)}


def batchnorm_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("x", "gamma", "beta"))
    out = functional.batch_norm(p["x"], None, None, p["gamma"], p["beta"], training=True, eps=EPS)
    return _grads(out, inputs["dout"], p)


def layernorm_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("x", "gamma", "beta"))
    out = functional.layer_norm(p["x"], p["x"].shape[1:], p["gamma"], p["beta"], eps=EPS)
    return _grads(out, inputs["dout"], p)


def groupnorm_backward(inputs: Mapping[str, np.ndarray], groups: int) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("x", "gamma", "beta"))
    out = functional.group_norm(p["x"], groups, p["gamma"].reshape(-1), p["beta"].reshape(-1), eps=EPS)
    return _grads(out, inputs["dout"], p)


def conv_backward(inputs: Mapping[str, np.ndarray], stride: int, pad: int) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("x", "w", "b"))
    return _grads(functional.conv2d(p["x"], p["w"], p["b"], stride=stride, padding=pad), inputs["dout"], p)


def max_pool_backward(inputs: Mapping[str, np.ndarray], size: int, stride: int) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("x",))
    return _grads(functional.max_pool2d(p["x"], size, stride), inputs["dout"], p)


Twin = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]
_TWINS: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    "batchnorm_backward": batchnorm_backward,
    "spatial_batchnorm_backward": batchnorm_backward,  # functional.batch_norm: statistics per channel over N, H, W
    "layernorm_backward": layernorm_backward,
    "spatial_groupnorm_backward": groupnorm_backward,
    "conv_backward": conv_backward,
    "max_pool_backward": max_pool_backward,
}


def twin(name: str) -> Twin | None:
    """The twin called ``name`` (``"conv_backward:2,1"`` binds stride 2, pad 1), or ``None``."""
    base, _, extra = name.partition(":")
    if base not in _TWINS:
        return None
    values = [int(v) for v in extra.split(",")] if extra else []
    return lambda inputs: _TWINS[base](inputs, *values)
