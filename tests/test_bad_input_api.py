"""The Python API on bad arguments: one refbp.InputError naming the field, never a silent wrong answer."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pytest

from oracle.check import check_case
from oracle.gate import Adapter
from refbp import (
    InputError,
    L2Spec,
    LayerSpec,
    LossSpec,
    NetworkSpec,
    backprop,
    fit,
    forward,
    init_parameters,
    load_parameters,
)
from refbp.network import textbook_backprop
from refbp.real_arrays import real_array

SPEC = NetworkSpec(inputs=3, layers=(LayerSpec(2, "sigmoid"), LayerSpec(2, "identity")))
PARAMS = {
    "W1": [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]],
    "b1": [0.5, -0.5],
    "W2": [[0.7, 0.8], [0.9, 0.1]],
    "b2": [0.0, 0.25],
}
X = [[1.0, 4.0, 5.0]]
T = [[0.1, 0.05]]


def _error(call) -> str:
    with pytest.raises(InputError) as info:
        call()
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: NetworkSpec(inputs=2, layers=5), "spec: layers: expected a list of LayerSpec, got 5"),
        (
            lambda: NetworkSpec(inputs=2, layers=[LayerSpec(1)], loss="x"),
            "spec: loss: expected a LossSpec or a table of its fields, got 'x'",
        ),
        (
            lambda: NetworkSpec(inputs=2, layers=[LayerSpec(1)], l2=0.1),
            "spec: l2: expected a L2Spec or a table of its fields, got 0.1",
        ),
        (lambda: NetworkSpec(inputs="2", layers=[LayerSpec(1)]), "spec: inputs: expected a positive integer, got '2'"),
        (
            lambda: NetworkSpec(inputs=2, layers=["relu"]),
            "spec: layers[0]: expected a LayerSpec or a table of its fields, got 'relu'",
        ),
        (
            lambda: NetworkSpec(inputs=2, layers=[{"units": 2, "activation": "relu6"}]),
            "spec: layers[0].activation: expected one of identity, sigmoid, tanh, relu, leaky_relu, softmax, got",
        ),
        (lambda: LayerSpec(2.5), "spec: LayerSpec.units: expected a positive integer, got 2.5"),
        (lambda: LayerSpec(True), "spec: LayerSpec.units: expected a positive integer, got True"),
        (lambda: LayerSpec(2, "leaky_relu", negative_slope=math.nan), "spec: LayerSpec.negative_slope: expected a"),
        (lambda: LayerSpec(2, "leaky_relu", negative_slope=math.inf), "spec: LayerSpec.negative_slope: expected a"),
        (lambda: LossSpec(kind="hinge"), "spec: LossSpec.kind: expected one of half_sse"),
        (lambda: L2Spec(lam=math.nan), "spec: L2Spec.lam: expected a finite number, got nan"),
        (lambda: L2Spec(lam=math.inf), "spec: L2Spec.lam: expected a finite number, got inf"),
        (lambda: L2Spec(0.1, include_bias="no"), "spec: L2Spec.include_bias: expected true or false, got 'no'"),
        (lambda: L2Spec(0.1, include_bias=1), "spec: L2Spec.include_bias: expected true or false, got 1"),
        (
            lambda: NetworkSpec.from_dict({"inputs": 2, "layers": [{"units": 1}], "l2": {"include_bias": "no"}}),
            "spec: l2.include_bias: expected true or false, got 'no'",
        ),
        (
            lambda: NetworkSpec.from_dict({"inputs": 2, "layers": [{"units": 1}], "l2": {"lambda": math.nan}}),
            "spec: l2.lambda: expected a finite number, got nan",
        ),
    ],
)
def test_bad_spec_arguments_name_the_field(call, message):
    assert _error(call).startswith(message)


def test_numpy_scalars_are_numbers():
    spec = NetworkSpec(
        inputs=np.int64(3),
        layers=[LayerSpec(np.int32(2), "leaky_relu", negative_slope=np.float32(0.5)), {"units": np.uint8(1)}],
        l2=L2Spec(np.float64(0.1), include_bias=np.bool_(True)),
    )
    assert spec.widths == (3, 2, 1) and type(spec.inputs) is int and type(spec.layers[0].units) is int
    assert spec.layers[0].negative_slope == 0.5 and spec.l2.include_bias is True
    assert spec.to_json() == NetworkSpec.from_json(spec.to_json()).to_json()
    result = fit(
        spec, init_parameters(spec, seed=np.int64(1)), [[1.0, 2.0, 3.0]], [[0.5]], lr=np.float32(0.1), steps=np.int64(2)
    )
    assert len(result.losses) == 3 and result.losses[-1] < result.losses[0]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {**PARAMS, "W1": np.array(PARAMS["W1"]) + 1j},
            "W1: expected numbers in an array of shape (3, 2), got 'complex numbers'",
        ),
        ({**PARAMS, "W1": [["0.1", "0.2"], ["0.3", "0.4"], ["0.5", "0.6"]]}, "got 'strings'"),
        ({**PARAMS, "b1": [True, False]}, "b1: expected numbers in an array of shape (2,), got 'booleans'"),
        ({**PARAMS, "b1": np.array([0.5, None], dtype=object)}, "got 'Python objects (not plain numbers)'"),
        ({**PARAMS, "b1": np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]")}, "got 'dates'"),
        ({**PARAMS, "b1": [0.5, [1.0]]}, "got 'values that do not form a rectangular array'"),
        ({**PARAMS, "b2": [math.inf, 0.0]}, "b2: expected finite numbers, got 'NaN or infinity'"),
        ({k: v for k, v in PARAMS.items() if k != "b2"}, "b2: expected an array of shape (2,), got 'missing'"),
        ({**PARAMS, 3: [1.0]}, "parameters: 3: expected parameter names as strings"),
    ],
)
def test_load_parameters_refuses_what_is_not_real_numbers(values, message):
    assert message in _error(lambda: load_parameters(SPEC, values))


def test_nan_parameters_are_refused_unless_allowed():
    params = {k: np.array(v, dtype=float) for k, v in PARAMS.items()}
    params["W2"][0, 0] = np.nan
    assert _error(lambda: backprop(SPEC, params, X, T)) == "params: W2: expected finite numbers, got 'NaN or infinity'"
    assert _error(lambda: forward(SPEC, params, X)) == "params: W2: expected finite numbers, got 'NaN or infinity'"
    trace, _ = backprop(SPEC, params, X, T, allow_nonfinite=True)
    assert np.isnan(trace.layers[1].a[0, 0]) and np.isnan(trace.loss)
    assert np.isnan(load_parameters(SPEC, params, allow_nonfinite=True)["W2"][0, 0])
    X_inf = [[1.0, math.inf, 5.0]]
    assert _error(lambda: backprop(SPEC, load_parameters(SPEC, PARAMS), X_inf, T)) == (
        "inputs: X: expected finite numbers, got 'NaN or infinity'"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (SPEC, {k: v for k, v in PARAMS.items() if k != "W2"}, X, T),
            "params: W2: expected an array of shape (2, 2), got 'missing'",
        ),
        ((SPEC, [1, 2], X, T), "params: expected a mapping {W1: ..., b1: ...}, got 'list'"),
        ((SPEC.to_dict(), PARAMS, X, T), "spec: spec: expected a NetworkSpec"),
        ((SPEC, PARAMS, [["1", "4", "5"]], T), "inputs: X: expected numbers, got 'strings'"),
        ((SPEC, PARAMS, np.array([[1, 4, 5]]) + 0j, T), "inputs: X: expected numbers, got 'complex numbers'"),
        ((SPEC, PARAMS, X, [[datetime.date(2020, 1, 1), 0.0]]), "targets: T: expected numbers, got 'Python objects"),
        (
            (SPEC, {**PARAMS, "W1": [["a", "b"]] * 3}, X, T),
            "params: W1: expected numbers in an array of shape (3, 2), got 'strings'",
        ),
    ],
)
def test_backprop_names_the_bad_argument(args, message):
    assert _error(lambda: backprop(*args)).startswith(message)
    assert _error(lambda: textbook_backprop(*args)).startswith(message)


def test_string_index_labels_say_strings_not_a_shape_riddle():
    spec = NetworkSpec(
        inputs=2, layers=[LayerSpec(3, "softmax")], loss=LossSpec("softmax_cross_entropy", targets="index")
    )
    params = init_parameters(spec)
    message = _error(lambda: backprop(spec, params, [[1.0, 2.0], [3.0, 4.0]], ["0", "1"]))
    assert message == "targets: T: expected integer labels of shape (2,), got 'strings'"
    assert backprop(spec, params, [[1.0, 2.0], [3.0, 4.0]], np.array([0, 2], dtype=np.int16))[0].loss > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.1, "steps": 2.5}, "spec: steps: expected a number of steps >= 0, got 2.5"),
        ({"lr": 0.1, "steps": "3"}, "spec: steps: expected a number of steps >= 0, got '3'"),
        ({"lr": 0.1, "steps": -1}, "spec: steps: expected a number of steps >= 0, got -1"),
        ({"lr": "0.1", "steps": 3}, "spec: lr: expected a learning rate > 0, got '0.1'"),
        ({"lr": math.inf, "steps": 3}, "spec: lr: expected a learning rate > 0, got inf"),
    ],
)
def test_fit_names_the_bad_argument(kwargs, message):
    assert _error(lambda: fit(SPEC, load_parameters(SPEC, PARAMS), X, T, **kwargs)) == message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((SPEC, 0, "uniform"), "spec: scheme: expected one of xavier, he, normal, got 'uniform'"),
        ((SPEC, -1), "spec: seed: expected a seed >= 0, got -1"),
        ((SPEC, "0"), "spec: seed: expected a seed >= 0, got '0'"),
        (({"inputs": 2}, 0), "init_parameters: spec: expected a NetworkSpec or SequentialSpec, got 'dict'"),
    ],
)
def test_init_parameters_names_the_bad_argument(args, message):
    assert _error(lambda: init_parameters(*args)) == message


def test_real_array_keeps_integers_and_converts_on_request():
    assert real_array([1, 2], "x").dtype.kind == "i"
    assert real_array([1, 2], "x", dtype="float32").dtype == np.float32
    assert (
        _error(lambda: real_array([1e300], "x", dtype="float32"))
        == "spec: x: expected finite numbers, got 'NaN or infinity'"
    )


def _complex_gradients(spec, params, X, T):
    _, grads = backprop(spec, params, X, T)
    return {name: value + 1e-3j for name, value in grads.by_parameter().items()}


def test_an_implementation_returning_complex_gradients_fails_the_check():
    spec = NetworkSpec(inputs=2, layers=[LayerSpec(2, "tanh"), LayerSpec(1)])
    params = init_parameters(spec, seed=3)
    X_, T_ = np.array([[0.5, -1.0]]), np.array([[0.25]])
    result = check_case("c1", spec, params, X_, T_, impl=_complex_gradients, impl_name="impl", fd="off")
    assert not result.passed and result.first.status == "error"
    assert result.first.message == "ValueError: dL/dW of layer 1: expected real numbers, got complex numbers"
    adapted = Adapter(_complex_gradients, provides={"dL/dW"})
    assert not check_case("c1", spec, params, X_, T_, impl=adapted, impl_name="impl", fd="off").passed
