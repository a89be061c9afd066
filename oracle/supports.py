"""What an implementation under test supports, declared once, so that every generated case lies inside it.

A :class:`Supports` names the layouts, the activations per position (hidden layers; the
output layer under a squared loss — the cross-entropies fix theirs to ``softmax`` and
``sigmoid``), the losses and reductions, the target forms, the bias modes, the L2 forms,
the dtypes and the depth, width, input and batch bounds::

    REFBP_SUPPORTS = Supports(
        layouts=["out_in"], hidden_activations=["sigmoid"], output_activations=["sigmoid"],
        losses=["half_sse", "binary_cross_entropy"], reductions=["mean"], targets=["soft"],
        bias_modes=["per_unit"], l2=["off", "weights"], dtypes=["float64"], max_depth=3,
    )

or the same fields in a TOML file (``Supports.load("supports.toml")``). The gate
(:func:`oracle.gate.assert_backprop_matches`), the ``bp_oracle`` fixture, the strategies
of :mod:`oracle.strategies` and ``refbp sweep --impl`` accept one; the gate and the sweep
also read it from a module attribute ``REFBP_SUPPORTS`` beside the implementation.

Target forms: ``labels`` (integer class indices, softmax cross-entropy), ``one_hot`` (one-hot
rows or columns for softmax cross-entropy; 0/1 targets for binary cross-entropy) and
``soft`` (entries uniform in ``[0, 1]``; for softmax cross-entropy they need not sum to 1).
The squared losses take real-valued targets whatever the declaration says. L2 forms:
``off`` (λ = 0), ``weights`` (λ/2·Σ‖W‖²) and ``weights_and_biases`` (biases too).

An adapter that meets a case it cannot handle anyway raises :class:`Unsupported`; the case
is skipped and counted, and a gate fails when more than a set fraction of its cases are
unsupported (:func:`unsupported_verdict`): then the declaration, not the code, is wrong.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from refbp.errors import InputError
from refbp.spec import ACTIVATIONS, BIAS_MODES, DTYPES, LAYOUTS, LOSSES, REDUCTIONS, NetworkSpec

HIDDEN_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "softmax")
TARGETS = ("labels", "one_hot", "soft")
L2_FORMS = ("off", "weights", "weights_and_biases")
SQUARED_LOSSES = ("half_sse", "mse")
#: Target forms each loss can take (the squared losses take real-valued targets).
LOSS_TARGETS = {"softmax_cross_entropy": TARGETS, "binary_cross_entropy": ("one_hot", "soft")}
#: Largest bound a declaration may give (a gate case stays small: it is differenced entry by entry).
BOUND_LIMITS = {"depth": 32, "width": 256, "inputs": 256, "batch": 256}
#: Share of a gate's cases an adapter may answer ``Unsupported`` before the declaration is called wrong.
DEFAULT_MAX_UNSUPPORTED = 0.2

_CHOICES = {
    "layouts": LAYOUTS,
    "hidden_activations": HIDDEN_ACTIVATIONS,
    "output_activations": ACTIVATIONS,
    "losses": LOSSES,
    "reductions": REDUCTIONS,
    "targets": TARGETS,
    "bias_modes": BIAS_MODES,
    "l2": L2_FORMS,
    "dtypes": DTYPES,
}


class Unsupported(Exception):  # noqa: N818 - an answer, not an error: "this case is outside what I support"
    """Raised by an implementation for a case it does not support; the gate skips the case with ``str(err)``."""


@dataclass(frozen=True)
class Supports:
    """What an implementation supports (see the module docstring). Lists become tuples; bad fields raise
    :class:`refbp.InputError` naming the field."""

    layouts: tuple[str, ...] = LAYOUTS
    hidden_activations: tuple[str, ...] = HIDDEN_ACTIVATIONS
    output_activations: tuple[str, ...] = ACTIVATIONS
    losses: tuple[str, ...] = LOSSES
    reductions: tuple[str, ...] = REDUCTIONS
    targets: tuple[str, ...] = TARGETS
    bias_modes: tuple[str, ...] = BIAS_MODES
    l2: tuple[str, ...] = L2_FORMS
    dtypes: tuple[str, ...] = DTYPES
    min_depth: int = 1
    max_depth: int = 4
    min_width: int = 1
    max_width: int = 6
    min_inputs: int = 1
    max_inputs: int = 5
    min_batch: int = 1
    max_batch: int = 4
    source: str = field(default="supports", compare=False)

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            chosen = (value,) if isinstance(value, str) else value
            if not isinstance(chosen, list | tuple) or not chosen or any(c not in allowed for c in chosen):
                self._fail(name, f"a non-empty list from {', '.join(allowed)}", value)
            object.__setattr__(self, name, tuple(dict.fromkeys(chosen)))
        for name, limit in BOUND_LIMITS.items():
            low, high = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
            for key, value in ((f"min_{name}", low), (f"max_{name}", high)):
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
                    self._fail(key, f"an integer from 1 to {limit}", value)
            if low > high:
                self._fail(f"min_{name}", f"at most max_{name} = {high}", low)
        self._check_consistent()

    def _fail(self, name: str, expected: str, got: Any) -> None:
        raise InputError(name, expected, got, source=self.source)

    def _check_consistent(self) -> None:
        for loss in self.losses:
            if loss in LOSS_TARGETS and not set(self.targets) & set(LOSS_TARGETS[loss]):
                self._fail("targets", f"a form {loss} takes ({', '.join(LOSS_TARGETS[loss])})", list(self.targets))
        wide = self.max_width >= 2
        if "softmax_cross_entropy" in self.losses and not wide:
            self._fail("max_width", "at least 2 (softmax cross-entropy needs two outputs)", self.max_width)
        if any(loss in SQUARED_LOSSES for loss in self.losses) and self.output_activations == ("softmax",) and not wide:
            self._fail("max_width", "at least 2 (a softmax output needs two units)", self.max_width)

    # ------------------------------------------------------------------ building

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "supports") -> Supports:
        """A declaration from a dict (``REFBP_SUPPORTS = {...}`` or a parsed TOML file)."""
        if not isinstance(data, Mapping):
            raise InputError("", "a table of support fields", type(data).__name__, source=source)
        known = [f.name for f in fields(cls) if f.name != "source"]
        for key in data:
            if key not in known:
                expected = "a support field (" + ", ".join(known) + ")"
                raise InputError(str(key), expected, "an unknown key", source=source)
        return cls(**dict(data), source=source)

    @classmethod
    def load(cls, path: str | Path) -> Supports:
        """A declaration from a TOML file whose top-level keys are the fields."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise InputError("", "a readable TOML file", err.strerror, source=str(path)) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise InputError("", "valid UTF-8 TOML", str(err).splitlines()[0], source=str(path)) from None
        return cls.from_mapping(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["source"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    def narrowed(self, *, where: str = "bounds", **bounds: Any) -> Supports:
        """This declaration narrowed by strategy-style bounds; what lies outside it is refused.

        ``bounds``: ``min_/max_`` ``depth``, ``width``, ``inputs``, ``batch`` (intersected with the
        declared range; an empty intersection raises); any list field (``activations`` is
        ``hidden_activations``), each name of which must be declared; ``l2`` also as a bool
        (``False`` is ``["off"]``, ``True`` keeps the declared forms); ``dtype`` for one dtype.
        """
        changes: dict[str, Any] = {}
        for key, value in bounds.items():
            name = {"activations": "hidden_activations", "dtype": "dtypes"}.get(key, key)
            if name == "l2" and isinstance(value, bool):
                value = list(self.l2) if value else ["off"]
            if name in _CHOICES:
                chosen = [value] if isinstance(value, str) else value
                declared = getattr(self, name)
                if not isinstance(chosen, list | tuple) or not chosen or any(c not in _CHOICES[name] for c in chosen):
                    raise InputError(key, f"a non-empty list from {', '.join(_CHOICES[name])}", value, source=where)
                outside = [c for c in chosen if c not in declared]
                if outside:
                    expected = f"names the support declaration lists ({', '.join(declared)})"
                    raise InputError(key, expected, outside, source=where)
                changes[name] = tuple(chosen)
            elif name.startswith(("min_", "max_")) and name[4:] in BOUND_LIMITS:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise InputError(key, "a positive integer", value, source=where)
                declared = getattr(self, name)
                changes[name] = max(value, declared) if name.startswith("min_") else min(value, declared)
            else:
                expected = "a bound of the random networks (" + ", ".join(bound_names()) + ")"
                raise InputError(key, expected, value, source=where)
        for name in BOUND_LIMITS:
            low = changes.get(f"min_{name}", self.min_bound(name))
            high = changes.get(f"max_{name}", self.max_bound(name))
            if low > high:
                declared = f"{self.min_bound(name)}…{self.max_bound(name)}"
                expected = f"a range meeting the declared {declared}"
                raise InputError(f"min_{name}/max_{name}", expected, f"{low}…{high}", source=where)
        return replace(self, **changes, source=self.source)

    def min_bound(self, name: str) -> int:
        return getattr(self, f"min_{name}")

    def max_bound(self, name: str) -> int:
        return getattr(self, f"max_{name}")

    # ------------------------------------------------------------------ checking

    def covers(self, spec: NetworkSpec) -> str:
        """``""`` when ``spec`` lies inside this declaration, else why it does not (one phrase)."""
        checks = [
            ("layout", spec.layout, self.layouts),
            ("loss", spec.loss.kind, self.losses),
            ("reduction", spec.loss.reduction, self.reductions),
            ("dtype", spec.dtype, self.dtypes),
            ("l2", l2_form(spec), self.l2),
        ]
        hidden = enumerate(spec.layers[:-1])
        checks += [(f"layers[{i}].activation", layer.activation, self.hidden_activations) for i, layer in hidden]
        checks += [(f"layers[{i}].bias", layer.bias, self.bias_modes) for i, layer in enumerate(spec.layers)]
        if spec.loss.kind in SQUARED_LOSSES:
            checks.append(("output activation", spec.layers[-1].activation, self.output_activations))
        if spec.loss.kind == "softmax_cross_entropy" and spec.loss.targets == "index":
            checks.append(("targets", "labels", self.targets))
        for what, value, allowed in checks:
            if value not in allowed:
                return f"{what} {value} is not declared ({', '.join(allowed)})"
        for name, value in (("depth", spec.depth), ("inputs", spec.inputs), *(("width", w) for w in spec.widths[1:])):
            if not self.min_bound(name) <= value <= self.max_bound(name):
                return f"{name} {value} is outside the declared {self.min_bound(name)}…{self.max_bound(name)}"
        return ""

    def describe(self) -> str:
        """One line for report headers: the fields that differ from the defaults."""
        default = Supports()
        parts = []
        for key, value in self.to_dict().items():
            if value != default.to_dict()[key]:
                parts.append(f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}")
        return "; ".join(parts) or "everything refbp generates"


def resolve(supports: Any, bounds: Mapping[str, Any], *, where: str) -> Supports:
    """The declaration a strategy or gate draws from: ``supports`` narrowed by ``bounds``, or ``bounds`` alone.

    Without ``supports`` the bounds build a declaration directly (so ``max_width=10`` widens
    the default 6); with one they may only narrow it (:meth:`Supports.narrowed`). Either way
    ``activations`` names the hidden activations and, unless ``output_activations`` is given,
    the output activations under a squared loss too.
    """
    bounds = dict(bounds)
    if "activations" in bounds and "hidden_activations" in bounds:
        raise InputError("activations", "either activations or hidden_activations, not both", None, source=where)
    if supports is not None:
        base = as_supports(supports, source=where)
        if "activations" in bounds and "output_activations" not in bounds:
            base.narrowed(where=where, activations=bounds["activations"])  # names outside the declaration: refused
            chosen = bounds["activations"]
            chosen = [chosen] if isinstance(chosen, str) else chosen
            if isinstance(chosen, list | tuple):
                outputs = [a for a in base.output_activations if a in chosen]
                if not outputs and any(loss in SQUARED_LOSSES for loss in base.losses):
                    allowed = ", ".join(base.output_activations)
                    expected = f"an activation the declaration allows at the output ({allowed})"
                    raise InputError("activations", expected, list(chosen), source=where)
                bounds["output_activations"] = outputs or list(base.output_activations)
        return base.narrowed(where=where, **bounds)
    known = set(bound_names())
    for key, value in bounds.items():
        if key not in known:
            expected = "a bound of the random networks (" + ", ".join(bound_names()) + ")"
            raise InputError(key, expected, value, source=where)
    if "activations" in bounds:
        bounds["hidden_activations"] = bounds.pop("activations")
        bounds.setdefault("output_activations", bounds["hidden_activations"])
    bounds["dtypes"] = bounds.pop("dtype", bounds.get("dtypes", ("float64",)))
    if isinstance(bounds.get("l2"), bool):
        bounds["l2"] = list(L2_FORMS) if bounds["l2"] else ["off"]
    return Supports(**bounds, source=where)


def bound_names() -> list[str]:
    """Keyword arguments :meth:`Supports.narrowed` takes."""
    bounds = [f"{side}_{name}" for name in BOUND_LIMITS for side in ("min", "max")]
    return [*bounds, "activations", *_CHOICES, "dtype"]


def l2_form(spec: NetworkSpec) -> str:
    """``off``, ``weights`` or ``weights_and_biases``: the L2 form of ``spec``."""
    if spec.l2.lam == 0:
        return "off"
    return "weights_and_biases" if spec.l2.include_bias else "weights"


def as_supports(value: Any, *, source: str = "supports") -> Supports:
    """A :class:`Supports` from itself, a mapping of its fields or a TOML path."""
    if isinstance(value, Supports):
        return value
    if isinstance(value, str | Path):
        return Supports.load(value)
    return Supports.from_mapping(value, source=source)


def declared_supports(impl: Any) -> Supports | None:
    """The declaration an implementation carries: an adapter's ``supports``, else ``REFBP_SUPPORTS`` beside it.

    ``REFBP_SUPPORTS`` is looked up in the globals of the function (so a file loaded by path
    works too); ``None`` when there is none.
    """
    own = getattr(impl, "supports", None)
    if isinstance(own, Supports | Mapping):  # an Adapter's (a method that happens to be named so is not one)
        return as_supports(own, source=f"{getattr(impl, 'name', 'impl')}.supports")
    func = getattr(impl, "func", impl)
    namespace = getattr(func, "__globals__", None) or {}
    if "REFBP_SUPPORTS" in namespace:
        module = namespace.get("__name__", "module")
        return as_supports(namespace["REFBP_SUPPORTS"], source=f"{module}.REFBP_SUPPORTS")
    return None


def unsupported_verdict(unsupported: int, total: int, limit: float) -> str:
    """Why a run with ``unsupported`` of ``total`` cases unsupported fails, or ``""`` when it does not."""
    if total == 0 or unsupported / total <= limit:
        return ""
    return (
        f"{unsupported} of {total} cases were unsupported (more than {limit:.0%}): the support declaration "
        "is wrong — declare only what the implementation supports (see oracle.supports)"
    )
