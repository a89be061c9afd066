"""The grader's oracle: hand-checked conventions, agreement with torch autograd, kink-safe inputs."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest

from grading import oracle_deep, oracle_layers
from grading.interfaces import INTERFACES, build_plan
from grading.torch_confirm import confirm


def _build(interface: str, seed: int):
    """The checks of ``interface`` as built, before the confirmation that :func:`build_plan` adds."""
    return importlib.import_module(INTERFACES[interface].module).build(seed)


@pytest.mark.parametrize("interface", sorted(INTERFACES))
@pytest.mark.parametrize("seed", [0, 1, 2, 7])
def test_every_expected_gradient_agrees_with_torch_autograd(interface, seed):
    checks = _build(interface, seed)
    assert confirm(checks) == []
    confirmed = {c.target for c in checks if c.twin}
    expected = {"affine_backward", "softmax_loss", "L_model_backward", "linear_backward", "backprop", "rnn_backward"}
    expected.add("conv_backward")
    assert expected & confirmed


def test_confirm_catches_a_wrong_oracle_value():
    checks = oracle_layers.build(0)
    index = next(i for i, c in enumerate(checks) if c.name == "affine_backward")
    broken = checks[index]
    expects = (dataclasses.replace(broken.expects[1], value=broken.expects[1].value * 1.001), *broken.expects[2:])
    checks[index] = dataclasses.replace(broken, expects=(broken.expects[0], *expects))
    assert confirm(checks) == ["affine_backward: dw disagrees with torch autograd"]


def test_deep_linear_backward_conventions_by_hand():
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    W = np.array([[1.0, 0.0], [0.0, 2.0]])
    dZ = np.array([[1.0, 1.0], [2.0, 0.0]])
    grads = oracle_deep.linear_backward(dZ, A, W)
    np.testing.assert_array_equal(grads["dW"], [[1.5, 3.5], [1.0, 3.0]])  # dZ Aᵀ / m
    np.testing.assert_array_equal(grads["db"], [[1.0], [1.0]])  # row sums / m, shape (n, 1)
    np.testing.assert_array_equal(grads["dA_prev"], [[1.0, 1.0], [4.0, 0.0]])  # Wᵀ dZ, no 1/m


def test_deep_cost_by_hand():
    AL = np.array([[0.5, 0.25]])
    Y = np.array([[1.0, 0.0]])
    assert oracle_deep.cost(AL, Y) == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2)


def test_deep_model_backward_dA_is_m_times_the_cost_gradient_at_the_output():
    X, Y, params = oracle_deep.model_case(0)
    AL, _ = oracle_deep.model_forward(X, params)
    grads = oracle_deep.model_backward(X, Y, params)
    m = X.shape[1]
    # dZ_L = AL − Y (not divided by m), so dA_{L−1} = W_Lᵀ (AL − Y) and dW_L = (AL − Y) A_{L−1}ᵀ / m.
    np.testing.assert_allclose(grads["dA3"], params["W4"].T @ (AL - Y), rtol=1e-12)
    np.testing.assert_allclose(grads["db4"], (AL - Y).sum(axis=1, keepdims=True) / m, rtol=1e-12)


def test_softmax_loss_by_hand():
    ref = oracle_layers.softmax_loss(np.array([[0.0, 0.0], [0.0, np.log(3.0)]]), np.array([0, 1]))
    assert float(ref["loss"]) == pytest.approx((np.log(2.0) + np.log(4.0 / 3.0)) / 2)
    np.testing.assert_allclose(ref["dx"], [[-0.25, 0.25], [0.125, -0.125]])


def test_affine_backward_by_hand_keeps_the_input_shape():
    x = np.arange(4.0).reshape(1, 2, 2)
    w = np.ones((4, 2))
    grads = oracle_layers.affine_backward(x, w, np.array([[1.0, -1.0]]))
    np.testing.assert_array_equal(grads["dx"], np.zeros((1, 2, 2)))
    np.testing.assert_array_equal(grads["dw"], [[0, 0], [1, -1], [2, -2], [3, -3]])
    np.testing.assert_array_equal(grads["db"], [1.0, -1.0])


@pytest.mark.parametrize("seed", range(5))
def test_relu_inputs_stay_away_from_the_kink(seed):
    for check in oracle_layers.build(seed):
        if check.target.startswith("relu"):
            assert np.abs(check.inputs["x"]).min() >= 0.1
    for check in oracle_deep.build(seed):
        if check.name == "relu_backward":
            assert np.abs(check.inputs["Z"]).min() >= 0.1
    X, _, params = oracle_deep.model_case(seed)
    _, zs = oracle_deep.model_forward(X, params)
    assert min(np.abs(z).min() for z in zs[:-1]) >= 0.05


def test_plans_are_deterministic_and_vary_with_the_seed():
    first, again, other = build_plan("deep", 3), _build("deep", 3), _build("deep", 4)
    for a, b in zip(first, again, strict=True):
        assert a.name == b.name
        for key in a.inputs:
            np.testing.assert_array_equal(a.inputs[key], b.inputs[key])
    assert any(
        a.inputs[k].shape != b.inputs[k].shape or not np.array_equal(a.inputs[k], b.inputs[k])
        for a, b in zip(first, other, strict=True)
        for k in a.inputs
    )


def test_the_deep_network_has_two_layers_of_the_same_shape():
    _, _, params = oracle_deep.model_case(0)
    assert params["W2"].shape == params["W3"].shape


def test_interfaces_list_their_functions():
    assert INTERFACES["layers"].functions == oracle_layers.FUNCTIONS
    assert "L_model_backward" in INTERFACES["deep"].functions
    assert INTERFACES["spec"].functions == ("backprop",)
    with pytest.raises(KeyError):
        build_plan("nope", 0)
