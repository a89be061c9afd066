"""The gate for this project's backprop: random networks of the kinds it supports, checked three ways.

``GATE_DEMO_IMPL=buggy pytest`` checks the buggy implementation (red); plain
``pytest`` the fixed one (green).
"""

from __future__ import annotations

import importlib
import os

import numpy as np
from gate_demo.mlp import REFBP_SUPPORTS
from hypothesis import given, settings

from oracle.strategies import backprop_inputs
from refbp.spec import LayerSpec, LossSpec, NetworkSpec

IMPLEMENTATION = os.environ.get("GATE_DEMO_IMPL", "fixed")
backprop = importlib.import_module(f"gate_demo.backprop_{IMPLEMENTATION}").backprop


def test_backprop_on_random_networks(bp_oracle):
    """Random networks inside ``REFBP_SUPPORTS`` (up to 3 layers): ``--refbp-cases`` cases from ``--refbp-seed``."""
    bp_oracle.assert_matches(backprop)


def test_backprop_on_the_course_network(bp_oracle):
    """The network of the course's exercise: 3 inputs, 4 tanh units, 2 sigmoid outputs, mean half-SSE."""
    spec = NetworkSpec(
        inputs=3,
        layers=(LayerSpec(units=4, activation="tanh"), LayerSpec(units=2, activation="sigmoid")),
        loss=LossSpec(kind="half_sse", reduction="mean"),
    )
    bp_oracle.assert_matches(backprop, spec=spec, cases=10)


@settings(max_examples=25, deadline=None)
@given(backprop_inputs(supports=REFBP_SUPPORTS, dtype="float64"))
def test_gradients_have_the_parameter_shapes(inputs):
    """Hypothesis draws spec, parameters and a batch with refbp's public strategies."""
    spec, params, X, T = inputs
    grads = backprop(spec, params, X, T)
    assert {name: g.shape for name, g in grads.items() if name != "x"} == {n: p.shape for n, p in params.items()}
    assert grads["x"].shape == X.shape
    assert all(np.isfinite(g).all() for g in grads.values())
