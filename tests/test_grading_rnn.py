"""The ``cs231n-a3-rnn`` assignment: a correct course-style ``rnn_layers.py`` gets full points, and each
classic backprop-through-time bug fails the right function with its plain-words hint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grading.assignment import builtin_names, resolve
from grading.grader import grade_submission
from grading.oracle_rnn import FUNCTIONS, build, lstm_sequence, rnn_sequence
from grading.sandbox import SandboxLimits

COURSE = Path(__file__).parent / "submissions" / "courses" / "cs231n_rnn_layers.py"
LIMITS = SandboxLimits(function_seconds=20.0, submission_seconds=120.0)

# bug → (the text of the correct file, what replaces it, functions that must fail, pattern, words of the hint)
BUGS = {
    "carried_dh_dropped": (
        "rnn_step_backward(dh[:, t, :] + dprev_h, cache[t])",
        "rnn_step_backward(dh[:, t, :], cache[t])",
        {"rnn_backward"},
        "carried_dh_dropped",
        "carried back from step t+1",
    ),
    "dWh_not_summed": (
        "dx[:, t, :] = dx_t\n        dWx += dWx_t\n        dWh += dWh_t",
        "dx[:, t, :] = dx_t\n        dWx += dWx_t\n        dWh = dWh_t",
        {"rnn_backward"},
        "dWh_not_summed",
        "summed over every time step",
    ),
    "tanh_prime_wrong_step": (
        "dtanh = dnext_h * (1 - next_h ** 2)",
        "dtanh = dnext_h * (1 - prev_h ** 2)",
        {"rnn_step_backward", "rnn_backward"},
        "tanh_prime_wrong_step",
        "wrong step",
    ),
    "gate_order_swapped": (
        "do * o * (1 - o), dg * (1 - g ** 2)))",
        "dg * (1 - g ** 2), do * o * (1 - o)))",
        {"lstm_step_backward", "lstm_backward"},
        "gate_order_swapped",
        "i, f, o, g",
    ),
    "embedding_overwrites": ("np.add.at(dW, x, dout)", "dW[x] = dout", {"word_embedding_backward"},
                             "embedding_overwrites", "np.add.at"),
    "mask_ignored": (
        "    dx_flat *= mask_flat[:, None]\n",
        "",
        {"temporal_softmax_loss"},
        "mask_ignored",
        "mask is ignored",
    ),
}  # fmt: skip


def test_a_correct_rnn_layers_file_gets_full_points() -> None:
    assert "cs231n-a3-rnn" in builtin_names()
    assignment = resolve("cs231n-a3-rnn")
    assert {f.name for f in assignment.functions} == set(FUNCTIONS)
    result = grade_submission(COURSE, "cs231n-a3-rnn", 0, LIMITS)
    assert [(r.check, r.quantity, r.status, r.message) for r in result.rows if not r.passed] == []
    assert result.passed and result.score == result.max_score == 22
    assert {r.target for r in result.rows} == set(FUNCTIONS)


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_each_bptt_bug_fails_its_function_with_its_hint(bug: str, tmp_path: Path) -> None:
    right, wrong, functions, pattern, words = BUGS[bug]
    text = COURSE.read_text(encoding="utf-8")
    assert text.count(right) == 1, bug
    path = tmp_path / "rnn_layers.py"
    path.write_text(text.replace(right, wrong), encoding="utf-8")
    result = grade_submission(path, "cs231n-a3-rnn", 0, LIMITS)
    failing = [r for r in result.rows if not r.passed]
    assert {r.target for r in failing} == functions, [(r.target, r.quantity, r.message) for r in failing]
    assert any(r.pattern == pattern and words in r.diagnosis for r in failing), [
        (r.quantity, r.pattern, r.diagnosis) for r in failing
    ]


def test_the_oracle_agrees_with_a_plain_loop_and_its_bugs_differ() -> None:
    rng = np.random.default_rng(4)
    N, T, D, H = 2, 3, 2, 3
    x, h0, dh = rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), rng.standard_normal((N, T, H))
    p = {"Wx": rng.standard_normal((D, H)), "Wh": rng.standard_normal((H, H)), "b": rng.standard_normal(H)}
    # h_t and BPTT written out for this test alone
    hs, prev = [], h0
    for t in range(T):
        prev = np.tanh(x[:, t] @ p["Wx"] + prev @ p["Wh"] + p["b"])
        hs.append(prev)
    dWh, carry = np.zeros((H, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        dz = (dh[:, t] + carry) * (1 - hs[t] ** 2)
        dWh += (hs[t - 1] if t else h0).T @ dz
        carry = dz @ p["Wh"].T
    ref = rnn_sequence(x, h0, p, dh)
    np.testing.assert_allclose(ref["h"], np.stack(hs, axis=1), rtol=1e-13)
    np.testing.assert_allclose(ref["dWh"], dWh, rtol=1e-12)
    np.testing.assert_allclose(ref["dh0"], carry, rtol=1e-12)
    assert not np.allclose(rnn_sequence(x, h0, p, dh, sum_wh=False)["dWh"], dWh)
    p4 = {"Wx": rng.standard_normal((D, 4 * H)), "Wh": rng.standard_normal((H, 4 * H)), "b": rng.standard_normal(4 * H)}
    assert not np.allclose(lstm_sequence(x, h0, p4, dh)["dWx"], lstm_sequence(x, h0, p4, dh, "ifgo")["dWx"])


def test_every_backward_check_is_confirmed_by_torch() -> None:
    twins = {c.target: c.twin for c in build(3) if c.target.endswith(("backward", "loss"))}
    assert all(twins.values()) and len(twins) == 7
