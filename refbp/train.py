"""Plain gradient descent: ``θ ← θ − η ∂L/∂θ`` (seed 000, seed 004)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refbp.errors import InputError
from refbp.fields import integer
from refbp.network import backprop, forward
from refbp.params import Parameters, copy_parameters
from refbp.spec import NetworkSpec


def sgd_step(params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray], lr: float) -> Parameters:
    """New parameters ``θ − lr · ∂L/∂θ``; the inputs are not modified."""
    return {name: value - lr * grads[name] for name, value in params.items()}


@dataclass
class FitResult:
    """Parameters after training and the loss before each step (``losses[0]`` is the initial loss)."""

    params: Parameters
    losses: list[float] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


def fit(spec: NetworkSpec, params: Mapping[str, np.ndarray], X: Any, T: Any, *, lr: float, steps: int) -> FitResult:
    """Full-batch gradient descent for ``steps`` steps.

    ``losses`` has ``steps + 1`` entries: the loss before every step and after the last.
    """
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not 0 < lr < math.inf:
        raise InputError("lr", "a learning rate > 0", lr)
    lr = float(lr)
    steps = integer(steps, "steps", minimum=0, wording="a number of steps >= 0")
    current = copy_parameters(params)
    losses: list[float] = []
    for _ in range(steps):
        trace, grads = backprop(spec, current, X, T)
        losses.append(float(trace.loss))
        current = sgd_step(current, grads.by_parameter(), lr)
    trace = forward(spec, current, X, T)
    losses.append(float(trace.loss))
    return FitResult(params=current, losses=losses)
