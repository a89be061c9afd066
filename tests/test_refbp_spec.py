"""NetworkSpec: shapes, JSON/TOML round trips, and one-line errors that name the field."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from refbp.errors import InputError
from refbp.spec import L2Spec, LayerSpec, LossSpec, NetworkSpec

RICH = NetworkSpec(
    inputs=3,
    layers=(
        LayerSpec(5, "leaky_relu", "shared", negative_slope=0.25),
        LayerSpec(4, "tanh", "none"),
        LayerSpec(3, "softmax", "per_unit"),
    ),
    layout="out_in",
    loss=LossSpec("softmax_cross_entropy", "mean", "index"),
    l2=L2Spec(0.125, include_bias=True),
    dtype="float32",
)

VALID: dict[str, Any] = {
    "inputs": 3,
    "layout": "in_out",
    "dtype": "float64",
    "layers": [
        {"units": 2, "activation": "sigmoid", "bias": "shared"},
        {"units": 2, "activation": "sigmoid", "bias": "shared"},
    ],
    "loss": {"kind": "half_sse", "reduction": "sum"},
    "l2": {"lambda": 0.0, "include_bias": False},
}

CASE1_TOML = """
inputs = 3
layout = "in_out"
dtype = "float64"

[[layers]]
units = 2
activation = "sigmoid"
bias = "shared"

[[layers]]
units = 2
activation = "sigmoid"
bias = "shared"

[loss]
kind = "half_sse"
reduction = "sum"

