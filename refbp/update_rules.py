"""Optimiser update rules applied in place to one flat parameter vector (the lean training loop's half).

The rules are PyTorch's (``torch.optim``), written out in :mod:`worked.optimizers`, whose
:class:`~worked.optimizers.Optimizer` is the readable form, one new array per operation.
Here every operation writes into an array allocated once (``out=``), in the same order and
with the same scalars, so the numbers are the same bit for bit
(``tests/test_lean_training.py`` checks the two step by step). ``θ`` and ``g`` are flat
vectors; every state starts at 0 and ``t`` counts steps from 1:

``sgd``       ``θ ← θ − η g``
``momentum``  ``v ← β v + g``, ``θ ← θ − η v``
``nesterov``  ``v ← β v + g``, ``θ ← θ − η (g + β v)``
``rmsprop``   ``s ← β s + (1 − β) g²``, ``θ ← θ − η g / (√s + ε)``
``adam``      ``m ← β₁ m + (1 − β₁) g``, ``v ← β₂ v + (1 − β₂) g²``,
              ``θ ← θ − η (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)``
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

KINDS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")
DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {},
    "momentum": {"beta": 0.9},
    "nesterov": {"beta": 0.9},
    "rmsprop": {"beta": 0.99, "eps": 1e-8},
    "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
}
STATE_NAMES = {"sgd": (), "momentum": ("v",), "nesterov": ("v",), "rmsprop": ("s",), "adam": ("m", "v")}


class UpdateRule:
    """One rule over ``θ`` and ``g`` (flat arrays of one dtype, updated and read in place).

    ``settings`` are the rule's constants, every one present (see :data:`DEFAULTS`);
    ``state`` holds the rule's flat state vectors by name (``v``, ``s``, ``m``). One step is
    ``t += 1`` and then the calls of :attr:`tape` (NumPy calls with their arguments fixed):
    :meth:`step` does both, a training loop may inline them.
    """

    def __init__(self, kind: str, settings: Mapping[str, float], lr: float, theta: np.ndarray, g: np.ndarray) -> None:
        if kind not in KINDS:
            raise ValueError(f"an optimiser kind, one of {', '.join(KINDS)}, not {kind!r}")
        self.kind, self.lr, self.theta, self.g = kind, lr, theta, g
        self.settings = {**DEFAULTS[kind], **settings}
        self.state = {name: np.zeros_like(theta) for name in STATE_NAMES[kind]}
        self.t = 0
        # The constants as 0-d arrays of θ's dtype: what NumPy makes of a Python float next to
        # such an array, made once instead of at every call.
        self._corrections = (np.zeros((), theta.dtype), np.zeros((), theta.dtype))  # adam's 1 − β₁ᵗ, 1 − β₂ᵗ
        self.tape = self._build()

    def _constant(self, value: float) -> np.ndarray:
        return np.array(value, self.theta.dtype)

    def _build(self) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
        theta, g, s, kind = self.theta, self.g, self.settings, self.kind
        u, w, lr = np.empty_like(theta), np.empty_like(theta), self._constant(self.lr)
        if kind == "sgd":
            calls = [(np.multiply, (g, lr, u))]
        elif kind in ("momentum", "nesterov"):
            v, beta = self.state["v"], self._constant(s["beta"])
            calls = [(np.multiply, (v, beta, v)), (np.add, (v, g, v))]
            if kind == "nesterov":
                calls += [(np.multiply, (v, beta, u)), (np.add, (g, u, u)), (np.multiply, (u, lr, u))]
            else:
                calls.append((np.multiply, (v, lr, u)))
        elif kind == "rmsprop":
            sq = self.state["s"]
            calls = [
                (np.multiply, (sq, self._constant(s["beta"]), sq)),
                (np.multiply, (g, self._constant(1 - s["beta"]), u)),
                (np.multiply, (u, g, u)),
                (np.add, (sq, u, sq)),
                (np.sqrt, (sq, w)),
                (np.add, (w, self._constant(s["eps"]), w)),
                (np.multiply, (g, lr, u)),
                (np.divide, (u, w, u)),
            ]
        else:
            m, v, c = self.state["m"], self.state["v"], self._corrections
            calls = [
                (self._set_corrections, ()),
                (np.multiply, (m, self._constant(s["beta1"]), m)),
                (np.multiply, (g, self._constant(1 - s["beta1"]), u)),
                (np.add, (m, u, m)),
                (np.multiply, (v, self._constant(s["beta2"]), v)),
                (np.multiply, (g, self._constant(1 - s["beta2"]), u)),
                (np.multiply, (u, g, u)),
                (np.add, (v, u, v)),
                (np.divide, (m, c[0], u)),
                (np.multiply, (u, lr, u)),
                (np.divide, (v, c[1], w)),
                (np.sqrt, (w, w)),
                (np.add, (w, self._constant(s["eps"]), w)),
                (np.divide, (u, w, u)),
            ]
        return [*calls, (np.subtract, (theta, u, theta))]

    def _set_corrections(self) -> None:
        s = self.settings
        self._corrections[0][...] = 1 - s["beta1"] ** self.t
        self._corrections[1][...] = 1 - s["beta2"] ** self.t

    def step(self) -> None:
        """``θ`` after one more step with the gradient now in ``g``."""
        self.t += 1
        for call, args in self.tape:
            call(*args)

    def state_by_name(self, layout: Iterable[tuple[str, tuple[int, ...]]]) -> dict[str, dict[str, np.ndarray]]:
        """Copies of the state cut into the parameters that ``layout`` (name, shape) lays out along ``θ``.

        ``{}`` before the first step, then ``{"W1": {"v": array}, …}`` (``{"W1": {}, …}`` for sgd).
        """
        if self.t == 0:
            return {}
        out: dict[str, dict[str, np.ndarray]] = {}
        start = 0
        for name, shape in layout:
            size = math.prod(shape)
            out[name] = {k: v[start : start + size].reshape(shape).copy() for k, v in self.state.items()}
            start += size
        return out

    def saved(self) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
        """A copy of ``θ``, the state and ``t``, for :meth:`restore`."""
        return self.theta.copy(), {k: v.copy() for k, v in self.state.items()}, self.t

    def restore(self, saved: tuple[np.ndarray, dict[str, np.ndarray], int]) -> None:
        theta, state, self.t = saved
        np.copyto(self.theta, theta)
        for name, value in state.items():
            np.copyto(self.state[name], value)
