"""Parameters: seeded initialisation, shapes, dtype, and validation of explicit values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refbp.errors import InputError
from refbp.params import canonical_name, copy_parameters, init_parameters, load_parameters
from refbp.spec import LayerSpec, NetworkSpec

SPEC = NetworkSpec(
    inputs=3,
    layers=(LayerSpec(4, "tanh", "per_unit"), LayerSpec(2, "relu", "shared"), LayerSpec(1, "identity", "none")),
)
# Written out by hand from the layout rules: in_out W is (n_in, n_out), out_in W is (n_out, n_in).
SHAPES = {
    "in_out": {"W1": (3, 4), "b1": (4,), "W2": (4, 2), "b2": (1,), "W3": (2, 1)},
    "out_in": {"W1": (4, 3), "b1": (4,), "W2": (2, 4), "b2": (1,), "W3": (1, 2)},
}


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_init_has_the_shapes_names_and_dtype_of_the_spec(layout: str, dtype: str) -> None:
    spec = SPEC.replace(layout=layout, dtype=dtype)
    params = init_parameters(spec, seed=0)
    assert list(params) == ["W1", "b1", "W2", "b2", "W3"]
    assert {name: value.shape for name, value in params.items()} == SHAPES[layout]
    assert {value.dtype for value in params.values()} == {np.dtype(dtype)}


@pytest.mark.parametrize("scheme", ["xavier", "he", "normal"])
def test_init_is_seeded(scheme: str) -> None:
    first = init_parameters(SPEC, seed=42, scheme=scheme)
    again = init_parameters(SPEC, seed=42, scheme=scheme)
    other = init_parameters(SPEC, seed=43, scheme=scheme)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
        assert not np.array_equal(first[name], other[name]), name
        assert np.all(first[name] != 0)


@pytest.mark.parametrize(
    ("scheme", "std"),
    [("xavier", math.sqrt(2 / (400 + 600))), ("he", math.sqrt(2 / 400)), ("normal", 1.0)],
)
def test_init_scale_follows_the_scheme(scheme: str, std: float) -> None:
    spec = NetworkSpec(inputs=400, layers=(LayerSpec(600),))
    params = init_parameters(spec, seed=7, scheme=scheme)
    # 240 000 draws: the sample std is within ~0.3 % of the truth; 2 % leaves a wide margin.
    assert params["W1"].std() == pytest.approx(std, rel=0.02)
    assert abs(params["W1"].mean()) < 0.01 * std
    assert params["b1"].std() == pytest.approx(0.1, rel=0.15)  # 600 draws of N(0, 0.1²)


def test_init_rejects_an_unknown_scheme() -> None:
    with pytest.raises(InputError, match=r"^spec: scheme: expected one of xavier, he, normal, got 'uniform'$"):
        init_parameters(SPEC, scheme="uniform")


VALUES = {
    "W1": [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 1.0, 1.1, 1.2]],
    "b1": [0.0, 0.1, 0.2, 0.3],
    "W2": [[1.0, -1.0], [2.0, -2.0], [3.0, -3.0], [4.0, -4.0]],
    "b2": 0.5,  # a shared bias may be a plain number
    "W3": [[0.25], [-0.75]],
}


def test_load_accepts_lists_and_a_scalar_shared_bias() -> None:
    params = load_parameters(SPEC, VALUES)
    assert list(params) == ["W1", "b1", "W2", "b2", "W3"]
    assert params["b2"].shape == (1,)
    assert params["b2"].tolist() == [0.5]
    assert params["W3"].tolist() == [[0.25], [-0.75]]
    assert params["W1"][2, 3] == 1.2


def test_load_accepts_dotted_aliases() -> None:
    dotted = {f"layer{name[1]}.{name[0]}": value for name, value in VALUES.items()}
    assert "layer1.W" in dotted
    params = load_parameters(SPEC, dotted)
    assert list(params) == ["W1", "b1", "W2", "b2", "W3"]
    assert params["W2"].tolist() == VALUES["W2"]
    assert canonical_name("layer12.b") == "b12"
    assert canonical_name("W3") == "W3"
    assert canonical_name("layer1.w") == "layer1.w"  # not an alias: stays unknown


def test_load_converts_to_the_spec_dtype() -> None:
    params = load_parameters(SPEC.replace(dtype="float32"), VALUES)
    assert {value.dtype for value in params.values()} == {np.dtype(np.float32)}
    assert params["W1"][0, 0] == np.float32(0.1)


def one_line_error(spec: NetworkSpec, values: dict, source: str = "parameters") -> str:
    with pytest.raises(InputError) as info:
        load_parameters(spec, values, source=source)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_load_rejects_a_missing_parameter() -> None:
    values = {k: v for k, v in VALUES.items() if k != "b1"}
    assert one_line_error(SPEC, values) == "parameters: b1: expected an array of shape (4,), got 'missing'"


def test_load_rejects_an_unknown_parameter() -> None:
    message = one_line_error(SPEC, {**VALUES, "b3": [1.0]}, source="p.json")
    assert message == "p.json: b3: expected a parameter of the spec (W1, b1, W2, b2, W3), got 'unknown name'"


def test_load_rejects_an_unknown_dotted_name() -> None:
    message = one_line_error(SPEC, {**VALUES, "layer4.W": [[1.0]]})
    assert message.startswith("parameters: W4: expected a parameter of the spec")


@pytest.mark.parametrize(
    ("name", "value", "expected", "got"),
    [
        ("W1", [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], "shape (3, 4)", "shape (2, 3)"),
        ("b1", [0.0, 0.1], "shape (4,)", "shape (2,)"),
        ("b2", [0.5, 0.5], "shape (1,)", "shape (2,)"),
        ("W3", [0.25, -0.75], "shape (2, 1)", "shape (2,)"),
    ],
)
def test_load_rejects_a_wrong_shape(name: str, value: list, expected: str, got: str) -> None:
    message = one_line_error(SPEC, {**VALUES, name: value})
    assert message == f"parameters: {name}: expected {expected}, got '{got}'"


def test_load_rejects_non_numbers_and_non_finite_values() -> None:
    assert one_line_error(SPEC, {**VALUES, "b1": ["a", 1, 2, 3]}).startswith("parameters: b1: expected numbers")
    nan = one_line_error(SPEC, {**VALUES, "b1": [0.0, float("nan"), 0.0, 0.0]})
    assert nan == "parameters: b1: expected finite numbers, got 'NaN or infinity'"


def test_copy_parameters_is_deep() -> None:
    params = load_parameters(SPEC, VALUES)
    copied = copy_parameters(params)
    copied["W1"][0, 0] = 99.0
    assert params["W1"][0, 0] == 0.1
