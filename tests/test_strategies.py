"""The public hypothesis strategies: bounds as keyword arguments, shapes and values that fit the spec."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle.check import check_case
from oracle.strategies import backprop_inputs, batches, cases, layer_specs, network_specs, parameters
from oracle.supports import Supports
from refbp.errors import InputError
from refbp.spec import LayerSpec, LossSpec, NetworkSpec

FAST = settings(max_examples=40, deadline=None)


@FAST
@given(network_specs(min_depth=2, max_depth=3, min_width=3, max_width=4, min_inputs=2, max_inputs=2, l2=False))
def test_network_spec_bounds(spec: NetworkSpec) -> None:
    assert 2 <= spec.depth <= 3
    assert all(3 <= layer.units <= 4 for layer in spec.layers)
    assert spec.inputs == 2 and spec.l2.lam == 0.0


@FAST
@given(st.data())
def test_parameters_have_the_spec_shapes_dtype_and_bounds(data) -> None:
    spec = data.draw(network_specs(max_depth=3, dtype=data.draw(st.sampled_from(["float64", "float32"]))))
    params = data.draw(parameters(spec, min_value=-0.3, max_value=0.7))
    assert {name: p.shape for name, p in params.items()} == spec.parameter_shapes()
    for p in params.values():
        assert p.dtype == np.dtype(spec.dtype)
        assert p.min(initial=0.0) >= -0.3 and p.max(initial=0.0) <= 0.7


@FAST
@given(st.data())
def test_batches_fit_the_loss(data) -> None:
    spec = data.draw(network_specs(max_depth=2))
    X, T = data.draw(batches(spec, min_batch=2, max_batch=5, min_value=-0.5, max_value=0.5, soft_targets=False))
    batch = X.shape[spec.batch_axis]
    assert 2 <= batch <= 5 and X.shape == spec.input_shape(batch)
    assert np.abs(X).max() <= 0.5
    kind = spec.loss.kind
    if kind == "softmax_cross_entropy" and spec.loss.targets == "index":
        assert T.shape == (batch,) and T.dtype == np.int64
        assert T.min() >= 0 and T.max() < spec.outputs
        return
    assert T.shape == spec.target_shape(batch)
    if kind == "softmax_cross_entropy":  # one-hot: each example's targets are 0s and a single 1
        unit_axis = 1 - spec.batch_axis
        assert set(np.unique(T)) <= {0.0, 1.0} and np.all(T.sum(axis=unit_axis) == 1.0)
    elif kind == "binary_cross_entropy":
        assert T.min() >= 0.0 and T.max() <= 1.0
    else:
        assert np.abs(T).max() <= 0.5


@FAST
@given(parameters(NetworkSpec(inputs=2, layers=(LayerSpec(2),), dtype="float32"), min_value=0.1, max_value=0.3))
def test_float32_bounds_that_float32_cannot_hold_are_rounded_inward(params) -> None:
    for p in params.values():
        assert p.dtype == np.float32 and p.min() >= 0.1 and p.max() <= 0.3


@settings(max_examples=30, deadline=None)
@given(backprop_inputs(max_depth=3, activations=["sigmoid", "tanh"], batch_bounds={"max_batch": 3}))
def test_refbp_matches_the_torch_twin_on_drawn_inputs(inputs) -> None:
    spec, params, X, T = inputs
    result = check_case("drawn", spec, params, X, T, fd="off")
    assert result.passed, [r for r in result.rows if r.status != "ok"]


@FAST
@given(
    backprop_inputs(
        specs=st.just(
            NetworkSpec(
                inputs=3, layers=(LayerSpec(2, "softmax"),), loss=LossSpec("softmax_cross_entropy", targets="index")
            )
        )
    )
)
def test_backprop_inputs_with_a_fixed_spec(inputs) -> None:
    spec, params, X, T = inputs
    assert spec.inputs == 3 and X.shape[1] == 3 and set(params) == {"W1", "b1"}
    assert T.dtype == np.int64 and set(T) <= {0, 1}


@FAST
@given(cases(max_depth=2, max_batch=2))
def test_cases_still_draw_seeded_cases(case) -> None:
    assert case.spec.depth <= 2 and 1 <= case.batch <= 2 and case.seed >= 0


def user_backprop(spec: NetworkSpec, params, X, T) -> dict[str, np.ndarray]:
    """A user's implementation: refbp's parameter gradients, as a ``{"W1": …, "b1": …}`` dict."""
    from refbp.network import backprop

    return backprop(spec, params, X, T)[1].by_parameter()


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_a_user_style_given_test_with_the_three_strategies(bp_reference, data) -> None:
    """What a user writes: draw a network, its parameters and a batch, compare with the torch twin.

    ``bp_reference`` is the plugin's session-scoped fixture, which Hypothesis accepts in ``@given`` tests.
    """
    spec = data.draw(network_specs(max_depth=3, max_width=4, losses=["half_sse", "mse"], layouts=["out_in"]))
    params = data.draw(parameters(spec, min_value=-0.5, max_value=0.5))
    X, T = data.draw(batches(spec, max_batch=3))
    assert spec.layout == "out_in" and spec.loss.kind in ("half_sse", "mse") and spec.depth <= 3
    assert X.shape == (spec.inputs, X.shape[1]) and 1 <= X.shape[1] <= 3
    assert all(np.abs(p).max() <= 0.5 for p in params.values())
    _, expected = bp_reference.reference(spec, params, X, T)
    ours = user_backprop(spec, params, X, T)
    assert ours.keys() == expected.by_parameter().keys() == params.keys()
    for name, grad in ours.items():
        np.testing.assert_allclose(grad, expected.by_parameter()[name], rtol=1e-7, atol=1e-10, err_msg=name)


@pytest.mark.parametrize(
    ("strategy", "kwargs", "message"),
    [
        (network_specs, {"activations": []}, "network_specs: hidden_activations: expected a non-empty list from"),
        (network_specs, {"activations": ["relu6"]}, "got ['relu6']"),
        (network_specs, {"losses": ["hinge"]}, "network_specs: losses: expected a non-empty list from half_sse"),
        (network_specs, {"layouts": ()}, "network_specs: layouts: expected a non-empty list"),
        (network_specs, {"min_depth": 3, "max_depth": 2}, "network_specs: min_depth: expected at most max_depth = 2"),
        (network_specs, {"min_width": 0}, "network_specs: min_width: expected an integer from 1 to 256, got 0"),
        (network_specs, {"max_depth": -1}, "network_specs: max_depth: expected an integer from 1 to 32, got -1"),
        (network_specs, {"max_width": 10**5}, "network_specs: max_width: expected an integer from 1 to 256"),
        (network_specs, {"depth": 2}, "network_specs: depth: expected a bound of the random networks"),
        (network_specs, {"targets": ["labels"], "losses": ["binary_cross_entropy"]}, "targets: expected a form"),
        (cases, {"max_batch": 0}, "cases: max_batch: expected an integer from 1 to 256, got 0"),
        (cases, {"specs": [1]}, "cases: specs: expected a hypothesis strategy of NetworkSpec"),
        (
            backprop_inputs,
            {"batch_bounds": {"max_bach": 2}},
            "backprop_inputs: batch_bounds: expected a dict with keys",
        ),
        (layer_specs, {"bias_modes": ["both"]}, "layer_specs: bias_modes: expected a non-empty list"),
    ],
)
def test_bad_strategy_arguments_raise_an_input_error_naming_the_argument(strategy, kwargs: dict, message: str) -> None:
    """Raised when the strategy is built, before hypothesis draws anything (never hypothesis' InvalidArgument)."""
    with pytest.raises(InputError, match=re.escape(message)):
        strategy(**kwargs)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda spec: parameters(spec, min_value=1.0, max_value=0.0), "parameters: min_value: expected at most"),
        (lambda spec: parameters(spec, max_value=float("nan")), "parameters: max_value: expected a finite number"),
        (lambda spec: parameters("spec"), "parameters: spec: expected a NetworkSpec"),
        (lambda spec: batches(spec, min_batch=3, max_batch=2), "batches: min_batch: expected at most max_batch = 2"),
        (lambda spec: batches(spec, targets=["labels"]), "batches: targets: expected a form"),
    ],
)
def test_bad_parameter_and_batch_bounds_raise_an_input_error(call, message: str) -> None:
    spec = NetworkSpec(inputs=2, layers=(LayerSpec(2, "softmax"),), loss=LossSpec("softmax_cross_entropy"))
    with pytest.raises(InputError, match=re.escape(message)):
        call(spec)


