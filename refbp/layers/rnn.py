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
    """``h (N, T, H)``; returns ``(h, cache, state)``.

    The formula of :func:`step_forward`, arranged for speed: ``x_t Wx`` of every step is one
    GEMM before the loop, and each step writes into a preallocated ``(T, N, H)`` array.
    """
    N, T, D = x.shape
    H = layer.hidden
    Wh, b = params["Wh"], params["b"]
    x_steps = np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, N, D): step t is one contiguous block
    ax = (x_steps.reshape(T * N, D) @ params["Wx"]).reshape(T, N, H)
    h = np.empty((T, N, H), dtype=np.result_type(x, params["Wx"]))
    prev = np.broadcast_to(params["h0"], (N, H))
    for t in range(T):
        z = h[t]
        np.matmul(prev, Wh, out=z)
        np.add(ax[t], z, out=z)  # x_t Wx + h_{t−1} Wh + b, added in step_forward's order
        z += b
        prev = np.tanh(z, out=z)
    out = np.ascontiguousarray(h.transpose(1, 0, 2))
    return out, (x, out), {}


def backward(layer: RNN, params: dict[str, np.ndarray], cache: tuple, dout: np.ndarray) -> tuple:
    """``(∂L/∂x (N, T, D), {"Wx", "Wh", "b", "h0", "h"})`` by backprop through every step (``"h"``: each
    step's total ``dh_t``, ``(N, T, H)``).

    The formulas of :func:`step_backward`; the loop computes only each step's ``dz``, the carried
    gradient and the per-step total ``dh_t``; ``∂L/∂x``, ``∂L/∂Wx``, ``∂L/∂Wh`` and ``∂L/∂b`` are one
    GEMM (or sum) each.
    """
    x, h = cache  # (N, T, ·) as returned
    N, T, _ = x.shape
    H = layer.hidden
    Wh = params["Wh"]
    dtype = np.result_type(dout, h)
    dz_all = np.empty((T, N, H), dtype=dtype)
    dh_steps = np.empty((N, T, H), dtype=dtype)
    h = h.transpose(1, 0, 2)  # step t: h[t]
    dnext = np.zeros((N, H), dtype=dtype)
    work = np.empty((N, H), dtype=dtype)
    for t in range(T - 1, -1, -1):
        dz, dh = dz_all[t], dh_steps[:, t]
        np.multiply(h[t], h[t], out=work)
        np.subtract(1.0, work, out=work)
        np.add(dout[:, t], dnext, out=dh)  # ∂L/∂h_t: from above plus carried from step t + 1
        np.multiply(work, dh, out=dz)  # (1 − h²) ⊙ ∂L/∂h_t
        np.matmul(dz, Wh.T, out=dnext)
    dx, grads = all_steps_gradients(x, h, dz_all, params, dnext)
    grads["h"] = dh_steps
    return dx, grads


def all_steps_gradients(x: np.ndarray, h: np.ndarray, dz_steps: np.ndarray, params: dict, dh0: np.ndarray) -> tuple:
    """``(∂L/∂x, grads)`` from every step's ``dz`` (``(T, N, G)``): one GEMM each for ``∂L/∂x``, ``∂L/∂Wx``, ``∂L/∂Wh``.

    ``x`` is ``(N, T, D)``, ``h`` the states as ``(T, N, H)``, ``dh0`` the gradient carried out
    of step 0. Shared by the RNN and the LSTM (``G = 4H``).
    """
    N, T, D = x.shape
    H = h.shape[2]
    flat = np.ascontiguousarray(dz_steps.transpose(1, 0, 2)).reshape(N * T, -1)  # rows (n, t) as x's
    prev_h = np.concatenate([np.broadcast_to(params["h0"], (1, N, H)), h[:-1]]).transpose(1, 0, 2).reshape(N * T, H)
    grads = {
        "Wx": x.reshape(N * T, D).T @ flat,
        "Wh": prev_h.T @ flat,
        "b": flat.sum(axis=0),
        "h0": dh0.sum(axis=0),
    }
    return (flat @ params["Wx"].T).reshape(N, T, D), grads
