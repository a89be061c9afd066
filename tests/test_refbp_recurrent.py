"""Sequence layers: embedding, rnn, lstm, temporal affine, last step and the masked temporal loss,
against numbers worked out by hand, the torch twin and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from oracle.cases import Case
from oracle.check import check_case
from oracle.twin.sequential import torch_sequential_backprop
from refbp.errors import InputError
from refbp.layers import embedding, lstm, rnn
from refbp.sequential import backprop, init_parameters
from refbp.sequential_spec import SequentialSpec
from refbp.spec import NetworkSpec
from refbp.temporal_loss import temporal_softmax_loss

TEMPORAL_LOSS = {"kind": "temporal_softmax_cross_entropy", "targets": "index", "reduction": "mean"}


def _seq(layers: list[dict], inputs: list[int], loss: dict | None = None, **extra) -> SequentialSpec:
    return SequentialSpec.from_dict({"inputs": inputs, "layers": layers, "loss": loss or TEMPORAL_LOSS, **extra})


def test_two_step_rnn_matches_the_chain_rule_by_hand() -> None:
    # D = H = 1, N = 1: h1 = tanh(0.5·1 − 1·0.2 + 0.1) = tanh(0.4) = 0.379949
    #                   h2 = tanh(0.5·(−2) − 1·h1 + 0.1) = tanh(−1.279949) = −0.856471
    # L = 2·h1 + 3·h2 (dout = [2, 3]).
    layer = rnn.RNN(hidden=1)
    params = {"Wx": np.array([[0.5]]), "Wh": np.array([[-1.0]]), "b": np.array([0.1]), "h0": np.array([0.2])}
    x = np.array([[[1.0], [-2.0]]])
    h, cache, _ = rnn.forward(layer, params, x, {})
    h1 = math.tanh(0.4)
    h2 = math.tanh(-1.0 - h1 + 0.1)
    assert h1 == pytest.approx(0.379949, abs=1e-6) and h2 == pytest.approx(-0.856471, abs=1e-6)
    np.testing.assert_allclose(h[0, :, 0], [h1, h2], rtol=1e-14)
    dx, grads = rnn.backward(layer, params, cache, np.array([[[2.0], [3.0]]]))
    dz2 = 3.0 * (1 - h2**2)  # step 2: only the gradient from above
    dh1 = 2.0 + dz2 * -1.0  # step 1: from above plus the carried dz2·Wh
    dz1 = dh1 * (1 - h1**2)  # tanh' at step 1 from h1, not h2
    assert grads["Wx"][0, 0] == pytest.approx(dz1 * 1.0 + dz2 * -2.0, rel=1e-13)
    assert grads["Wh"][0, 0] == pytest.approx(dz1 * 0.2 + dz2 * h1, rel=1e-13)
    assert grads["b"][0] == pytest.approx(dz1 + dz2, rel=1e-13)
    assert grads["h0"][0] == pytest.approx(dz1 * -1.0, rel=1e-13)
    np.testing.assert_allclose(dx[0, :, 0], [dz1 * 0.5, dz2 * 0.5], rtol=1e-13)
    # the per-step total gradients: dh at the last step is the gradient from above alone
    np.testing.assert_allclose(grads["h"][0, :, 0], [dh1, 3.0], rtol=1e-13)


def test_embedding_backward_adds_every_step_of_a_repeated_index() -> None:
    layer = embedding.Embedding(vocab=4, dim=2)
    W = np.arange(8.0).reshape(4, 2)
    out, cache, _ = embedding.forward(layer, {"W": W}, np.array([[1.0, 3.0, 1.0]]), {})
    np.testing.assert_array_equal(out[0], [[2, 3], [6, 7], [2, 3]])
    dout = np.array([[[1.0, 10.0], [100.0, 1000.0], [0.5, 0.25]]])
    dx, grads = embedding.backward(layer, {"W": W}, cache, dout)
    np.testing.assert_array_equal(grads["W"], [[0, 0], [1.5, 10.25], [0, 0], [100, 1000]])
    np.testing.assert_array_equal(dx, np.zeros((1, 3)))
    with pytest.raises(InputError, match=r"integer indices in 0\.\.3"):
        embedding.forward(layer, {"W": W}, np.array([[1.0, 4.0]]), {})


def test_temporal_loss_counts_unmasked_steps_and_divides_by_n() -> None:
    # two examples, two steps, two classes; scores 0 everywhere except x[0, 0] = [ln 3, 0].
    x = np.zeros((2, 2, 2))
    x[0, 0, 0] = math.log(3.0)
    y = np.array([[0, 1], [1, 0]])
    mask = np.array([[True, False], [True, True]])
    loss, dx = temporal_softmax_loss(x, y, mask)
    # −[log(3/4) + log(1/2) + log(1/2)] / 2
    assert loss == pytest.approx(-(math.log(0.75) + 2 * math.log(0.5)) / 2, rel=1e-14)
    np.testing.assert_allclose(dx[0, 0], [(0.75 - 1) / 2, 0.25 / 2], rtol=1e-14)
    np.testing.assert_array_equal(dx[0, 1], [0.0, 0.0])
    np.testing.assert_allclose(dx[1, 1], [-0.25, 0.25], rtol=1e-14)


def test_lstm_gate_orders_read_the_same_columns_differently() -> None:
    rng = np.random.default_rng(0)
    x, h0 = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))
    Wx, Wh, b = rng.standard_normal((3, 8)), rng.standard_normal((2, 8)), rng.standard_normal(8)
    h_ifog, c_ifog, _ = lstm.step_forward(x, h0, np.zeros((2, 2)), Wx, Wh, b, "ifog")
    a = x @ Wx + h0 @ Wh + b
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c = sig(a[:, 0:2]) * np.tanh(a[:, 6:8])
    np.testing.assert_allclose(c_ifog, c, rtol=1e-13)
    np.testing.assert_allclose(h_ifog, sig(a[:, 4:6]) * np.tanh(c), rtol=1e-13)
    _, c_ifgo, _ = lstm.step_forward(x, h0, np.zeros((2, 2)), Wx, Wh, b, "ifgo")
    np.testing.assert_allclose(c_ifgo, sig(a[:, 0:2]) * np.tanh(a[:, 4:6]), rtol=1e-13)


@pytest.mark.parametrize("order", ["ifog", "ifgo"])
def test_sequence_network_agrees_three_ways(order: str) -> None:
    spec = _seq(
        [
            {"type": "embedding", "vocab": 3, "dim": 4},
            {"type": "lstm", "hidden": 3, "gate_order": order},
            {"type": "rnn", "hidden": 2},
            {"type": "temporal_affine", "units": 4},
        ],
        [3],
        l2={"lambda": 0.1, "include_bias": True},
    )
    assert list(spec.parameter_shapes()) == ["W1", "Wx2", "Wh2", "b2", "h02", "Wx3", "Wh3", "b3", "h03", "W4", "b4"]
    data = Case(spec, 3, 5).materialize()
    assert (data.T == -1).any() and (data.T >= 0).any()
    result = check_case("seq", spec, data.params, data.X, data.T)
    quantities = {(r.layer, r.quantity, r.pair) for r in result.rows}
    assert (2, "dL/dh0", "refbp~fd") in quantities and (1, "dL/dW", "torch~fd") in quantities
    assert all(r.status == "ok" for r in result.rows) and result.first is None
    # per-step rows: dL/dh of both recurrent layers, dL/dc of the LSTM, one row per step and pair
    stepped = {(r.layer, r.quantity, r.step, r.pair) for r in result.rows if r.step is not None}
    pairs = ("refbp~torch", "refbp~fd", "torch~fd")
    expected = {(2, "dL/dh"), (2, "dL/dc"), (3, "dL/dh")}
    assert stepped == {(*key, t, pair) for key in expected for t in range(3) for pair in pairs}
    assert all(r.step is None for r in result.rows if r.quantity not in ("dL/dh", "dL/dc"))


def test_per_step_gradients_agree_three_ways_and_with_the_lstm_recursion() -> None:
    from oracle.fd_steps import step_gradients

    spec = _seq(
        [{"type": "lstm", "hidden": 2, "gate_order": "ifgo"}, {"type": "rnn", "hidden": 3}, {"type": "last_step"}],
        [3, 2],
        loss={"kind": "mse", "reduction": "sum"},
    )
    params = init_parameters(spec, 4)
    X = np.random.default_rng(2).standard_normal((2, 3, 2))
    T = np.random.default_rng(3).standard_normal((2, 3))
    _, grads = backprop(spec, params, X, T)
    _, twin = torch_sequential_backprop(spec, params, X, T)
    differenced, kinks = step_gradients(spec, params, X, T)
    assert sorted(differenced) == [(1, "dL/dc"), (1, "dL/dh"), (2, "dL/dh")] and not any(
        k.any() for k in kinks.values()
    )
    with pytest.raises(InputError, match="target: expected one of"):
        step_gradients(spec, params, X, T, [(2, "dL/dc")])
    for (layer, quantity), value in differenced.items():
        mine = grads.layers[layer - 1].steps[quantity[-1]]
        assert mine.shape == (2, 3, 3 if layer == 2 else 2)
        np.testing.assert_allclose(mine, twin.layers[layer - 1].steps[quantity[-1]], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(mine, value, rtol=1e-6, atol=1e-9)
    # the last step of the RNN under last_step: the gradient from above alone; earlier steps only carry
    dh = grads.layers[1].steps["h"]
    np.testing.assert_allclose(dh[:, -1], grads.layers[1].grad_a[:, -1], rtol=1e-14)
    assert np.all(grads.layers[1].grad_a[:, :-1] == 0) and np.all(dh[:, :-1] != 0)
    # the LSTM's cell: dc_{T−1} = dh_{T−1} ⊙ o ⊙ (1 − tanh²(c_{T−1})), nothing carried yet
    h0 = np.broadcast_to(params["h01"], (2, 2))
    c, hs, cs, os_ = np.zeros((2, 2)), [], [], []
    for t in range(3):
        h_prev = h0 if t == 0 else hs[-1]
        h, c, gates = lstm.step_forward(X[:, t], h_prev, c, params["Wx1"], params["Wh1"], params["b1"], "ifgo")
        hs.append(h)
        cs.append(c)
        os_.append(gates["o"])
    dh1, dc1 = grads.layers[0].steps["h"], grads.layers[0].steps["c"]
    np.testing.assert_allclose(dc1[:, 2], dh1[:, 2] * os_[2] * (1 - np.tanh(cs[2]) ** 2), rtol=1e-12)


def test_masked_steps_carry_no_gradient_and_the_loss_is_divided_by_n() -> None:
    spec = _seq([{"type": "rnn", "hidden": 2}, {"type": "temporal_affine", "units": 3}], [2, 2])
    params = init_parameters(spec, 3)
    X = np.random.default_rng(1).standard_normal((2, 2, 2))
    T = np.array([[2, -1], [0, 1]])
    trace, grads = backprop(spec, params, X, T)
    scores = trace.layers[-1].a
    logp = scores - np.log(np.exp(scores).sum(-1, keepdims=True))
    assert trace.data_loss == pytest.approx(-(logp[0, 0, 2] + logp[1, 0, 0] + logp[1, 1, 1]) / 2, rel=1e-13)
    np.testing.assert_array_equal(grads.layers[-1].grad_a[0, 1], np.zeros(3))
    _, twin = torch_sequential_backprop(spec, params, X, T)
    np.testing.assert_allclose(grads.layers[0].grad_params["h0"], twin.layers[0].grad_params["h0"], rtol=1e-12)


def test_sequence_to_one_with_last_step_agrees_three_ways() -> None:
    spec = NetworkSpec.from_dict(
        {
            "inputs": [4, 2],
            "layers": [{"type": "lstm", "hidden": 3}, {"type": "last_step"}, {"units": 3, "activation": "softmax"}],
            "loss": {"kind": "softmax_cross_entropy", "targets": "index", "reduction": "mean"},
        }
    )
    data = Case(spec, 2, 3).materialize()
    result = check_case("s2o", spec, data.params, data.X, data.T)
    assert all(r.status == "ok" for r in result.rows)
    _, grads = backprop(spec, data.params, data.X, data.T)
    assert np.any(grads.layers[1].grad_a) and not np.any(grads.layers[0].grad_a[:, :-1])


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"inputs": [3, 2], "layers": [{"type": "rnn"}]}, "layers[0].hidden", "missing"),
        ({"inputs": [3, 2], "layers": [{"type": "lstm", "hidden": 2, "gate_order": "fiog"}]}, "gate_order", "ifog"),
        ({"inputs": [3], "layers": [{"type": "rnn", "hidden": 2}]}, "layers[0]", "a sequence input"),
        (
            {"inputs": [3, 2], "layers": [{"type": "rnn", "hidden": 2}, {"type": "last_step"}], "loss": TEMPORAL_LOSS},
            "layers[1]",
            "a sequence output",
        ),
        ({"inputs": [3, 2], "layers": [{"type": "rnn", "hidden": 2}]}, "layers[0]", "a flat output"),
    ],
)
def test_bad_sequence_specs_name_the_field(data: dict, field: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        SequentialSpec.from_dict(data)
    assert field in str(err.value)


def test_sequence_targets_are_checked() -> None:
    spec = _seq([{"type": "rnn", "hidden": 2}, {"type": "temporal_affine", "units": 3}], [2, 2])
    params = init_parameters(spec)
    X = np.zeros((1, 2, 2))
    with pytest.raises(InputError, match=r"shape \(1, 2\)"):
        backprop(spec, params, X, np.array([1]))
    with pytest.raises(InputError, match=r"-1..2"):
        backprop(spec, params, X, np.array([[3, 0]]))