NARROW = Supports(
    layouts=["out_in"],
    hidden_activations=["tanh"],
    output_activations=["sigmoid"],
    losses=["half_sse", "softmax_cross_entropy"],
    reductions=["mean"],
    targets=["soft"],
    bias_modes=["per_unit"],
    l2=["weights"],
    dtypes=["float32"],
    max_depth=3,
    min_width=2,
    max_width=3,
    max_batch=2,
)


@FAST
@given(cases(supports=NARROW))
def test_every_drawn_case_lies_inside_the_support_declaration(case) -> None:
    spec = case.spec
    assert NARROW.covers(spec) == ""
    assert spec.layout == "out_in" and spec.dtype == "float32" and spec.loss.reduction == "mean"
    assert spec.l2.lam > 0 and not spec.l2.include_bias and 1 <= case.batch <= 2
    assert all(layer.activation == "tanh" for layer in spec.layers[:-1])
    expected_out = "softmax" if spec.loss.kind == "softmax_cross_entropy" else "sigmoid"
    assert spec.layers[-1].activation == expected_out
    if spec.loss.kind == "softmax_cross_entropy":
        assert spec.loss.targets == "dense" and case.targets == "soft"
        T = case.materialize().T
        assert not np.allclose(T.sum(axis=0), 1.0)  # soft targets, whatever the seed's parity


