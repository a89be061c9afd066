"""Public hypothesis strategies for network specs, parameters, batches and test cases.

Use them in your own ``@given`` tests::

    from hypothesis import given, strategies as st
    from oracle.strategies import batches, network_specs, parameters

    @given(st.data())
    def test_my_backprop(data):
        spec = data.draw(network_specs(max_depth=3, losses=["half_sse"]))
        params = data.draw(parameters(spec, max_value=0.5))
        X, T = data.draw(batches(spec, max_batch=8))
        ...

or, all four at once, ``@given(backprop_inputs(max_depth=3))`` with a test taking
``(spec, params, X, T)`` as one tuple. :func:`cases` draws a seed instead of numbers
(:class:`oracle.cases.Case`: data drawn by NumPy from the seed, away from ReLU kinks);
this is what sweeps use.

Bounds are keyword arguments. Every strategy shrinks toward the simplest network:
fewer layers, narrower layers, ``identity``/``sigmoid`` before the others, ``in_out``
before ``out_in``, ``half_sse`` before the other losses, batch 1, values 0.

Values drawn by :func:`parameters` and :func:`batches` shrink toward 0, so a ReLU
pre-activation can be exactly 0; an implementation whose ReLU derivative at 0 is not
torch's (0) then differs from the twin there. Finite differences skip such kink entries
(see :mod:`oracle.finite_diff`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from hypothesis import given as draw_from
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from oracle.cases import Case
from oracle.supports import BOUND_LIMITS, HIDDEN_ACTIVATIONS, LOSS_TARGETS, Supports, resolve
from refbp.errors import InputError
from refbp.spec import BIAS_MODES, DTYPES, L2Spec, LayerSpec, LossSpec, NetworkSpec

__all__ = [
    "HIDDEN_ACTIVATIONS",
    "SPEC_FAMILIES",
    "backprop_inputs",
    "batches",
    "cases",
    "layer_specs",
    "network_specs",
    "parameters",
]

SpecFamily = Callable[[Supports], st.SearchStrategy[NetworkSpec]]


def _slope(draw: st.DrawFn, activation: str) -> float:
    return draw(st.sampled_from([0.01, 0.2])) if activation == "leaky_relu" else 0.01


def layer_specs(
    *, min_width: int = 1, max_width: int = 6, activations=HIDDEN_ACTIVATIONS, bias_modes=BIAS_MODES
) -> st.SearchStrategy[LayerSpec]:
    """One hidden layer: ``min_width…max_width`` units, an activation and a bias mode.

    Bad bounds raise :class:`refbp.InputError` here, when the strategy is built.
    """
    declared = resolve(
        None,
        {"min_width": min_width, "max_width": max_width, "activations": activations, "bias_modes": bias_modes},
        where="layer_specs",
    )
    return _hidden_layers(declared)


@st.composite
def _hidden_layers(draw: st.DrawFn, declared: Supports) -> LayerSpec:
    activation = draw(st.sampled_from(declared.hidden_activations))
    return LayerSpec(
        units=draw(st.integers(declared.min_width, declared.max_width)),
        activation=activation,
        bias=draw(st.sampled_from(declared.bias_modes)),
        negative_slope=_slope(draw, activation),
    )


def network_specs(
    supports: Supports | Mapping[str, Any] | None = None, **bounds: Any
) -> st.SearchStrategy[NetworkSpec]:
    """Valid dense :class:`NetworkSpec` s inside a support declaration (:class:`oracle.supports.Supports`).

    ``supports`` is the declaration (default: everything refbp builds, depth 1…4, width 1…6,
    inputs 1…5); keyword ``bounds`` narrow it (``min_depth``, ``max_depth``, ``min_width``,
    ``max_width``, ``min_inputs``, ``max_inputs``, ``activations``, ``output_activations``,
    ``bias_modes``, ``layouts``, ``losses``, ``reductions``, ``targets``, ``l2`` — a list of
    L2 forms or a bool — and ``dtype``); without ``supports`` they set it. ``activations``
    names the hidden activations and, unless ``output_activations`` is given, the output
    activation under a squared loss too; softmax cross-entropy has a softmax output, binary
    cross-entropy a sigmoid one. Softmax outputs get at least two units. Every drawn spec
    lies inside the declaration. A bad argument raises :class:`refbp.InputError` here.
    """
    return _dense_specs(resolve(supports, bounds, where="network_specs"))


@st.composite
def _dense_specs(draw: st.DrawFn, declared: Supports) -> NetworkSpec:
    depth = draw(st.integers(declared.min_depth, declared.max_depth))
    hidden = [draw(_hidden_layers(declared)) for _ in range(depth - 1)]
    kind = draw(st.sampled_from(declared.losses))
    if kind == "softmax_cross_entropy":
        out_activation = "softmax"
    elif kind == "binary_cross_entropy":
        out_activation = "sigmoid"
    else:
        out_activation = draw(st.sampled_from(declared.output_activations))
    min_out = 2 if out_activation == "softmax" else 1
    output = LayerSpec(
        units=draw(st.integers(max(min_out, declared.min_width), max(min_out, declared.max_width))),
        activation=out_activation,
        bias=draw(st.sampled_from(declared.bias_modes)),
        negative_slope=_slope(draw, out_activation),
    )
    targets = "dense"
    if kind == "softmax_cross_entropy":
        forms = [t for t in declared.targets if t in LOSS_TARGETS[kind]]
        targets = "index" if draw(st.sampled_from(forms)) == "labels" else "dense"
    form = draw(st.sampled_from(declared.l2))
    penalty = L2Spec()
    if form != "off":
        penalty = L2Spec(lam=draw(st.sampled_from([0.1, 0.01, 1.0])), include_bias=form == "weights_and_biases")
    return NetworkSpec(
        inputs=draw(st.integers(declared.min_inputs, declared.max_inputs)),
        layers=(*hidden, output),
        layout=draw(st.sampled_from(declared.layouts)),
        loss=LossSpec(kind=kind, reduction=draw(st.sampled_from(declared.reductions)), targets=targets),
        l2=penalty,
        dtype=draw(st.sampled_from(declared.dtypes)),
    )


#: Spec strategies by family: ``family(declaration) -> strategy of specs``. Another family of
#: layers registers its own builder here; :func:`cases` draws from the declaration's family.
SPEC_FAMILIES: dict[str, SpecFamily] = {"dense": _dense_specs}


def dense_target_form(spec: NetworkSpec, declared: Supports) -> list[str]:
    """The dense target forms (``one_hot``, ``soft``) a case of ``spec`` may take under ``declared``."""
    if spec.loss.kind not in LOSS_TARGETS or spec.loss.targets == "index":
        return []
    return [t for t in declared.targets if t in ("one_hot", "soft")]


def cases(
    specs: st.SearchStrategy[NetworkSpec] | None = None,
    *,
    supports: Supports | Mapping[str, Any] | None = None,
    family: str = "dense",
    **bounds: Any,
) -> st.SearchStrategy[Case]:
    """:class:`Case` s: a spec, a batch size, a target form and a seed, all inside one declaration.

    The declaration is ``supports`` narrowed by ``bounds`` (see :func:`network_specs`; the
    batch bounds ``min_batch``/``max_batch`` apply here). Specs come from the declaration's
    ``family`` (:data:`SPEC_FAMILIES`), or from ``specs``: then only those that lie inside the
    declaration are kept when a declaration or bounds were given, and the ``dtype`` bound,
    when given, is applied to each.
    """
    if family not in SPEC_FAMILIES:
        raise InputError("family", "one of " + ", ".join(SPEC_FAMILIES), family, source="cases")
    given = bounds
    if specs is not None and supports is None:
        # Given specs are kept whole but for what the bounds ask: no default depth, width or dtype applies.
        wide = {f"max_{name}": BOUND_LIMITS[name] for name in ("depth", "width", "inputs")}
        given = {**wide, **({} if "dtype" in bounds else {"dtypes": DTYPES}), **bounds}
    declared = resolve(supports, given, where="cases")
    if specs is None:
        specs = SPEC_FAMILIES[family](declared)
    else:
        if not isinstance(specs, st.SearchStrategy):
            raise InputError("specs", "a hypothesis strategy of NetworkSpec", type(specs).__name__, source="cases")
        if "dtype" in bounds:
            dtype = bounds["dtype"]
            specs = specs.map(lambda spec: spec if spec.dtype == dtype else spec.replace(dtype=dtype))
        if supports is not None or set(bounds) - {"min_batch", "max_batch", "targets", "dtype"}:
            specs = specs.filter(lambda spec: not declared.covers(spec))
    return _cases(specs, declared)


@st.composite
def _cases(draw: st.DrawFn, specs: st.SearchStrategy[NetworkSpec], declared: Supports) -> Case:
    spec = draw(specs)
    forms = dense_target_form(spec, declared)
    targets = draw(st.sampled_from(forms)) if forms else None
    batch = draw(st.integers(declared.min_batch, declared.max_batch))
    return Case(spec=spec, batch=batch, seed=draw(st.integers(0, 2**16)), targets=targets)


def _number(where: str, name: str, value: Any) -> float:
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not number or not np.isfinite(value):
        raise InputError(name, "a finite number", value, source=where)
    return float(value)


def _values(where: str, dtype: str, min_value: Any, max_value: Any) -> st.SearchStrategy[float]:
    """Finite floats in ``[min_value, max_value]`` that ``dtype`` holds exactly."""
    min_value, max_value = _number(where, "min_value", min_value), _number(where, "max_value", max_value)
    if not min_value <= max_value:
        raise InputError("min_value", f"at most max_value = {max_value}", min_value, source=where)
    if dtype == "float64":
        return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    low, high = np.float32(min_value), np.float32(max_value)
    low = low if low >= min_value else np.nextafter(low, np.float32(np.inf))
    high = high if high <= max_value else np.nextafter(high, np.float32(-np.inf))
    if low > high:
        expected = "a range holding a float32 number"
        raise InputError("min_value/max_value", expected, (min_value, max_value), source=where)
    return st.floats(float(low), float(high), width=32, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _spec(where: str, spec: Any) -> NetworkSpec:
    if not isinstance(spec, NetworkSpec):
        raise InputError("spec", "a NetworkSpec", type(spec).__name__, source=where)
    return spec


def parameters(spec: NetworkSpec, *, min_value: float = -1.0, max_value: float = 1.0) -> st.SearchStrategy:
    """Parameters of ``spec``: ``{"W1": …, "b1": …}`` shaped by ``spec.parameter_shapes()``, in ``spec.dtype``.

    ``W_l`` is ``(n_{l-1}, n_l)`` for layout ``in_out`` and ``(n_l, n_{l-1})`` for ``out_in``;
    ``b_l`` is ``(n_l,)`` for a ``per_unit`` bias, ``(1,)`` for a ``shared`` one, and absent
    for ``none``. Every entry lies in ``[min_value, max_value]`` (for ``float32``, the
    nearest ``float32`` values inside the bounds).
    """
    spec = _spec("parameters", spec)
    values = _values("parameters", spec.dtype, min_value, max_value)
    return st.fixed_dictionaries(
        {name: arrays(spec.dtype, shape, elements=values) for name, shape in spec.parameter_shapes().items()}
    )


def batches(
    spec: NetworkSpec,
    *,
    min_batch: int = 1,
    max_batch: int = 4,
    min_value: float = -2.0,
    max_value: float = 2.0,
    soft_targets: bool = True,
    targets: Any = None,
) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    """A batch ``(X, T)`` for ``spec`` of ``min_batch…max_batch`` examples.

    ``X`` has shape ``spec.input_shape(N)`` (``(N, d)`` for ``in_out``, ``(d, N)`` for
    ``out_in``), entries in ``[min_value, max_value]``. ``T`` fits the loss: labels
    ``0…outputs-1`` of shape ``(N,)`` for index targets; otherwise the shape
    ``spec.target_shape(N)``: for the cross-entropies one of the dense ``targets`` forms
    (``one_hot``: one-hot rows for softmax cross-entropy, 0/1 for binary cross-entropy;
    ``soft``: entries in ``[0, 1]``, which for softmax need not sum to 1; default both, or
    ``one_hot`` alone when ``soft_targets`` is false); ``[min_value, max_value]`` for the
    squared losses.
    """
    where = "batches"
    spec = _spec(where, spec)
    if targets is None:
        targets = ["one_hot", "soft"] if soft_targets else ["one_hot"]
    elif not soft_targets:
        raise InputError("soft_targets", "left out when targets is given", soft_targets, source=where)
    declared = resolve(None, {"min_batch": min_batch, "max_batch": max_batch, "targets": targets}, where=where)
    forms = [t for t in declared.targets if t in ("one_hot", "soft")]
    if spec.loss.kind in LOSS_TARGETS and spec.loss.targets == "dense" and not forms:
        raise InputError("targets", f"one_hot or soft for the dense targets of {spec.loss.kind}", targets, source=where)
    return _batches(spec, declared, forms, _values(where, spec.dtype, min_value, max_value))


@st.composite
def _batches(draw: st.DrawFn, spec: NetworkSpec, declared: Supports, forms: list[str], values) -> tuple:
    batch = draw(st.integers(declared.min_batch, declared.max_batch))
    X = draw(arrays(spec.dtype, spec.input_shape(batch), elements=values))
    shape, kind = spec.target_shape(batch), spec.loss.kind
    if kind == "softmax_cross_entropy" and spec.loss.targets == "index":
        return X, draw(arrays(np.int64, (batch,), elements=st.integers(0, spec.outputs - 1)))
    if kind not in LOSS_TARGETS:
        return X, draw(arrays(spec.dtype, shape, elements=values))
    if draw(st.sampled_from(forms)) == "soft":
        return X, draw(arrays(spec.dtype, shape, elements=_values("batches", spec.dtype, 0.0, 1.0)))
    if kind == "binary_cross_entropy":
        return X, draw(arrays(spec.dtype, shape, elements=st.sampled_from([0.0, 1.0])))
    labels = draw(arrays(np.int64, (batch,), elements=st.integers(0, spec.outputs - 1)))
    one_hot = np.eye(spec.outputs, dtype=spec.dtype)[labels]
    return X, (one_hot if spec.layout == "in_out" else one_hot.T.copy())


_BATCH_KEYS = ("min_batch", "max_batch", "min_value", "max_value", "soft_targets", "targets")


def backprop_inputs(
    specs: st.SearchStrategy[NetworkSpec] | None = None,
    *,
    supports: Supports | Mapping[str, Any] | None = None,
    parameter_bounds: Mapping[str, float] | None = None,
    batch_bounds: Mapping[str, Any] | None = None,
    **bounds: Any,
) -> st.SearchStrategy[tuple[NetworkSpec, dict[str, np.ndarray], np.ndarray, np.ndarray]]:
    """``(spec, params, X, T)``: a spec (``specs``, or :func:`network_specs` with ``supports`` and
    ``bounds``), its :func:`parameters` (``parameter_bounds`` as keyword arguments) and a
    :func:`batches` draw (``batch_bounds``; the declaration's batch bounds and target forms by default)."""
    declared = resolve(supports, bounds, where="backprop_inputs")
    if specs is None:
        specs = _dense_specs(declared)
    elif supports is not None or bounds:
        specs = specs.filter(lambda spec: not declared.covers(spec))
    batch_bounds = {
        "min_batch": declared.min_batch,
        "max_batch": declared.max_batch,
        "targets": [t for t in declared.targets if t in ("one_hot", "soft")] or ["one_hot"],
        **(batch_bounds or {}),
    }
    allowed = {"parameter_bounds": {"min_value", "max_value"}, "batch_bounds": {*_BATCH_KEYS}}
    for name, given in (("parameter_bounds", parameter_bounds), ("batch_bounds", batch_bounds)):
        if given is None:
            continue
        if not isinstance(given, Mapping) or set(given) - allowed[name]:
            expected = "a dict with keys from " + ", ".join(sorted(allowed[name]))
            got = dict(given) if isinstance(given, Mapping) else given
            raise InputError(name, expected, got, source="backprop_inputs")
    return _backprop_inputs(specs, dict(parameter_bounds or {}), batch_bounds)


@st.composite
def _backprop_inputs(draw: st.DrawFn, specs, parameter_bounds: dict, batch_bounds: dict) -> tuple:
    spec = draw(specs)
    params = draw(parameters(spec, **parameter_bounds))
    X, T = draw(batches(spec, **batch_bounds))
    return spec, params, X, T


def seeded_examples(
    strategy: st.SearchStrategy[Any], n: int, seed: int
) -> Callable[[Callable[..., None]], Callable[[], None]]:
    """Decorate a check so that calling it runs it on ``n`` examples of ``strategy``, drawn from ``seed``.

    Generation only (no shrinking, no example database, no deadline, no health checks): the same
    seed draws the same examples, so a sweep or a gate is reproducible.
    """

    def decorate(check: Callable[..., None]) -> Callable[[], None]:
        run = settings(
            max_examples=n,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        return run(hypothesis_seed(seed)(draw_from(strategy)(check)))

    return decorate
