"""The pattern catalogue: one case per pattern (it must match, and be the first to match), plus misses."""

from __future__ import annotations

import numpy as np
import pytest

from grading.patterns import CATALOGUE, close, diagnose
from grading.plan import Hints

RNG = np.random.default_rng(3)
G = RNG.standard_normal((4, 3))  # a parameter gradient
B = RNG.standard_normal(3)  # a bias gradient (a sum over 4 examples)
X = RNG.standard_normal((4, 3))  # a batched value, examples in rows
PER = RNG.standard_normal((4, 4, 3))  # per-example contributions to G2 = PER.sum(0)
G2 = PER.sum(axis=0)
S = 1 / (1 + np.exp(-X))
DOUT = RNG.standard_normal((4, 3))

# name → (expected, got, hints)
CASES = {
    "transposed": (G, G.T, Hints(batch=4)),
    "reshape_needed": (B.reshape(3, 1), B, Hints(batch=4)),
    "wrong_layer_order": (G, G * 0.5 + 1, Hints(alternatives={"wrong_layer_order": (G * 0.5 + 1,)})),
    "missing_one_minus_s": (DOUT * S * (1 - S), DOUT * S, Hints(alternatives={"missing_one_minus_s": (DOUT * S,)})),
    "missing_square": (DOUT * (1 - S**2), DOUT * (1 - S), Hints(alternatives={"missing_square": (DOUT * (1 - S),)})),
    "derivative_skipped": (DOUT * S, DOUT, Hints(alternatives={"derivative_skipped": (DOUT,)})),
    "wrong_axis": (B, DOUT.sum(axis=1), Hints(batch=4, alternatives={"wrong_axis": (DOUT.sum(axis=1),)})),
    **{
        name: (G, G * 0.3 - 1, Hints(batch=4, alternatives={name: (G * 0.3 - 1,)}))
        for name in (
            "carried_dh_dropped",
            "dWh_not_summed",
            "tanh_prime_wrong_step",
            "gate_order_swapped",
            "forget_factor_missing",
            "embedding_overwrites",
            "mask_ignored",
            "zero_pad_wrong_axes",
            "bias_left_out",
            "cache_holds_padded_input",
            "conv_padding_cropped_wrong",
            "backward_stride_ignored",
            "dW_not_accumulated",
            "db_not_summed",
            "pool_average_not_divided",
            # the cs231n-a2 catalogue (normalisation, convolution, pooling, dropout)
            "norm_mean_terms_dropped",
            "running_stats_not_stored",
            "momentum_swapped",
            "test_mode_batch_stats",
            "kernel_flipped",
            "padding_not_removed",  # both courses' padding and max-pool bugs, in each course's words
            "pool_grad_everywhere",
            "dropout_not_rescaled",
            "dropout_p_is_keep",
            "dropout_p_is_drop",
        )
    },
    "sign_flipped": (G, -G, Hints(batch=4)),
    "bias_averaged": (B, B / 4, Hints(batch=4, bias_sum=True)),
    "missing_batch_division": (G, G * 4, Hints(batch=4, batch_name="m")),
    "extra_batch_division": (G, G / 4, Hints(batch=4, batch_name="m")),
    "unstable": (X, np.full_like(X, np.nan), Hints(batch=4, large_inputs=True)),
    "partial_batch": (G2, PER[:3].sum(axis=0), Hints(batch=4, per_example=PER)),
    "low_precision": (G, (G + 1e-6).astype(np.float32), Hints(batch=4)),
}


def test_every_pattern_has_a_case():
    assert sorted(CASES) == sorted(p.name for p in CATALOGUE)


@pytest.mark.parametrize("name", list(CASES))
def test_pattern_matches_its_bug_first(name):
    expected, got, hints = CASES[name]
    pattern, hint = diagnose(expected, got, hints)
    assert pattern == name
    assert hint and "{" not in hint


@pytest.mark.parametrize("name", list(CASES))
def test_pattern_does_not_match_the_right_answer(name):
    expected, _, hints = CASES[name]
    test = next(p.test for p in CATALOGUE if p.name == name)
    if name == "unstable":  # it names the cause of any failure in a stability check, and only there
        hints = Hints(batch=4)
    assert not test(np.asarray(expected), np.asarray(expected, dtype=np.float64), hints)


def test_partial_batch_on_batched_values_needs_some_rows_right_and_some_wrong():
    wrong = X.copy()
    wrong[2:] = 0.0
    assert diagnose(X, wrong, Hints(batch=4, batch_axis=0))[0] == "partial_batch"
    assert diagnose(X, X * 1.5, Hints(batch=4, batch_axis=0))[0] == ""


def test_partial_batch_is_not_claimed_when_the_examples_cannot_be_told_apart():
    # 4 examples but only 3 numbers: any vector is a combination of the contributions.
    per = RNG.standard_normal((4, 3))
    assert diagnose(per.sum(axis=0), per[:2].sum(axis=0), Hints(batch=4, per_example=per))[0] != "partial_batch"


def test_the_batch_name_and_size_appear_in_the_hint():
    _, hint = diagnose(G, G * 5, Hints(batch=5, batch_name="m"))
    assert hint.startswith("5 times too large") and "1/m" in hint


def test_no_pattern_falls_back_to_a_generic_description():
    pattern, hint = diagnose(G, G * 0.37, Hints(batch=4))
    assert pattern == "" and "0.37" in hint
    assert diagnose(G, np.zeros_like(G), Hints(batch=4)) == ("", diagnose(G, np.zeros_like(G), Hints())[1])
    assert "all zeros" in diagnose(G, np.zeros_like(G), Hints(batch=4))[1]


def test_close_needs_equal_shapes_and_finite_values():
    assert close(G, G + 1e-9)
    assert not close(G, G.T)
    assert not close(G, np.full_like(G, np.nan))
    assert not close(G, G + 1e-3)