@FAST
@given(network_specs(activations=["sigmoid"], losses=["half_sse", "mse"]))
def test_activations_restrict_the_output_layer_too(spec) -> None:
    """``activations=["sigmoid"]`` once left a squared loss with softmax outputs."""
    assert {layer.activation for layer in spec.layers} == {"sigmoid"}


@FAST
@given(cases(supports={"losses": ["softmax_cross_entropy"], "targets": ["one_hot"]}))
def test_one_hot_targets_on_every_seed(case) -> None:
    T = case.materialize().T
    assert set(np.unique(T)) <= {0.0, 1.0}
    assert np.all(T.sum(axis=1 - case.spec.batch_axis) == 1.0)


@FAST
@given(cases(network_specs(max_depth=4), max_depth=1, dtype="float32"))
def test_specs_and_bounds_apply_together(case) -> None:
    """``specs=`` with ``max_depth=1`` once ignored the bound and drew depths 1 to 4."""
    assert case.spec.depth == 1 and case.spec.dtype == "float32"


def test_bounds_outside_a_declaration_are_refused() -> None:
    with pytest.raises(InputError, match=re.escape("network_specs: activations: expected names the support")):
        network_specs(NARROW, activations=["relu"])
    with pytest.raises(InputError, match=re.escape("min_depth/max_depth: expected a range meeting the declared 1…3")):
        network_specs(NARROW, min_depth=4)
    with pytest.raises(InputError, match=re.escape("network_specs: dtype: expected names the support declaration")):
        network_specs(NARROW, dtype="float64")
    with pytest.raises(InputError, match="supports: l2_bias: expected a support field"):
        Supports.from_mapping({"l2_bias": True})


def test_a_declaration_loads_from_toml(tmp_path) -> None:
    path = tmp_path / "supports.toml"
    path.write_text('layouts = ["in_out"]\nlosses = ["mse"]\nmax_depth = 2\n', encoding="utf-8")
    declared = Supports.load(path)
    assert declared.layouts == ("in_out",) and declared.losses == ("mse",) and declared.max_depth == 2
    path.write_text('layouts = ["sideways"]\n', encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{path}: layouts: expected a non-empty list from in_out, out_in")):
        Supports.load(path)