[l2]
lambda = 0.0
include_bias = false
"""


def test_shapes_follow_the_layout() -> None:
    assert RICH.widths == (3, 5, 4, 3)
    assert RICH.parameter_shapes() == {"W1": (5, 3), "b1": (1,), "W2": (4, 5), "W3": (3, 4), "b3": (3,)}
    in_out = RICH.replace(layout="in_out")
    assert in_out.parameter_shapes() == {"W1": (3, 5), "b1": (1,), "W2": (5, 4), "W3": (4, 3), "b3": (3,)}
    assert RICH.input_shape(7) == (3, 7)
    assert in_out.input_shape(7) == (7, 3)
    assert RICH.target_shape(7) == (7,)  # index labels
    assert RICH.n_parameters == 15 + 1 + 20 + 12 + 3
    assert (RICH.batch_axis, in_out.batch_axis) == (1, 0)


def test_json_round_trip_and_wire_format() -> None:
    text = RICH.to_json()
    assert NetworkSpec.from_json(text) == RICH
    data = json.loads(text)
    assert data["l2"] == {"lambda": 0.125, "include_bias": True}
    assert data["layers"][0] == {"units": 5, "activation": "leaky_relu", "bias": "shared", "negative_slope": 0.25}
    assert data["layers"][1] == {"units": 4, "activation": "tanh", "bias": "none"}
    assert data["loss"] == {"kind": "softmax_cross_entropy", "reduction": "mean", "targets": "index"}


def test_toml_round_trip_and_wire_format() -> None:
    text = RICH.to_toml()
    assert NetworkSpec.from_toml(text) == RICH
    data = tomllib.loads(text)
    assert data["layout"] == "out_in"
    assert data["dtype"] == "float32"
    assert [layer["units"] for layer in data["layers"]] == [5, 4, 3]


def test_the_readme_toml_describes_case_1() -> None:
    spec = NetworkSpec.from_toml(CASE1_TOML)
    assert spec == NetworkSpec(3, (LayerSpec(2, "sigmoid", "shared"), LayerSpec(2, "sigmoid", "shared")))
    assert spec.parameter_shapes() == {"W1": (3, 2), "b1": (1,), "W2": (2, 2), "b2": (1,)}


def test_defaults_fill_missing_optional_fields() -> None:
    spec = NetworkSpec.from_dict({"inputs": 2, "layers": [{"units": 1}]})
    assert spec.layout == "in_out"
    assert spec.dtype == "float64"
    assert spec.layers[0] == LayerSpec(1, "identity", "per_unit", 0.01)
    assert spec.loss == LossSpec("half_sse", "sum", "dense")
    assert spec.l2 == L2Spec(0.0, False)


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_save_and_load_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"net{suffix}"
    RICH.save(path)
    assert NetworkSpec.load(path) == RICH
    text = path.read_text(encoding="utf-8")
    parsed = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    assert parsed == RICH.to_dict()


DELETE = object()


def with_changes(*changes: tuple[tuple[Any, ...], Any]) -> dict[str, Any]:
    """A copy of :data:`VALID` with ``(path, value)`` changes applied (``DELETE`` removes the key)."""
    data = copy.deepcopy(VALID)
    for path, value in changes:
        target = data
        for key in path[:-1]:
            target = target[key]
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return data


# name: (changes, field named in the message, words from the allowed values)
INVALID: dict[str, tuple[list[tuple[tuple[Any, ...], Any]], str, str]] = {
    "unknown activation": ([(("layers", 0, "activation"), "swish")], "layers[0].activation", "identity, sigmoid, tanh"),
    "softmax on a hidden layer": (
        [(("layers", 0, "activation"), "softmax")],
        "layers[0].activation",
        "softmax on the output layer only",
    ),
    "CE without softmax output": (
        [(("loss", "kind"), "softmax_cross_entropy")],
        "layers[1].activation",
        "softmax (required by loss softmax_cross_entropy)",
    ),
    "BCE without sigmoid output": (
        [(("loss", "kind"), "binary_cross_entropy"), (("layers", 1, "activation"), "tanh")],
        "layers[1].activation",
        "sigmoid (required by loss binary_cross_entropy)",
    ),
    "index targets without CE": ([(("loss", "targets"), "index")], "loss.targets", "softmax_cross_entropy"),
    "negative lambda": ([(("l2", "lambda"), -0.1)], "l2.lambda", ">= 0"),
    "lambda not a number": ([(("l2", "lambda"), "big")], "l2.lambda", "a finite number"),
    "include_bias not a bool": ([(("l2", "include_bias"), "yes")], "l2.include_bias", "true or false"),
    "unknown top-level key": ([(("optimizer",), "adam")], "optimizer", "a known field (one of inputs, layout"),
    "unknown layer key": ([(("layers", 0, "dropout"), 0.5)], "layers[0].dropout", "units, activation, bias"),
    "unknown loss key": ([(("loss", "weight"), 2)], "loss.weight", "kind, reduction, targets"),
    "units 0": ([(("layers", 1, "units"), 0)], "layers[1].units", "a positive integer"),
    "units not an integer": ([(("layers", 1, "units"), 2.5)], "layers[1].units", "a positive integer"),
    "units missing": ([(("layers", 0, "units"), DELETE)], "layers[0].units", "a positive integer"),
    "inputs missing": ([(("inputs",), DELETE)], "inputs", "a positive integer"),
    "inputs a bool": ([(("inputs",), True)], "inputs", "a positive integer"),
    "no layers": ([(("layers",), [])], "layers", "a non-empty list"),
    "bad layout": ([(("layout",), "rows")], "layout", "one of in_out, out_in"),
    "bad dtype": ([(("dtype",), "float16")], "dtype", "one of float64, float32"),
    "bad bias": ([(("layers", 0, "bias"), "both")], "layers[0].bias", "one of per_unit, shared, none"),
    "bad loss": ([(("loss", "kind"), "hinge")], "loss.kind", "half_sse, mse, softmax_cross_entropy"),
    "bad reduction": ([(("loss", "reduction"), "max")], "loss.reduction", "one of sum, mean"),
    "bad negative_slope": ([(("layers", 0, "negative_slope"), float("nan"))], "layers[0].negative_slope", "finite"),
}


def assert_one_line_error(err: InputError, source: str, field: str, allowed: str) -> None:
    message = str(err)
    assert "\n" not in message
    assert message.startswith(f"{source}: {field}: expected "), message
    assert allowed in message, message
    assert err.field == field


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_field_raises_one_line_input_error(name: str) -> None:
    changes, field, allowed = INVALID[name]
    with pytest.raises(InputError) as info:
        NetworkSpec.from_dict(with_changes(*changes))
    assert_one_line_error(info.value, "spec", field, allowed)


def test_errors_from_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(with_changes((("layout",), "rows"))), encoding="utf-8")
    with pytest.raises(InputError) as info:
        NetworkSpec.load(path)
    assert_one_line_error(info.value, str(path), "layout", "in_out, out_in")


def test_invalid_json_text_names_the_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"inputs": 3,\n "layers": [}', encoding="utf-8")
    with pytest.raises(InputError) as info:
        NetworkSpec.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: line 2 column ")
    assert "expected valid JSON" in message


def test_invalid_toml_text_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('inputs = 3\nlayout = "in_out\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        NetworkSpec.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: expected valid TOML")


def test_from_text_uses_the_given_source_name() -> None:
    with pytest.raises(InputError, match=r"^net\.toml: dtype: expected one of float64, float32, got 'int8'$"):
        NetworkSpec.from_toml('inputs = 1\ndtype = "int8"\n[[layers]]\nunits = 1\n', source="net.toml")
    with pytest.raises(InputError, match=r"^net\.json: line 1 column 1: expected valid JSON"):
        NetworkSpec.from_json("", source="net.json")


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(InputError) as info:
        NetworkSpec.load(path)
    assert str(info.value).startswith(f"{path}: expected a readable spec file")


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(InputError, match=r"^spec: layers\[0\]\.activation: expected softmax on the output layer only"):
        NetworkSpec(2, (LayerSpec(2, "softmax"), LayerSpec(1)))
    with pytest.raises(InputError, match=r"^spec: L2Spec\.lam: expected a number >= 0, got -1"):
        NetworkSpec(2, (LayerSpec(1),), l2=L2Spec(-1.0))
    with pytest.raises(InputError, match=r"^spec: layers: expected at least one layer"):
        NetworkSpec(2, ())
    with pytest.raises(InputError, match=r"^spec: LayerSpec\.units: expected a positive integer, got 0$"):
        NetworkSpec(2, (LayerSpec(0),))


def test_the_unchanged_base_of_the_invalid_cases_is_valid() -> None:
    assert NetworkSpec.from_dict(with_changes()) == NetworkSpec.from_toml(CASE1_TOML)
