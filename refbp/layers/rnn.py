"""Vanilla tanh RNN over a whole sequence, forward and full backprop through time side by side.

Shapes (CS231n's ``rnn_forward``, with the initial state a parameter shared by the batch)::

    x   (N, T, D)     Wx (D, H)     Wh (H, H)     b (H,)     h0 (H,)
    h_t = tanh(x_t Wx + h_{t−1} Wh + b),   h_{−1} = h0 for every example     out = h (N, T, H)

Backward through time, from ``dout = ∂L/∂h`` (the gradient arriving from above at each step)::

    dh_t   = dout_t + dnext_t                    the carried dnext_T−1 = 0
    dz_t   = (1 − h_t²) ⊙ dh_t                   tanh' at step t, from h_t itself
    ∂L/∂x_t = dz_t Wxᵀ     dnext_{t−1} = dz_t Whᵀ
    ∂L/∂Wx = Σ_t x_tᵀ dz_t     ∂L/∂Wh = Σ_t h_{t−1}ᵀ dz_t     ∂L/∂b = Σ_{t,n} dz_t
    ∂L/∂h0 = Σ_n dnext_{−1}                      (h0 is shared by the batch)

The backward also reports every step's total ``dh_t`` (``grads["h"]``, ``(N, T, H)``): the
per-step gradient the oracle compares one step at a time (see :data:`STEPS`).

:func:`step_forward` / :func:`step_backward` are one step (CS231n's ``rnn_step_*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from refbp.errors import InputError
from refbp.layers.fields import check_keys, integer


def hidden_field(data: Any, where: str) -> int:
    """The ``hidden`` size of a recurrent layer's table."""
    if "hidden" not in data:
        raise InputError(f"{where}.hidden", "a positive integer", "missing")
    return integer(data["hidden"], f"{where}.hidden")


def states_shape(in_shape: tuple[int, ...], hidden: int, where: str) -> tuple[int, ...]:
    """``(T, D)`` → ``(T, hidden)``: the states of a recurrent layer, one per step."""
    if len(in_shape) != 2:
        raise InputError(where, "a sequence input (T, D)", f"shape {in_shape}")
    return (in_shape[0], hidden)


STEPS = {
    "h": "dh_t = ∂L/∂a_t + dz_{t+1} Whᵀ with dz_{t+1} = (1 − h_{t+1}²) ⊙ dh_{t+1}: tanh' from step t+1's own "
    "state, the product with Whᵀ",
}
"""The per-step gradients the backward reports, with the formula that forms each (see
:data:`refbp.layers.names.STEP_KINDS`)."""


@dataclass(frozen=True)
class RNN:
    """A tanh RNN of ``hidden`` units; parameters ``Wx``, ``Wh``, ``b``, ``h0``."""

    type: ClassVar[str] = "rnn"
    has_activation: ClassVar[bool] = False
    activation: ClassVar[str] = "none"
    hidden: int

    @classmethod
    def from_dict(cls, data: Any, where: str) -> RNN:
        return cls(hidden=hidden_field(check_keys(data, ("type", "hidden"), where), where))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "hidden": self.hidden}

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        return states_shape(in_shape, self.hidden, where)

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        H = self.hidden
        return {"Wx": (in_shape[1], H), "Wh": (H, H), "b": (H,), "h0": (H,)}

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}


def step_forward(x: np.ndarray, prev_h: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``next_h (N, H) = tanh(x Wx + prev_h Wh + b)`` for ``x (N, D)``, ``prev_h (N, H)``."""
    return np.tanh(x @ Wx + prev_h @ Wh + b)


def step_backward(
    dnext_h: np.ndarray, x: np.ndarray, prev_h: np.ndarray, next_h: np.ndarray, Wx: np.ndarray, Wh: np.ndarray
) -> tuple[np.ndarray, ...]:
    """``(dx, dprev_h, dWx, dWh, db)`` of one step, from ``∂L/∂next_h`` (carried gradient included)."""
    dz = (1.0 - next_h * next_h) * dnext_h
    return dz @ Wx.T, dz @ Wh.T, x.T @ dz, prev_h.T @ dz, dz.sum(axis=0)


def forward(layer: RNN, params: dict[str, np.ndarray], x: np.ndarray, buffers: dict) -> tuple:
    """``h (N, T, H)``; returns ``(h, cache, state)``."""
    N, T, _ = x.shape
    h = np.empty((N, T, layer.hidden), dtype=x.dtype)
    prev = np.broadcast_to(params["h0"], (N, layer.hidden))
    for t in range(T):
        prev = h[:, t] = step_forward(x[:, t], prev, params["Wx"], params["Wh"], params["b"])
    return h, (x, h), {}


def backward(layer: RNN, params: dict[str, np.ndarray], cache: tuple, dout: np.ndarray) -> tuple:
    """``(∂L/∂x (N, T, D), {"Wx", "Wh", "b", "h0", "h"})`` by backprop through every step (``"h"``: each
    step's total ``dh_t``, ``(N, T, H)``)."""
    x, h = cache
    N, T, _ = x.shape
    Wx, Wh = params["Wx"], params["Wh"]
    h0 = np.broadcast_to(params["h0"], (N, layer.hidden))
    dx = np.empty_like(x)
    grads = {kind: np.zeros_like(params[kind]) for kind in ("Wx", "Wh", "b")}
    dnext = np.zeros((N, layer.hidden), dtype=dout.dtype)
    dh = np.empty_like(h)
    for t in range(T - 1, -1, -1):
        prev = h[:, t - 1] if t else h0
        dh[:, t] = dout[:, t] + dnext
        dx[:, t], dnext, dWx, dWh, db = step_backward(dh[:, t], x[:, t], prev, h[:, t], Wx, Wh)
        grads["Wx"] += dWx
        grads["Wh"] += dWh
        grads["b"] += db
    grads["h0"] = dnext.sum(axis=0)
    grads["h"] = dh
    return dx, grads
