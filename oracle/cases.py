"""A test case: a spec, a batch size and a seed — small enough to print and replay.

Parameters and data are derived from the seed, so a case serialises to a few lines of
JSON (``Case.to_json``) and ``refbp replay '<json>'`` rebuilds exactly the same numbers.
Data are drawn away from ReLU kinks: when a ReLU/leaky-ReLU pre-activation lies within
``KINK_MARGIN`` of 0, the draw is repeated with the next sub-seed, so finite differences
never straddle a kink in a generated case.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oracle.cases_typed import draw_typed
from oracle.fd_dense import preactivations
from refbp import limits
from refbp.errors import InputError
from refbp.spec import KINKED_ACTIVATIONS, NetworkSpec, parse_json

KINK_MARGIN = 1e-3
DENSE_TARGET_FORMS = ("one_hot", "soft")
_MAX_REDRAWS = 50


@dataclass(frozen=True)
class CaseData:
    """Concrete numbers of a case: parameters ``W1, b1, …``, inputs ``X`` and targets ``T``."""

    params: dict[str, np.ndarray]
    X: np.ndarray
    T: np.ndarray
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    """Running statistics of eval-mode batchnorm layers (typed networks only)."""


@dataclass(frozen=True)
class Case:
    """``spec`` + ``batch`` examples + ``seed`` for parameters and data.

    ``targets`` is the form of dense cross-entropy targets (``one_hot`` or ``soft``, see
    :mod:`oracle.supports`); ``None`` chooses by the seed's parity (one-hot for even seeds).
    """

    spec: NetworkSpec
    batch: int
    seed: int
    targets: str | None = None

    def materialize(self, *, avoid_kinks: bool = True) -> CaseData:
        """Draw parameters (Xavier-normal weights, ``N(0, 0.1²)`` biases), inputs ``N(0, 1)``, targets.

        Targets: ``N(0, 1)`` for the squared losses; for the cross-entropies random labels
        (index targets), their one-hot form (0/1 for binary cross-entropy) or soft targets
        uniform in ``[0, 1]``, as ``targets`` says (by default: binary cross-entropy soft,
        softmax one-hot for even seeds and soft for odd ones).
        """
        if not isinstance(self.spec, NetworkSpec):
            return draw_typed(self.spec, self.batch, self.seed, avoid_kinks=avoid_kinks, margin=KINK_MARGIN)
        data = _draw(self.spec, self.batch, self.seed, 0, self.targets)
        if avoid_kinks and any(layer.activation in KINKED_ACTIVATIONS for layer in self.spec.layers):
            for attempt in range(1, _MAX_REDRAWS + 1):
                if _kink_clearance(self.spec, data) >= KINK_MARGIN:
                    break
                data = _draw(self.spec, self.batch, self.seed, attempt, self.targets)
        return data

    @property
    def depth(self) -> int:
        return self.spec.depth

    def to_dict(self) -> dict[str, Any]:
        data = {"spec": self.spec.to_dict(), "batch": self.batch, "seed": self.seed}
        return data if self.targets is None else {**data, "targets": self.targets}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "case") -> Case:
        if not isinstance(data, dict) or set(data) - {"spec", "batch", "seed", "targets"} or "spec" not in data:
            raise InputError("", 'an object {"spec": {...}, "batch": N, "seed": S}', data, source=source)
        batch, seed = data.get("batch", 1), data.get("seed", 0)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise InputError("batch", "a positive integer", batch, source=source)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InputError("seed", "a non-negative integer", seed, source=source)
        targets = data.get("targets")
        if targets is not None and targets not in DENSE_TARGET_FORMS:
            raise InputError("targets", "one of " + ", ".join(DENSE_TARGET_FORMS), targets, source=source)
        spec = NetworkSpec.from_dict(data["spec"], source=f"{source}: spec")
        if isinstance(spec, NetworkSpec):
            limits.check_batch(batch, max(spec.widths), "batch", source=source)
        return cls(spec=spec, batch=batch, seed=seed, targets=targets)

    @classmethod
    def from_json(cls, text: str, *, source: str = "case") -> Case:
        return cls.from_dict(parse_json(text, source=source), source=source)

    def replay_command(self, *, impl: str | None = None) -> str:
        """One shell line that re-runs exactly this case."""
        extra = f" --impl {shlex.quote(impl)}" if impl else ""
        return f"refbp replay {shlex.quote(self.to_json())}{extra}"


def _draw(spec: NetworkSpec, batch: int, seed: int, attempt: int, targets: str | None) -> CaseData:
    rng = np.random.default_rng([seed, attempt])
    dtype = np.dtype(spec.dtype)
    params: dict[str, np.ndarray] = {}
    for name, shape in spec.parameter_shapes().items():
        layer = int(name[1:])
        std = np.sqrt(2.0 / (spec.widths[layer - 1] + spec.widths[layer])) if name.startswith("W") else 0.1
        params[name] = (rng.standard_normal(shape) * std).astype(dtype)
    X = rng.standard_normal(spec.input_shape(batch)).astype(dtype)
    return CaseData(params=params, X=X, T=draw_targets(spec, batch, seed, rng, targets))


def draw_targets(spec: Any, batch: int, seed: int, rng: np.random.Generator, targets: str | None = None) -> np.ndarray:
    """Targets that fit the loss, in the form ``targets`` names (see :meth:`Case.materialize`)."""
    dtype = np.dtype(spec.dtype)
    kind = spec.loss.kind
    if kind == "temporal_softmax_cross_entropy":
        # Labels per step; about one step in four masked out (-1), the first step always counted.
        labels = rng.integers(0, spec.outputs, size=spec.target_shape(batch))
        masked = rng.uniform(size=labels.shape) < 0.25
        masked[:, 0] = False
        T = np.where(masked, -1, labels)
    elif kind == "softmax_cross_entropy":
        labels = rng.integers(0, spec.outputs, size=batch)
        if spec.loss.targets == "index":
            T = labels
        elif targets == "soft" or (targets is None and seed % 2):
            # Soft targets that need not sum to 1: δ_L = a·Σt − t, not just a − t.
            T = rng.uniform(0.0, 1.0, spec.target_shape(batch)).astype(dtype)
        else:
            one_hot = np.eye(spec.outputs, dtype=dtype)[labels]
            T = one_hot if spec.layout == "in_out" else one_hot.T.copy()
    elif kind == "binary_cross_entropy" and targets == "one_hot":
        T = rng.integers(0, 2, spec.target_shape(batch)).astype(dtype)
    elif kind == "binary_cross_entropy":
        T = rng.uniform(0.0, 1.0, spec.target_shape(batch)).astype(dtype)
    else:
        T = rng.standard_normal(spec.target_shape(batch)).astype(dtype)
    return T


def _kink_clearance(spec: NetworkSpec, data: CaseData) -> float:
    """Smallest ``|z|`` over the pre-activations of kinked layers (``inf`` when there are none)."""
    zs = preactivations(spec, data.params, data.X)
    gaps = [np.abs(z).min() for z, layer in zip(zs, spec.layers, strict=True) if layer.activation in KINKED_ACTIVATIONS]
    return float(min(gaps)) if gaps else float("inf")
