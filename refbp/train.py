"""Full-batch training: plain gradient descent ``θ ← θ − η ∂L/∂θ`` (seed 000, seed 004) and its kin.

:class:`Trainer` is the lean loop behind :func:`fit` and worked examples' ``after_steps``:
the spec, parameters and data are validated once (:class:`refbp.lean_pass.LeanPass`), then
every step runs the gradient tape and the optimiser's in-place rule
(:class:`refbp.update_rules.UpdateRule`) with no per-step checks. The numbers are those of
calling :func:`refbp.network.backprop` and updating after every step, bit for bit. After
each :meth:`Trainer.run` the parameters are checked once; parameters that became NaN or
infinite (a learning rate too large for the loss) are an :class:`InputError` naming the
first step after which they were.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refbp.errors import InputError
from refbp.fields import integer
from refbp.lean_pass import LeanPass
from refbp.params import Parameters
from refbp.spec import NetworkSpec
from refbp.update_rules import DEFAULTS, KINDS, UpdateRule


def sgd_step(params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray], lr: float) -> Parameters:
    """New parameters ``θ − lr · ∂L/∂θ``; the inputs are not modified."""
    return {name: value - lr * grads[name] for name, value in params.items()}


class NonFiniteError(InputError):
    """Training made a parameter NaN or infinite; ``step`` is the first step after which one was."""

    def __init__(self, step: int, name: str, *, source: str = "spec", field: str = "lr") -> None:
        self.step, self.name = step, name
        super().__init__(field, "parameters that stay finite while training (a smaller learning rate)",
                         f"{name} NaN or infinite after step {step}", source=source)  # fmt: skip

    def with_source(self, source: str, field: str | None = None) -> NonFiniteError:
        return NonFiniteError(self.step, self.name, source=source, field=self.field if field is None else field)


class Trainer:
    """Full-batch training of a dense network on one batch, validated once.

    ``optimizer`` is one of :data:`refbp.update_rules.KINDS` with its ``settings`` (defaults
    filled in); parameters named in ``frozen`` are never updated. :attr:`step` counts the
    steps taken.
    """

    def __init__(
        self,
        spec: NetworkSpec,
        params: Mapping[str, Any],
        X: Any,
        T: Any,
        *,
        lr: float,
        optimizer: str = "sgd",
        settings: Mapping[str, float] | None = None,
        frozen: Iterable[str] = (),
    ) -> None:
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not 0 < lr < math.inf:
            raise InputError("lr", "a learning rate > 0", lr)
        if optimizer not in KINDS:
            raise InputError("optimizer", "one of " + ", ".join(KINDS), optimizer)
        unknown = sorted(set(settings or {}) - set(DEFAULTS[optimizer]))
        if unknown:
            raise InputError("settings", f"settings of {optimizer} ({', '.join(DEFAULTS[optimizer]) or 'none'})",
                             unknown[0])  # fmt: skip
        frozen = frozenset(frozen)
        shapes = spec.parameter_shapes() if isinstance(spec, NetworkSpec) else {}
        self.trained = tuple(name for name in shapes if name not in frozen)
        self.lean = LeanPass(spec, params, X, T, trainable=self.trained)
        n = self.lean.n_trainable
        self.rule = UpdateRule(optimizer, settings or {}, float(lr), self.lean.theta[:n], self.lean.grad[:n])

    @property
    def step(self) -> int:
        return self.rule.t

    def run(self, steps: int, *, losses: list[float] | None = None) -> None:
        """Take ``steps`` more steps; :class:`NonFiniteError` if a parameter became NaN or infinite.

        With ``losses``, the loss before each step is appended to it.
        """
        steps = integer(steps, "steps", minimum=0, wording="a number of steps >= 0")
        saved = self.rule.saved()
        rule, calls = self.rule, self.lean.tape + self.rule.tape
        with np.errstate(all="ignore"):
            if losses is None:
                for _ in range(steps):
                    rule.t += 1
                    for call, args in calls:
                        call(*args)
            else:
                for _ in range(steps):
                    self.lean.gradients()
                    losses.append(self.lean.loss())
                    rule.step()
        if not np.isfinite(self.rule.theta).all():
            self._first_non_finite(saved, steps)

    def _first_non_finite(self, saved: tuple[np.ndarray, dict[str, np.ndarray], int], steps: int) -> None:
        """Replay the run from ``saved`` step by step and raise at the first step that left a non-finite value."""
        self.rule.restore(saved)
        with np.errstate(all="ignore"):
            for _ in range(steps):
                self.lean.gradients()
                self.rule.step()
                if not np.isfinite(self.rule.theta).all():
                    name = next(n for n in self.trained if not np.isfinite(self.lean.params[n]).all())
                    raise NonFiniteError(self.rule.t, name)
        raise AssertionError("a replayed run differs from the run")  # both are deterministic

    def loss(self) -> float:
        """The loss at the current parameters (runs the forward pass)."""
        self.lean.gradients()
        return self.lean.loss()

    def parameters(self) -> Parameters:
        """Copies of the current parameters, in the order they were given."""
        return {name: value.copy() for name, value in self.lean.params.items()}

    def optimizer_state(self) -> dict[str, dict[str, np.ndarray]]:
        """The optimiser's state per trained parameter (``{}`` before the first step), copied.

        The layout of :meth:`worked.optimizers.Optimizer.snapshot`: ``{"W1": {"v": array}, …}``.
        """
        return self.rule.state_by_name((name, self.lean.params[name].shape) for name in self.trained)


@dataclass
class FitResult:
    """Parameters after training and the loss before each step (``losses[0]`` is the initial loss)."""

    params: Parameters
    losses: list[float] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


def fit(spec: NetworkSpec, params: Mapping[str, np.ndarray], X: Any, T: Any, *, lr: float, steps: int) -> FitResult:
    """Full-batch gradient descent for ``steps`` steps (a :class:`Trainer` with ``sgd``).

    ``losses`` has ``steps + 1`` entries: the loss before every step and after the last.
    """
    steps = integer(steps, "steps", minimum=0, wording="a number of steps >= 0")
    trainer = Trainer(spec, params, X, T, lr=lr)
    losses: list[float] = []
    trainer.run(steps, losses=losses)
    losses.append(trainer.loss())
    return FitResult(params=trainer.parameters(), losses=losses)
