"""Public hypothesis strategies for network specs and test cases.

Use them in your own ``@given`` tests::

    from hypothesis import given
    from oracle.strategies import cases

    @given(cases(max_depth=3))
    def test_my_backprop(case):
        data = case.materialize()
        ...

Every strategy shrinks toward the simplest network: fewer layers, narrower layers,
``identity``/``sigmoid`` before the others, ``in_out`` before ``out_in``, ``half_sse``
before the other losses, batch 1, seed 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

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

HIDDEN_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "softmax")


@st.composite
def layer_specs(
    draw: st.DrawFn,
    *,
    max_width: int = 6,
    activations: Sequence[str] = HIDDEN_ACTIVATIONS,
    bias_modes: Sequence[str] = BIAS_MODES,
) -> LayerSpec:
    """One hidden layer: 1…``max_width`` units, an activation and a bias mode."""
    activation = draw(st.sampled_from(list(activations)))
    slope = draw(st.sampled_from([0.01, 0.2])) if activation == "leaky_relu" else 0.01
    return LayerSpec(
        units=draw(st.integers(1, max_width)),
        activation=activation,
        bias=draw(st.sampled_from(list(bias_modes))),
        negative_slope=slope,
    )


@st.composite
def network_specs(
    draw: st.DrawFn,
    *,
    max_depth: int = 4,
    max_width: int = 6,
    max_inputs: int = 5,
    activations: Sequence[str] = HIDDEN_ACTIVATIONS,
    bias_modes: Sequence[str] = BIAS_MODES,
    layouts: Sequence[str] = LAYOUTS,
    losses: Sequence[str] = LOSSES,
    reductions: Sequence[str] = REDUCTIONS,
    l2: bool = True,
    dtype: str = "float64",
) -> NetworkSpec:
    """A valid :class:`NetworkSpec` of 1…``max_depth`` layers.

    The output layer's activation is chosen to fit the loss: ``softmax`` for softmax
    cross-entropy, ``sigmoid`` for binary cross-entropy, and any activation (softmax
    included) for the squared losses. Softmax outputs get at least two units.
    """
    depth = draw(st.integers(1, max_depth))
    hidden = [
        draw(layer_specs(max_width=max_width, activations=activations, bias_modes=bias_modes)) for _ in range(depth - 1)
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
        units=draw(st.integers(min_out, max(min_out, max_width))),
        activation=out_activation,
        bias=draw(st.sampled_from(list(bias_modes))),
        negative_slope=draw(st.sampled_from([0.01, 0.2])) if out_activation == "leaky_relu" else 0.01,
    )
    targets = draw(st.sampled_from(["dense", "index"])) if kind == "softmax_cross_entropy" else "dense"
    penalty = L2Spec()
    if l2 and draw(st.booleans()):
        penalty = L2Spec(lam=draw(st.sampled_from([0.1, 0.01, 1.0])), include_bias=draw(st.booleans()))
    return NetworkSpec(
        inputs=draw(st.integers(1, max_inputs)),
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
