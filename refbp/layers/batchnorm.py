"""Batch normalisation, dense ``(N, D)`` and spatial ``(N, C, H, W)``, forward and backward side by side.

Statistics are taken per feature over the batch (dense: axis 0; spatial: axes 0, 2, 3,
i.e. per channel over the batch and every pixel, as CS231n's ``spatial_batchnorm``)::

    train:  x̂ = (x − μ_B) / √(σ²_B + ε)          eval:  x̂ = (x − running_mean) / √(running_var + ε)
            z = γ ⊙ x̂ + β                                z = γ ⊙ x̂ + β

``γ`` (``gamma<l>``) and ``β`` (``beta<l>``) have shape ``(D,)`` or ``(C,)``. Backward::

    ∂L/∂γ = Σ δ ⊙ x̂          ∂L/∂β = Σ δ          (sums over the statistics' axes)
    train: ∂L/∂x through μ_B and σ²_B (:mod:`refbp.layers.standardize`)
    eval:  ∂L/∂x = γ ⊙ δ / √(running_var + ε)

Running statistics are buffers (``running_mean<l>``, ``running_var<l>``; by default 0 and 1),
not parameters: a train-mode pass returns their new values,
``(1 − momentum)·running + momentum·batch`` — ``momentum`` is the weight of the new batch,
as in torch (0.1 there; CS231n's ``momentum = 0.9`` is the weight of the old value, i.e.
0.1 here). The variance folded in is the biased ``σ²_B`` as in CS231n, or ``σ²_B·m/(m − 1)``
with ``unbiased_running_var = true`` as in torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from refbp.errors import InputError
from refbp.layers.fields import check_keys, choice, number
from refbp.layers.standardize import standardize, standardize_backward
from refbp.spec import ACTIVATIONS

NORM_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "softmax")
MODES = ("train", "eval")


def activation_fields(data: Any, where: str) -> dict[str, Any]:
    """The ``activation`` and ``negative_slope`` of a normalisation layer."""
    return {
        "activation": choice(data.get("activation", "identity"), NORM_ACTIVATIONS, f"{where}.activation"),
        "negative_slope": number(data.get("negative_slope", 0.01), f"{where}.negative_slope", low=-1e6, high=1e6),
    }


def activation_dict(layer: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"activation": layer.activation}
    if layer.activation == "leaky_relu":
        out["negative_slope"] = layer.negative_slope
    return out


@dataclass(frozen=True)
class BatchNorm:
    """Batch norm in ``mode`` ``train`` or ``eval`` (see the module docstring)."""

    type: ClassVar[str] = "batchnorm"
    has_activation: ClassVar[bool] = True
    mode: str = "train"
    momentum: float = 0.1
    eps: float = 1e-5
    unbiased_running_var: bool = False
    activation: str = "identity"
    negative_slope: float = 0.01

    @classmethod
    def from_dict(cls, data: Any, where: str) -> BatchNorm:
        fields = ("type", "mode", "momentum", "eps", "unbiased_running_var", "activation", "negative_slope")
        data = check_keys(data, fields, where)
        unbiased = data.get("unbiased_running_var", False)
        if not isinstance(unbiased, bool):
            raise InputError(f"{where}.unbiased_running_var", "true or false", unbiased)
        return cls(
            mode=choice(data.get("mode", "train"), MODES, f"{where}.mode"),
            momentum=number(data.get("momentum", 0.1), f"{where}.momentum", low=0.0, high=1.0),
            eps=number(data.get("eps", 1e-5), f"{where}.eps", low=0.0, high=1.0, open_low=True),
            unbiased_running_var=unbiased,
            **activation_fields(data, where),
        )

    def to_dict(self) -> dict[str, Any]:
        out = {"type": self.type, "mode": self.mode, "momentum": self.momentum, "eps": self.eps}
        return {**out, "unbiased_running_var": self.unbiased_running_var, **activation_dict(self)}

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(in_shape) not in (1, 3):
            raise InputError(where, "a flat (D,) or image (C, H, W) input", f"shape {in_shape}")
        return in_shape

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {"gamma": (in_shape[0],), "beta": (in_shape[0],)}

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {"running_mean": (in_shape[0],), "running_var": (in_shape[0],)}


def _axes_and_view(x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The statistics' axes and the shape a per-feature vector takes to broadcast against ``x``."""
    if x.ndim == 2:
        return (0,), (1, -1)
    return (0, 2, 3), (1, -1, 1, 1)


def running_buffers(buffers: dict, channels: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The given running statistics, or the initial ones (mean 0, variance 1)."""
    mean = buffers.get("running_mean")
    var = buffers.get("running_var")
    return (
        np.zeros(channels, dtype) if mean is None else mean,
        np.ones(channels, dtype) if var is None else var,
    )


def forward(layer: BatchNorm, params: dict[str, np.ndarray], x: np.ndarray, buffers: dict) -> tuple:
    """``(z, cache, state)``; ``state`` holds the updated running statistics in train mode."""
    axes, view = _axes_and_view(x)
    gamma, beta = params["gamma"].reshape(view), params["beta"].reshape(view)
    running_mean, running_var = running_buffers(buffers, x.shape[1], x.dtype)
    if layer.mode == "eval":
        var = running_var.reshape(view)
        xhat = (x - running_mean.reshape(view)) / np.sqrt(var + layer.eps)
        return gamma * xhat + beta, (xhat, var, axes, view), {}
    count = x.size // x.shape[1]
    if count < 2:  # σ²_B would be 0 and x̂ 0 whatever x is; torch refuses this too
        raise InputError("X", "at least 2 values per feature for a train-mode batchnorm", f"{count} value")
    xhat, mean, var = standardize(x, axes, layer.eps)
    batch_var = var.reshape(-1)
    if layer.unbiased_running_var:
        batch_var = batch_var * (count / (count - 1))
    state = {
        "running_mean": (1.0 - layer.momentum) * running_mean + layer.momentum * mean.reshape(-1),
        "running_var": (1.0 - layer.momentum) * running_var + layer.momentum * batch_var,
    }
    return gamma * xhat + beta, (xhat, var, axes, view), state


def backward(layer: BatchNorm, params: dict[str, np.ndarray], cache: tuple, dz: np.ndarray) -> tuple:
    """``(∂L/∂x, {"gamma": ∂L/∂γ, "beta": ∂L/∂β})`` from ``δ = dz``."""
    xhat, var, axes, view = cache
    gamma = params["gamma"].reshape(view)
    grads = {"gamma": (dz * xhat).sum(axis=axes), "beta": dz.sum(axis=axes)}
    if layer.mode == "eval":
        return gamma * dz / np.sqrt(var + layer.eps), grads
    return standardize_backward(gamma * dz, xhat, var, layer.eps, axes), grads
