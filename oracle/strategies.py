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

from collections.abc import Mapping, Sequence

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from oracle.cases import Case
from refbp.spec import (
    ACTIVATIONS,
    BIAS_MODES,
    LAYOUTS,
    LOSSES,
    REDUCTIONS,
    L2Spec,
    LayerSpec,
    LossSpec,
    NetworkSpec,
)

__all__ = ["HIDDEN_ACTIVATIONS", "backprop_inputs", "batches", "cases", "layer_specs", "network_specs", "parameters"]

HIDDEN_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "softmax")


def _choices(strategy: str, name: str, given: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """``given`` as a list, or a ``ValueError`` naming the argument when it is empty or holds an unknown name."""
    chosen = [given] if isinstance(given, str) else list(given)
    if not chosen or any(c not in allowed for c in chosen):
        raise ValueError(f"{strategy}: {name}: expected a non-empty list from {', '.join(allowed)}, got {chosen!r}")
    return chosen


def _bounds(strategy: str, name: str, low: int, high: int, floor: int) -> None:
    if not (isinstance(low, int) and isinstance(high, int) and floor <= low <= high):
        raise ValueError(f"{strategy}: min_{name}/max_{name}: expected {floor} <= min <= max, got {low!r} and {high!r}")


@st.composite
def layer_specs(
    draw: st.DrawFn,
    *,
    min_width: int = 1,
    max_width: int = 6,
    activations: Sequence[str] = HIDDEN_ACTIVATIONS,
    bias_modes: Sequence[str] = BIAS_MODES,
) -> LayerSpec:
    """One hidden layer: ``min_width…max_width`` units, an activation and a bias mode."""
    _bounds("layer_specs", "width", min_width, max_width, 1)
    activations = _choices("layer_specs", "activations", activations, HIDDEN_ACTIVATIONS)
    bias_modes = _choices("layer_specs", "bias_modes", bias_modes, BIAS_MODES)
    activation = draw(st.sampled_from(activations))
    slope = draw(st.sampled_from([0.01, 0.2])) if activation == "leaky_relu" else 0.01
    return LayerSpec(
        units=draw(st.integers(min_width, max_width)),
        activation=activation,
        bias=draw(st.sampled_from(list(bias_modes))),
        negative_slope=slope,
    )


@st.composite
def network_specs(
    draw: st.DrawFn,
    *,
    min_depth: int = 1,
    max_depth: int = 4,
    min_width: int = 1,
    max_width: int = 6,
    min_inputs: int = 1,
    max_inputs: int = 5,
    activations: Sequence[str] = HIDDEN_ACTIVATIONS,
    bias_modes: Sequence[str] = BIAS_MODES,
    layouts: Sequence[str] = LAYOUTS,
    losses: Sequence[str] = LOSSES,
    reductions: Sequence[str] = REDUCTIONS,
    l2: bool = True,
    dtype: str = "float64",
) -> NetworkSpec:
    """A valid :class:`NetworkSpec` of ``min_depth…max_depth`` layers.

    Layers have ``min_width…max_width`` units (softmax outputs at least 2), the input ``min_inputs…max_inputs``
    features; ``activations``, ``bias_modes``, ``layouts``, ``losses`` and ``reductions``
    list the choices (names as in :mod:`refbp.spec`); ``l2=False`` leaves out the L2
    penalty. The output layer's activation is chosen to fit the loss: ``softmax`` for softmax
    cross-entropy, ``sigmoid`` for binary cross-entropy, and any activation (softmax
    included) for the squared losses. Softmax outputs get at least two units.
    """
    where = "network_specs"
    for name, low, high in (("depth", min_depth, max_depth), ("width", min_width, max_width)):
        _bounds(where, name, low, high, 1)
    _bounds(where, "inputs", min_inputs, max_inputs, 1)
    activations = _choices(where, "activations", activations, HIDDEN_ACTIVATIONS)
    bias_modes = _choices(where, "bias_modes", bias_modes, BIAS_MODES)
    layouts = _choices(where, "layouts", layouts, LAYOUTS)
    losses = _choices(where, "losses", losses, LOSSES)
    reductions = _choices(where, "reductions", reductions, REDUCTIONS)
    depth = draw(st.integers(min_depth, max_depth))
    hidden = [
        draw(layer_specs(min_width=min_width, max_width=max_width, activations=activations, bias_modes=bias_modes))
        for _ in range(depth - 1)
    ]
    kind = draw(st.sampled_from(list(losses)))
    if kind == "softmax_cross_entropy":
        out_activation = "softmax"
    elif kind == "binary_cross_entropy":
        out_activation = "sigmoid"
    else:
        out_activation = draw(st.sampled_from([*activations, "softmax"]))
    min_out = 2 if out_activation == "softmax" else 1
    output = LayerSpec(
        units=draw(st.integers(max(min_out, min_width), max(min_out, max_width))),
        activation=out_activation,
        bias=draw(st.sampled_from(list(bias_modes))),
        negative_slope=draw(st.sampled_from([0.01, 0.2])) if out_activation == "leaky_relu" else 0.01,
    )
    targets = draw(st.sampled_from(["dense", "index"])) if kind == "softmax_cross_entropy" else "dense"
    penalty = L2Spec()
    if l2 and draw(st.booleans()):
        penalty = L2Spec(lam=draw(st.sampled_from([0.1, 0.01, 1.0])), include_bias=draw(st.booleans()))
    return NetworkSpec(
        inputs=draw(st.integers(min_inputs, max_inputs)),
        layers=(*hidden, output),
        layout=draw(st.sampled_from(list(layouts))),
        loss=LossSpec(kind=kind, reduction=draw(st.sampled_from(list(reductions))), targets=targets),
        l2=penalty,
        dtype=dtype,
    )


@st.composite
def cases(
    draw: st.DrawFn,
    specs: st.SearchStrategy[NetworkSpec] | None = None,
    *,
    max_batch: int = 4,
    dtype: str = "float64",
    **spec_bounds,
) -> Case:
    """A :class:`Case`: a spec (``specs`` or :func:`network_specs` with ``spec_bounds``), a batch size, a seed."""
    spec = draw(specs if specs is not None else network_specs(dtype=dtype, **spec_bounds))
    return Case(spec=spec, batch=draw(st.integers(1, max_batch)), seed=draw(st.integers(0, 2**16)))


def _values(dtype: str, min_value: float, max_value: float) -> st.SearchStrategy[float]:
    """Finite floats in ``[min_value, max_value]`` that ``dtype`` holds exactly."""
    if not min_value <= max_value:
        raise ValueError(f"min_value {min_value} > max_value {max_value}")
    if dtype == "float64":
        return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    low, high = np.float32(min_value), np.float32(max_value)
    low = low if low >= min_value else np.nextafter(low, np.float32(np.inf))
    high = high if high <= max_value else np.nextafter(high, np.float32(-np.inf))
    return st.floats(float(low), float(high), width=32, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def parameters(
    draw: st.DrawFn, spec: NetworkSpec, *, min_value: float = -1.0, max_value: float = 1.0
) -> dict[str, np.ndarray]:
    """Parameters of ``spec``: ``{"W1": …, "b1": …}`` shaped by ``spec.parameter_shapes()``, in ``spec.dtype``.

    ``W_l`` is ``(n_{l-1}, n_l)`` for layout ``in_out`` and ``(n_l, n_{l-1})`` for ``out_in``;
    ``b_l`` is ``(n_l,)`` for a ``per_unit`` bias, ``(1,)`` for a ``shared`` one, and absent
    for ``none``. Every entry lies in ``[min_value, max_value]`` (for ``float32``, the
    nearest ``float32`` values inside the bounds).
    """
    values = _values(spec.dtype, min_value, max_value)
    return {name: draw(arrays(spec.dtype, shape, elements=values)) for name, shape in spec.parameter_shapes().items()}


@st.composite
def batches(
    draw: st.DrawFn,
    spec: NetworkSpec,
    *,
    min_batch: int = 1,
    max_batch: int = 4,
    min_value: float = -2.0,
    max_value: float = 2.0,
    soft_targets: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """A batch ``(X, T)`` for ``spec`` of ``min_batch…max_batch`` examples.

    ``X`` has shape ``spec.input_shape(N)`` (``(N, d)`` for ``in_out``, ``(d, N)`` for
    ``out_in``), entries in ``[min_value, max_value]``. ``T`` fits the loss: labels
    ``0…outputs-1`` of shape ``(N,)`` for index targets; otherwise the shape
    ``spec.target_shape(N)`` with entries in ``[0, 1]`` for binary cross-entropy, one-hot
    rows for dense softmax cross-entropy (or, when ``soft_targets``, possibly soft targets
    in ``[0, 1]`` that need not sum to 1), and ``[min_value, max_value]`` for the squared losses.
    """
    batch = draw(st.integers(min_batch, max_batch))
    X = draw(arrays(spec.dtype, spec.input_shape(batch), elements=_values(spec.dtype, min_value, max_value)))
    shape, kind = spec.target_shape(batch), spec.loss.kind
    if kind == "softmax_cross_entropy" and spec.loss.targets == "index":
        T = draw(arrays(np.int64, (batch,), elements=st.integers(0, spec.outputs - 1)))
    elif kind == "binary_cross_entropy" or (kind == "softmax_cross_entropy" and soft_targets and draw(st.booleans())):
        T = draw(arrays(spec.dtype, shape, elements=_values(spec.dtype, 0.0, 1.0)))
    elif kind == "softmax_cross_entropy":
        labels = draw(arrays(np.int64, (batch,), elements=st.integers(0, spec.outputs - 1)))
        one_hot = np.eye(spec.outputs, dtype=spec.dtype)[labels]
        T = one_hot if spec.layout == "in_out" else one_hot.T.copy()
    else:
        T = draw(arrays(spec.dtype, shape, elements=_values(spec.dtype, min_value, max_value)))
    return X, T


@st.composite
def backprop_inputs(
    draw: st.DrawFn,
    specs: st.SearchStrategy[NetworkSpec] | None = None,
    *,
    parameter_bounds: Mapping[str, float] | None = None,
    batch_bounds: Mapping[str, float | bool] | None = None,
    **spec_bounds,
) -> tuple[NetworkSpec, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """``(spec, params, X, T)``: a spec (``specs``, or :func:`network_specs` with ``spec_bounds``),
    its :func:`parameters` (``parameter_bounds`` as keyword arguments) and a :func:`batches`
    draw (``batch_bounds``)."""
    spec = draw(specs if specs is not None else network_specs(**spec_bounds))
    params = draw(parameters(spec, **(parameter_bounds or {})))
    X, T = draw(batches(spec, **(batch_bounds or {})))
    return spec, params, X, T
