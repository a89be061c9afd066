"""``assert_layer_matches`` on a course-style layers file: correct layers pass, known bugs fail with a
compact table, the smallest case and a replay line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from oracle.layer_gate import LayerCase, LayerMismatch, assert_layer_matches, check_layer_case

_SPEC = importlib.util.spec_from_file_location("cs231n_layers", Path(__file__).parent / "course" / "cs231n_layers.py")
course = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(course)


@pytest.mark.parametrize(
    ("forward", "backward", "layer", "spatial"),
    [
        (course.conv_forward_naive, course.conv_backward_naive, "conv2d", None),
        (course.max_pool_forward_naive, course.max_pool_backward_naive, "max_pool2d", None),
        (course.batchnorm_forward, course.batchnorm_backward_alt, "batchnorm", False),
        (course.dropout_forward, course.dropout_backward, {"type": "dropout", "keep_prob": 0.6}, False),
    ],
)
def test_correct_course_layers_pass(forward, backward, layer, spatial) -> None:
    assert_layer_matches(forward, backward, layer=layer, cases=12, seed=1, spatial=spatial)


def test_an_unflipped_conv_backward_is_caught_and_shrunk() -> None:
    with pytest.raises(LayerMismatch) as caught:
        assert_layer_matches(course.conv_forward_naive, course.conv_backward_unflipped, layer="conv2d", cases=15)
    message = str(caught.value)
    assert message.startswith("layer gate (conv2d, style cs231n):")
    lines = {line.split()[0]: line.split()[1] for line in message.splitlines()[3:7]}
    assert lines == {"out": "ok", "dx": "mismatch", "dW": "ok", "db": "ok"}
    replay = message.splitlines()[-1]
    assert replay.startswith("replay: from oracle.layer_gate import LayerCase;")
    case = LayerCase.from_json(eval(replay.split("from_json(", 1)[1].split(").materialize")[0]))
    assert case.layer["kernel"] >= 2 and case.shape[0] == 1  # shrunk: one example, a kernel that can be flipped
    rows = check_layer_case(course.conv_forward_naive, course.conv_backward_unflipped, case, "cs231n")
    assert {r.quantity: r.status for r in rows}["dx"] == "mismatch"


def test_a_dropout_without_rescaling_fails_on_dx_only() -> None:
    with pytest.raises(LayerMismatch, match=r"dx\s+mismatch"):
        assert_layer_matches(
            course.dropout_forward, course.dropout_backward_no_rescale, layer="dropout", cases=10, spatial=False
        )


def test_plain_functions_and_a_raising_layer() -> None:
    def forward(x, gamma, beta, eps):
        mu, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
        return gamma * (x - mu) / np.sqrt(var + eps) + beta

    def backward(dout, x, gamma, beta, eps):
        mu, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
        xhat = (x - mu) / np.sqrt(var + eps)
        g = dout * gamma
        dx = (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True)) / np.sqrt(var + eps)
        return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)

    assert_layer_matches(forward, backward, layer="layernorm", style="plain", spatial=False, cases=10)

    def broken(dout, x, gamma, beta, eps):
        raise RuntimeError("not implemented yet")

    with pytest.raises(LayerMismatch, match="RuntimeError: not implemented yet"):
        assert_layer_matches(forward, broken, layer="layernorm", style="plain", spatial=False, cases=3)
    with pytest.raises(ValueError, match="style"):
        assert_layer_matches(forward, backward, layer="layernorm", style="keras")


def _course_rnn_layers():
    path = Path(__file__).parent / "submissions" / "courses" / "cs231n_rnn_layers.py"
    spec = importlib.util.spec_from_file_location("course_rnn_layers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_course_rnn_and_lstm_sequences_pass_the_layer_gate() -> None:
    course = _course_rnn_layers()
    assert_layer_matches(course.rnn_forward, course.rnn_backward, layer="rnn", cases=8)
    assert_layer_matches(course.lstm_forward, course.lstm_backward, layer="lstm", cases=8)


def test_an_rnn_backward_without_the_carried_gradient_fails_the_layer_gate() -> None:
    course = _course_rnn_layers()

    def rnn_backward_no_carry(dh, cache):
        N, T, H = dh.shape
        D = cache[0][0].shape[1]
        dx, dWx, dWh, db = np.zeros((N, T, D)), np.zeros((D, H)), np.zeros((H, H)), np.zeros(H)
        dprev_h = np.zeros((N, H))
        for t in reversed(range(T)):
            dx[:, t], dprev_h, dWx_t, dWh_t, db_t = course.rnn_step_backward(dh[:, t], cache[t])
            dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
        return dx, dprev_h, dWx, dWh, db

    with pytest.raises(LayerMismatch) as caught:
        assert_layer_matches(course.rnn_forward, rnn_backward_no_carry, layer="rnn", cases=10)
    text = str(caught.value)
    assert "layer gate (rnn, style cs231n)" in text and "input (1, 2, 1)" in text
    assert "dWh" in text and "replay" in text


def test_course_rnn_and_lstm_steps_pass_the_layer_gate() -> None:
    course = _course_rnn_layers()
    assert_layer_matches(course.rnn_step_forward, course.rnn_step_backward, layer="rnn_step", cases=8)
    assert_layer_matches(course.lstm_step_forward, course.lstm_step_backward, layer="lstm_step", cases=8)


def test_plain_rnn_and_lstm_steps_pass_the_layer_gate_in_either_gate_order() -> None:
    def rnn_forward(x, prev_h, Wx, Wh, b, hidden):
        return np.tanh(x @ Wx + prev_h @ Wh + b)

    def rnn_backward(dnext_h, x, prev_h, Wx, Wh, b, hidden):
        dz = dnext_h * (1 - rnn_forward(x, prev_h, Wx, Wh, b, hidden) ** 2)
        return dz @ Wx.T, dz @ Wh.T, x.T @ dz, prev_h.T @ dz, dz.sum(axis=0)

    assert_layer_matches(rnn_forward, rnn_backward, layer="rnn_step", style="plain", cases=6)

    def gates(x, prev_h, Wx, Wh, b, gate_order):
        a = np.split(x @ Wx + prev_h @ Wh + b, 4, axis=1)
        named = dict(zip(gate_order, a, strict=True))
        return {k: (np.tanh(v) if k == "g" else 1 / (1 + np.exp(-v))) for k, v in named.items()}

    def lstm_forward(x, prev_h, prev_c, Wx, Wh, b, hidden, gate_order):
        g = gates(x, prev_h, Wx, Wh, b, gate_order)
        next_c = g["f"] * prev_c + g["i"] * g["g"]
        return g["o"] * np.tanh(next_c), next_c

    def lstm_backward(dnext_h, dnext_c, x, prev_h, prev_c, Wx, Wh, b, hidden, gate_order):
        g = gates(x, prev_h, Wx, Wh, b, gate_order)
        _, next_c = lstm_forward(x, prev_h, prev_c, Wx, Wh, b, hidden, gate_order)
        dc = dnext_c + dnext_h * g["o"] * (1 - np.tanh(next_c) ** 2)
        local = {"i": dc * g["g"], "f": dc * prev_c, "o": dnext_h * np.tanh(next_c), "g": dc * g["i"]}
        da = np.hstack([local[k] * ((1 - g[k] ** 2) if k == "g" else g[k] * (1 - g[k])) for k in gate_order])
        return da @ Wx.T, da @ Wh.T, dc * g["f"], x.T @ da, prev_h.T @ da, da.sum(axis=0)

    for order in ("ifog", "ifgo"):
        layer = {"type": "lstm_step", "gate_order": order}
        assert_layer_matches(lstm_forward, lstm_backward, layer=layer, style="plain", cases=6)


def test_a_step_backward_without_tanh_prime_in_dprev_h_fails_naming_dprev_h() -> None:
    course = _course_rnn_layers()

    def backward(dnext_h, cache):
        Wh = cache[3]
        dx, _, dWx, dWh, db = course.rnn_step_backward(dnext_h, cache)
        return dx, dnext_h @ Wh.T, dWx, dWh, db  # tanh' left out of the carried gradient

    with pytest.raises(LayerMismatch) as caught:
        assert_layer_matches(course.rnn_step_forward, backward, layer="rnn_step", cases=8)
    text = str(caught.value)
    assert "layer gate (rnn_step, style cs231n)" in text and "input (1, 1)" in text
    failing = {line.split()[0] for line in text.splitlines() if "mismatch" in line.split()[1:2]}
    assert failing == {"dprev_h"}, text
    replay = text.split("replay: ")[1]
    namespace: dict = {}
    exec(replay, namespace)  # the replay line rebuilds the smallest case's inputs
    x, inputs, dnext, _ = namespace["x"], namespace["params"], namespace["dout"], namespace["buffers"]
    assert x.shape == (1, 1) and list(inputs) == ["prev_h", "Wx", "Wh", "b"] and list(dnext) == ["dnext_h"]
    _, cache = course.rnn_step_forward(x, *inputs.values())
    _, right, *_ = course.rnn_step_backward(dnext["dnext_h"], cache)
    _, wrong, *_ = backward(dnext["dnext_h"], cache)
    assert not np.allclose(right, wrong)


def test_an_lstm_step_whose_dprev_c_misses_the_forget_factor_fails_naming_dprev_c() -> None:
    course = _course_rnn_layers()

    def backward(dnext_h, dnext_c, cache):
        dx, dprev_h, dprev_c, dWx, dWh, db = course.lstm_step_backward(dnext_h, dnext_c, cache)
        f = cache[6]
        return dx, dprev_h, dprev_c / f, dWx, dWh, db  # dc carried to t−1 without ⊙ f

    with pytest.raises(LayerMismatch) as caught:
        assert_layer_matches(course.lstm_step_forward, backward, layer="lstm_step", cases=8)
    text = str(caught.value)
    failing = {line.split()[0] for line in text.splitlines() if "mismatch" in line.split()[1:2]}
    assert failing == {"dprev_c"}, text
    assert "next_c" in text and "dprev_h" in text


def test_a_step_layer_that_returns_too_little_is_one_error_row() -> None:
    course = _course_rnn_layers()

    def backward(dnext_h, cache):
        return course.rnn_step_backward(dnext_h, cache)[:2]

    with pytest.raises(LayerMismatch, match="backward returned 2 value"):
        assert_layer_matches(course.rnn_step_forward, backward, layer="rnn_step", cases=3)
