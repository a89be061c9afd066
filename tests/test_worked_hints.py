"""Hints for wrong claims, each on a claim built to commit exactly one mistake."""

from __future__ import annotations

import numpy as np
import pytest

from refbp.network import backprop
from refbp.params import load_parameters
from refbp.spec import LayerSpec, LossSpec, NetworkSpec
from refbp.train import sgd_step
from worked.evaluate import check_example
from worked.example_file import parse_example

# 2 → 2 (tanh) → 2 (identity), rows are examples, a batch of two, mean half-SSE.
SPEC = NetworkSpec(inputs=2, layers=(LayerSpec(2, "tanh"), LayerSpec(2, "identity")), loss=LossSpec("half_sse", "mean"))
PARAMS = {"W1": [[0.3, -0.6], [0.9, 0.2]], "b1": [0.1, -0.2], "W2": [[0.5, -0.4], [0.7, 0.8]], "b2": [0.05, 0.0]}
X = [[1.0, 2.0], [-1.0, 0.5]]
T = [[0.2, -0.3], [0.4, 0.1]]
LR = 0.5

HEADER = """
title = "hint probe"
learning_rate = 0.5

[network]
inputs = 2
layers = [{ units = 2, activation = "tanh" }, { units = 2, activation = "identity" }]
loss = { kind = "half_sse", reduction = "mean" }

[parameters]
W1 = [[0.3, -0.6], [0.9, 0.2]]
b1 = [0.1, -0.2]
W2 = [[0.5, -0.4], [0.7, 0.8]]
b2 = [0.05, 0.0]

[data]
x = [[1.0, 2.0], [-1.0, 0.5]]
t = [[0.2, -0.3], [0.4, 0.1]]
"""


@pytest.fixture(scope="module")
def truth() -> dict:
    params = load_parameters(SPEC, PARAMS)
    _, grads = backprop(SPEC, params, X, T)
    after = sgd_step(params, grads.by_parameter(), LR)
    return {"grads": grads, "params": params, "after": after}


def _check(claims: str, after: str = "") -> dict:
    text = HEADER + "\n[claims]\n" + claims + ("\n[after_steps.1]\n" + after if after else "")
    results = check_example(parse_example(text, "probe.toml"))
    return {(r.claim.step, r.claim.reference): r for r in results}


def _four(value: float) -> str:
    return f"{value:.4f}"


def test_transposed_index(truth) -> None:
    dW1 = truth["grads"].layers[0].grad_W
    assert abs(dW1[0, 1] - dW1[1, 0]) > 1e-3  # the two entries are told apart at 4 decimals
    result = _check(f'"dL/dW1[0,1]" = "{_four(dW1[1, 0])}"')[(0, "dL/dW1[0,1]")]
    assert result.status == "wrong"
    assert "equals dL/dW1[1,0]: the index transposed" in result.hint


def test_factor_of_the_batch_size(truth) -> None:
    dW2 = truth["grads"].layers[1].grad_W
    result = _check(f'"dL/dW2[0,0]" = "{_four(2 * dW2[0, 0])}"')[(0, "dL/dW2[0,0]")]
    assert result.status == "wrong"
    assert result.hint.startswith("N = 2 (the batch size) too large: a sum where a mean was meant")


def test_sign_flipped(truth) -> None:
    db2 = truth["grads"].layers[1].grad_b
    result = _check(f'"dL/db2[1]" = "{_four(-db2[1])}"')[(0, "dL/db2[1]")]
    assert result.status == "wrong"
    assert result.hint.split("; ")[0] == "sign flipped"


def test_value_before_the_update(truth) -> None:
    w = truth["params"]["W2"][1, 1]
    assert abs(truth["after"]["W2"][1, 1] - w) > 1e-3
    result = _check('"dL/dW2[0,0]" = "0"', after=f'"W2[1,1]" = "{_four(w)}"')[(1, "W2[1,1]")]
    assert result.status == "wrong"
    assert result.value == pytest.approx(truth["after"]["W2"][1, 1], rel=1e-12)
    assert "the value before the update" in result.hint


def test_value_after_one_more_update(truth) -> None:
    w = truth["params"]["W1"][0, 0]
    result = _check(f'"W1[0,0]" = "{_four(truth["after"]["W1"][0, 0])}"')[(0, "W1[0,0]")]
    assert result.status == "wrong"
    assert result.value == w
    assert "the value after one more update" in result.hint


def test_rounding_slip_of_two_units(truth) -> None:
    value = truth["grads"].layers[0].grad_b[0]
    printed = _four(value + np.sign(value) * 2.2e-4)
    result = _check(f'"dL/db1[0]" = "{printed}"')[(0, "dL/db1[0]")]
    assert result.status == "wrong"
    assert f"a rounding slip (should read {_four(value)})" in result.hint
    assert 1.5 < result.units_off < 3.0


def test_two_digits_swapped() -> None:
    """Layer-2 δ of example 0, output 0: (a2 − t)/N; its 4-decimal digits are swapped in the claim."""
    params = load_parameters(SPEC, PARAMS)
    _, grads = backprop(SPEC, params, X, T)
    right = _four(grads.layers[1].delta[0, 0])
    digits = right.lstrip("-0.")
    assert len(set(digits[-2:])) == 2, right  # the last two digits differ, so swapping them changes the number
    swapped = right[:-2] + right[-1] + right[-2]
    result = _check(f'"delta2[0,0]" = "{swapped}"')[(0, "delta2[0,0]")]
    assert result.status == "wrong"
    assert f"two digits swapped (should read {right})" in result.hint


def test_a_correct_claim_gets_no_hint_and_a_far_off_claim_gets_none_that_does_not_fit(truth) -> None:
    dW1 = truth["grads"].layers[0].grad_W
    results = _check(f'"dL/dW1[0,0]" = "{_four(dW1[0, 0])}"\n"dL/dW1[1,1]" = "12.3456"')
    assert results[(0, "dL/dW1[0,0]")].status == "ok"
    assert results[(0, "dL/dW1[0,0]")].hint == ""
    assert results[(0, "dL/dW1[1,1]")].status == "wrong"
    assert results[(0, "dL/dW1[1,1]")].hint == ""
