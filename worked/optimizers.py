"""Optimisers for ``after_steps``: the update rules, in NumPy, and the same rules from ``torch.optim``.

Written ``optimizer = { kind = "momentum", beta = 0.9 }`` in a worked-example file; ``η`` is
the file's ``learning_rate``, ``g`` the gradient of the loss at the current parameters, every
state starts at 0 and ``t`` counts steps from 1. The conventions are PyTorch's, so that
``torch.optim`` checks them independently:

``sgd`` (the default)  ``θ ← θ − η g``
``momentum``           ``v ← β v + g``, ``θ ← θ − η v`` (``beta`` = 0.9). The velocity is *not*
                       scaled by ``η``: with a constant ``η`` this is the same path as the
                       textbook ``v ← β v − η g``, ``θ ← θ + v``. A course that averages,
                       ``v ← β v + (1 − β) g`` (deeplearning.ai), takes the same steps with
                       ``learning_rate`` multiplied by ``1 − β``.
``nesterov``           ``v ← β v + g``, ``θ ← θ − η (g + β v)`` (``beta`` = 0.9): the look-ahead
                       written at the current parameters, as ``torch.optim.SGD(nesterov=True)``.
``rmsprop``            ``s ← β s + (1 − β) g²``, ``θ ← θ − η g / (√s + ε)``
                       (``beta`` = 0.99, ``eps`` = 1e-8; ``torch.optim.RMSprop``'s ``alpha``).
``adam``               ``m ← β₁ m + (1 − β₁) g``, ``v ← β₂ v + (1 − β₂) g²``,
                       ``m̂ = m / (1 − β₁ᵗ)``, ``v̂ = v / (1 − β₂ᵗ)`` (bias-corrected),
                       ``θ ← θ − η m̂ / (√v̂ + ε)`` (``beta1`` = 0.9, ``beta2`` = 0.999, ``eps`` = 1e-8).

Parameters named in ``frozen`` are never updated; their gradients are still computed and
can be claimed.

:class:`Optimizer` is the readable form, one new array per operation (used for finite
differences' own path and for hints); refbp's own path through ``after_steps`` runs the same
rules in place, in :class:`refbp.update_rules.UpdateRule`, with the same numbers bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refbp.update_rules import DEFAULTS, KINDS

__all__ = ["DEFAULTS", "KINDS", "Optimizer", "OptimizerSpec", "optimizer_spec", "torch_optimizer"]


@dataclass(frozen=True)
class OptimizerSpec:
    """Which rule and its constants (every constant present, defaults filled in)."""

    kind: str = "sgd"
    settings: Mapping[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """``momentum (beta 0.9)``, for reports."""
        if not self.settings:
            return self.kind
        return f"{self.kind} (" + ", ".join(f"{k} {v:g}" for k, v in self.settings.items()) + ")"


def optimizer_spec(data: Any) -> OptimizerSpec:
    """Validate ``{kind = …, …}``; ``ValueError`` whose args are ``(key, expected, got)``."""
    if isinstance(data, str):
        data = {"kind": data}
    if not isinstance(data, Mapping):
        raise ValueError("", 'a table like { kind = "momentum", beta = 0.9 }', data)
    kind = data.get("kind", "sgd")
    if kind not in KINDS:
        raise ValueError("kind", "one of " + ", ".join(KINDS), kind)
    settings = dict(DEFAULTS[kind])
    for key, value in data.items():
        if key == "kind":
            continue
        if key not in settings:
            allowed = ", ".join(["kind", *DEFAULTS[kind]])
            raise ValueError(key, f"a setting of {kind} (one of {allowed})", f"unknown key {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(key, "a number", value)
        if key == "eps" and not value > 0:
            raise ValueError(key, "a number > 0", value)
        if key != "eps" and not 0 <= value < 1:
            raise ValueError(key, "a number in [0, 1)", value)
        settings[key] = float(value)
    return OptimizerSpec(kind, settings)


class Optimizer:
    """The NumPy rules of the module docstring, one state per parameter name."""

    def __init__(self, spec: OptimizerSpec, lr: float, frozen: Iterable[str] = ()) -> None:
        self.spec, self.lr, self.frozen = spec, lr, frozenset(frozen)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.t = 0

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """New parameters after one step (``params`` is not modified)."""
        self.t += 1
        return {
            name: value if name in self.frozen else value - self._update(name, np.asarray(grads[name]))
            for name, value in params.items()
        }

    def _update(self, name: str, g: np.ndarray) -> np.ndarray:
        s, lr, kind = self.spec.settings, self.lr, self.spec.kind
        state = self.state.setdefault(name, {})
        if kind == "sgd":
            return lr * g
        if kind in ("momentum", "nesterov"):
            v = state["v"] = s["beta"] * state.get("v", 0.0) + g
            return lr * (g + s["beta"] * v) if kind == "nesterov" else lr * v
        if kind == "rmsprop":
            sq = state["s"] = s["beta"] * state.get("s", 0.0) + (1 - s["beta"]) * g * g
            return lr * g / (np.sqrt(sq) + s["eps"])
        m = state["m"] = s["beta1"] * state.get("m", 0.0) + (1 - s["beta1"]) * g
        v = state["v"] = s["beta2"] * state.get("v", 0.0) + (1 - s["beta2"]) * g * g
        m_hat = m / (1 - s["beta1"] ** self.t)
        v_hat = v / (1 - s["beta2"] ** self.t)
        return lr * m_hat / (np.sqrt(v_hat) + s["eps"])

    def update_of(self, name: str, g: np.ndarray, state: Mapping[str, np.ndarray], t: int) -> np.ndarray:
        """The step ``θ_old − θ_new`` that gradient ``g`` would give from a saved ``state`` at step ``t``."""
        saved, saved_t = self.state, self.t
        self.state, self.t = {name: {k: np.array(v, copy=True) for k, v in state.items()}}, t
        try:
            return self._update(name, g)
        finally:
            self.state, self.t = saved, saved_t

    def snapshot(self) -> dict[str, dict[str, np.ndarray]]:
        """A copy of every parameter's state (before the next step)."""
        return {name: {k: np.array(v, copy=True) for k, v in st.items()} for name, st in self.state.items()}


def torch_optimizer(spec: OptimizerSpec, lr: float, tensors: Iterable[Any]) -> Any:
    """The ``torch.optim`` optimiser that follows the same rule (single-tensor loops, float64)."""
    import torch

    tensors = list(tensors)
    s = spec.settings
    if spec.kind == "sgd":
        return torch.optim.SGD(tensors, lr=lr, foreach=False)
    if spec.kind in ("momentum", "nesterov"):
        return torch.optim.SGD(tensors, lr=lr, momentum=s["beta"], nesterov=spec.kind == "nesterov", foreach=False)
    if spec.kind == "rmsprop":
        return torch.optim.RMSprop(tensors, lr=lr, alpha=s["beta"], eps=s["eps"], foreach=False)
    return torch.optim.Adam(tensors, lr=lr, betas=(s["beta1"], s["beta2"]), eps=s["eps"], foreach=False)
