"""Layer and group normalisation (per example), forward and backward side by side.

``layernorm``: each example is standardised over all its features (``(D,)``, or ``(C, H, W)``
as a whole); ``γ``, ``β`` have the shape of one example, as torch's
``layer_norm(x, x.shape[1:])`` (CS231n's ``layernorm_forward`` for ``(N, D)``).

``groupnorm``: the ``C`` channels of ``(N, C, H, W)`` (or ``(N, C)``) are split into ``groups``
groups of ``C / groups`` consecutive channels; each example's group is standardised over its
channels and pixels; ``γ``, ``β`` are per channel, ``(C,)`` (CS231n's ``spatial_groupnorm``
keeps them as ``(1, C, 1, 1)``: the same numbers).

Both: ``z = γ ⊙ x̂ + β``; ``∂L/∂γ = Σ_n δ ⊙ x̂`` (and over the pixels for group norm),
``∂L/∂β = Σ_n δ``; ``∂L/∂x`` through the per-example statistics
(:mod:`refbp.layers.standardize`). There are no running statistics: train and eval agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from refbp.errors import InputError
from refbp.layers.batchnorm import activation_dict, activation_fields
from refbp.layers.fields import check_keys, integer, number
from refbp.layers.standardize import standardize, standardize_backward


def _eps(data: Any, where: str) -> float:
    return number(data.get("eps", 1e-5), f"{where}.eps", low=0.0, high=1.0, open_low=True)


@dataclass(frozen=True)
class LayerNorm:
    type: ClassVar[str] = "layernorm"
    has_activation: ClassVar[bool] = True
    eps: float = 1e-5
    activation: str = "identity"
    negative_slope: float = 0.01

    @classmethod
    def from_dict(cls, data: Any, where: str) -> LayerNorm:
        data = check_keys(data, ("type", "eps", "activation", "negative_slope"), where)
        return cls(eps=_eps(data, where), **activation_fields(data, where))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "eps": self.eps, **activation_dict(self)}

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        return in_shape

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {"gamma": in_shape, "beta": in_shape}

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}


@dataclass(frozen=True)
class GroupNorm:
    type: ClassVar[str] = "groupnorm"
    has_activation: ClassVar[bool] = True
    groups: int = 1
    eps: float = 1e-5
    activation: str = "identity"
    negative_slope: float = 0.01

    @classmethod
    def from_dict(cls, data: Any, where: str) -> GroupNorm:
        data = check_keys(data, ("type", "groups", "eps", "activation", "negative_slope"), where)
        if "groups" not in data:
            raise InputError(f"{where}.groups", "a positive integer", "missing")
        return cls(
            groups=integer(data["groups"], f"{where}.groups"), eps=_eps(data, where), **activation_fields(data, where)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "groups": self.groups, "eps": self.eps, **activation_dict(self)}

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(in_shape) not in (1, 3):
            raise InputError(where, "a flat (C,) or image (C, H, W) input", f"shape {in_shape}")
        if in_shape[0] % self.groups:
            raise InputError(f"{where}.groups", f"a divisor of the {in_shape[0]} channels", self.groups)
        return in_shape

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {"gamma": (in_shape[0],), "beta": (in_shape[0],)}

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}


def layer_forward(layer: LayerNorm, params: dict[str, np.ndarray], x: np.ndarray, buffers: dict) -> tuple:
    axes = tuple(range(1, x.ndim))
    xhat, _, var = standardize(x, axes, layer.eps)
    return params["gamma"] * xhat + params["beta"], (xhat, var, axes), {}


def layer_backward(layer: LayerNorm, params: dict[str, np.ndarray], cache: tuple, dz: np.ndarray) -> tuple:
    xhat, var, axes = cache
    grads = {"gamma": (dz * xhat).sum(axis=0), "beta": dz.sum(axis=0)}
    return standardize_backward(params["gamma"] * dz, xhat, var, layer.eps, axes), grads


def _grouped(x: np.ndarray, groups: int) -> np.ndarray:
    """``(N, C, …)`` → ``(N, G, C/G, …)``."""
    return x.reshape(x.shape[0], groups, x.shape[1] // groups, *x.shape[2:])


def group_forward(layer: GroupNorm, params: dict[str, np.ndarray], x: np.ndarray, buffers: dict) -> tuple:
    view = (1, -1) + (1,) * (x.ndim - 2)
    grouped = _grouped(x, layer.groups)
    axes = tuple(range(2, grouped.ndim))
    xhat_g, _, var = standardize(grouped, axes, layer.eps)
    xhat = xhat_g.reshape(x.shape)
    z = params["gamma"].reshape(view) * xhat + params["beta"].reshape(view)
    return z, (xhat, var, axes, view), {}


def group_backward(layer: GroupNorm, params: dict[str, np.ndarray], cache: tuple, dz: np.ndarray) -> tuple:
    xhat, var, axes, view = cache
    summed = (0, *range(2, dz.ndim))
    grads = {"gamma": (dz * xhat).sum(axis=summed), "beta": dz.sum(axis=summed)}
    grad_xhat = _grouped(params["gamma"].reshape(view) * dz, layer.groups)
    dx = standardize_backward(grad_xhat, _grouped(xhat, layer.groups), var, layer.eps, axes)
    return dx.reshape(dz.shape), grads
