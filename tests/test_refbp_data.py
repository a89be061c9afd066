"""Batch validation: the shapes ``as_inputs`` / ``as_targets`` accept, and the one-line errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refbp.data import as_inputs, as_targets
from refbp.errors import InputError
from refbp.network import forward
from refbp.spec import LayerSpec, LossSpec, NetworkSpec


def one_output_spec(layout: str) -> NetworkSpec:
    return NetworkSpec(
        inputs=2,
        layers=(LayerSpec(units=1, activation="sigmoid", bias="per_unit"),),
        layout=layout,
        loss=LossSpec(kind="binary_cross_entropy", reduction="sum"),
    )


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
def test_one_output_network_takes_a_vector_of_targets(layout: str) -> None:
    spec = one_output_spec(layout)
    W = np.array([[0.5], [-1.0]]) if layout == "in_out" else np.array([[0.5, -1.0]])
    params = {"W1": W, "b1": np.array([0.25])}
    rows = [[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]]
    X = np.array(rows) if layout == "in_out" else np.array(rows).T
    t = [1.0, 0.0, 1.0]
    assert as_targets(spec, t, 3).shape == spec.target_shape(3)
    # by hand: z = 0.5·x1 − x2 + 0.25, BCE = −Σ t log σ(z) + (1 − t) log(1 − σ(z))
    zs = [0.5 * x1 - x2 + 0.25 for x1, x2 in rows]
    sig = [1 / (1 + math.exp(-z)) for z in zs]
    expected = -sum(ti * math.log(s) + (1 - ti) * math.log(1 - s) for ti, s in zip(t, sig, strict=True))
    assert forward(spec, params, X, t).loss == pytest.approx(expected, rel=1e-12)


def test_vector_of_targets_is_ambiguous_for_several_outputs() -> None:
    spec = NetworkSpec(inputs=2, layers=(LayerSpec(units=2, activation="identity"),))
    expected = r"^targets: T: expected shape \(3, 2\) for layout in_out, got 'shape \(3,\)'$"
    with pytest.raises(InputError, match=expected):
        as_targets(spec, [1.0, 2.0, 3.0], 3)


def test_single_example_as_a_vector() -> None:
    spec = NetworkSpec(inputs=3, layers=(LayerSpec(units=2, activation="identity"),), layout="out_in")
    assert as_inputs(spec, [1.0, 2.0, 3.0]).shape == (3, 1)
    assert as_targets(spec, [1.0, 2.0], 1).shape == (2, 1)


def test_non_finite_inputs_are_rejected_in_one_line() -> None:
    spec = NetworkSpec(inputs=2, layers=(LayerSpec(units=1, activation="identity"),))
    with pytest.raises(InputError) as err:
        as_inputs(spec, [[1.0, float("nan")]], source="data.json")
    assert str(err.value) == "data.json: X: expected finite numbers, got 'NaN or infinity'"
