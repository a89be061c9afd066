"""The catalogue of known bugs, as data: a name, a test on the numbers, a hint for the student.

A test gets the oracle's value, the student's value and the check's :class:`Hints` and
says whether the student's value is what that bug produces. Some bugs are recognised from
the numbers alone (a sign flip, a factor of ``N``); others need the oracle's help: it
computes what a buggy version returns (``Hints.alternatives[pattern name]``) or each
example's contribution (``Hints.per_example``). :func:`diagnose` tries the patterns in
catalogue order and falls back to :func:`oracle.diagnosis.array_pattern` for a generic
description ("scaled by 0.37", "all zeros").

Hints are templates: ``{m}`` is the batch-size name of the course (``N`` or ``m``),
``{batch}`` its value, ``{got_shape}`` and ``{expected_shape}`` the two shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from grading.plan import Hints
from oracle.diagnosis import array_pattern

#: Relative closeness (of the largest magnitude) at which a bug's values count as a match.
MATCH_RTOL = 1e-6

PatternTest = Callable[[np.ndarray, np.ndarray, Hints], bool]
#: The variables the recurrent and convolution hints name, in CS231n's words; a check's ``Hints.terms``
#: gives its course's.
COURSE_TERMS = {
    "dh": "dh",
    "dh_t": "dh[:, t]",
    "dprev_h": "dprev_h",
    "carried_more": "",
    "dWh": "dWh",
    "next_h": "next_h",
    "gate_rule": "read in a different order than the forward pass wrote them: CS231n's columns are i, f, o, g",
    "dx": "dx",
    "dx_unpadded": "dx_pad[:, :, pad:-pad, pad:-pad]",
    "dout": "dout",
    "pool_mask": "a mask window == window.max()",
}


@dataclass(frozen=True)
class Pattern:
    """One known bug: ``test(expected, got, hints) -> bool`` and the hint shown when it matches."""

    name: str
    test: PatternTest
    hint: str | Callable[[np.ndarray, np.ndarray, Hints], str]


def close(a: np.ndarray, b: np.ndarray, rtol: float = MATCH_RTOL) -> bool:
    """Same shape and every entry within ``rtol`` of the larger of the two arrays' magnitudes."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return False
    scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)), 1e-300)
    return bool(np.all(np.abs(a - b) <= rtol * scale))


def _alternative(name: str) -> PatternTest:
    """A test that matches when ``got`` equals what the oracle computed for the bug ``name``."""

    def test(expected: np.ndarray, got: np.ndarray, hints: Hints) -> bool:
        return any(close(got, alt) for alt in hints.alternatives.get(name, ()))

    return test


def _reshape_needed(expected: np.ndarray, got: np.ndarray, hints: Hints) -> bool:
    return got.shape != expected.shape and got.size == expected.size and close(got.reshape(expected.shape), expected)


def _transposed(expected: np.ndarray, got: np.ndarray, hints: Hints) -> bool:
    return (
        expected.ndim == 2 and got.shape == expected.shape[::-1] and not close(got, expected) and close(got, expected.T)
    )


def _sign_flipped(expected: np.ndarray, got: np.ndarray, hints: Hints) -> bool:
    return bool(np.any(expected)) and (close(got, -expected) or _alternative("sign_flipped")(expected, got, hints))


def _bias_averaged(expected: np.ndarray, got: np.ndarray, hints: Hints) -> bool:
    return hints.bias_sum and hints.batch > 1 and close(got, expected / hints.batch)


def _scaled(factor: Callable[[int], float]) -> PatternTest:
    def test(expected: np.ndarray, got: np.ndarray, hints: Hints) -> bool:
        return hints.batch > 1 and bool(np.any(expected)) and close(got, expected * factor(hints.batch))

    return test


def _partial_batch(expected: np.ndarray, got: np.ndarray, hints: Hints) -> bool:
    """Right for some examples only (batched values), or a sum over a strict subset of the examples."""
    if got.shape != expected.shape or not np.all(np.isfinite(got)) or hints.batch < 2:
        return False
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    if hints.batch_axis is not None:
        errors = np.moveaxis(np.abs(got - expected), hints.batch_axis, 0).reshape(hints.batch, -1).max(axis=1)
        good = errors <= MATCH_RTOL * scale
        return bool(good.any() and not good.all())
    if hints.per_example is None:
        return False
    basis = np.asarray(hints.per_example, dtype=np.float64).reshape(hints.batch, -1).T
    if basis.shape[0] < hints.batch or np.linalg.matrix_rank(basis) < hints.batch:
        return False
    weights, *_ = np.linalg.lstsq(basis, got.ravel().astype(np.float64), rcond=None)
    used = np.abs(weights) > 0.5
    return (
        bool(used.any() and not used.all())
        and close(basis @ weights, got.ravel())
        and bool(np.allclose(weights[used], weights[used][0], rtol=1e-6))
    )


def _low_precision(expected: np.ndarray, got: np.ndarray, hints: Hints) -> bool:
    return got.dtype.kind == "f" and got.dtype.itemsize < 8 and close(got, expected, rtol=1e-4)


CATALOGUE: tuple[Pattern, ...] = (
    Pattern("transposed", _transposed, "transposed: shape {got_shape} holds the transpose of the expected result"),
    Pattern(
        "reshape_needed",
        _reshape_needed,
        "the values are right, only the shape is wrong: keep the summed axis (keepdims=True) "
        "or reshape to {expected_shape}",
    ),
    Pattern(
        "wrong_layer_order",
        _alternative("wrong_layer_order"),
        "this is the gradient of a neighbouring layer: the layer numbers are off by one when storing the gradients",
    ),
    Pattern(
        "missing_one_minus_s",
        _alternative("missing_one_minus_s"),
        "missing (1 − s) in the sigmoid derivative: σ'(z) = s·(1 − s), not s",
    ),
    Pattern("missing_square", _alternative("missing_square"), "the derivative of tanh is 1 − tanh², not 1 − tanh"),
    Pattern(
        "derivative_skipped",
        _alternative("derivative_skipped"),
        "the upstream gradient is passed through unchanged: multiply it by the activation's derivative",
    ),
    Pattern("wrong_axis", _alternative("wrong_axis"), "summed or normalised along the wrong axis"),
    Pattern(
        "carried_dh_dropped",
        _alternative("carried_dh_dropped"),
        "the gradient carried back from step t+1 is missing: each step's {dh} is the upstream {dh_t} "
        "plus the {dprev_h} returned by the step after it{carried_more}",
    ),
    Pattern(
        "dWh_not_summed",
        _alternative("dWh_not_summed"),
        "{dWh} is one step's only: the shared weights' gradients are summed over every time step (+=, not =)",
    ),
    Pattern(
        "tanh_prime_wrong_step",
        _alternative("tanh_prime_wrong_step"),
        "tanh' is taken at the wrong step: use 1 − {next_h}² of this step's own output, not the previous state",
    ),
    Pattern(
        "gate_order_swapped",
        _alternative("gate_order_swapped"),
        "the gates are mixed up: {gate_rule}",
    ),
    Pattern(
        "forget_factor_missing",
        _alternative("forget_factor_missing"),
        "dc_prev lacks the forget gate: the cell state reaches the previous step through c_next = ft * c_prev + …, "
        "so dc_prev = (dc_next + da_next * ot * (1 − tanh²(c_next))) * ft",
    ),
    Pattern(
        "embedding_overwrites",
        _alternative("embedding_overwrites"),
        "a word used at several positions keeps only one position's gradient: add them up (np.add.at), "
        "dW[x] = dout overwrites",
    ),
    Pattern(
        "mask_ignored",
        _alternative("mask_ignored"),
        "the mask is ignored: steps where mask is False must add nothing to the loss and get zero gradient",
    ),
    # the channels-last convolution notebook (grading/oracle_nhwc.py)
    Pattern(
        "zero_pad_wrong_axes",
        _alternative("zero_pad_wrong_axes"),
        "the wrong axes are padded: pad only the height and width of each image, never the examples or the "
        "channels — np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))",
    ),
    Pattern("bias_left_out", _alternative("bias_left_out"), "the bias b is not added: Z = Σ a_slice_prev·W + b"),
    Pattern(
        "cache_holds_padded_input",
        _alternative("cache_holds_padded_input"),
        "the cache holds the padded input: store A_prev itself, cache = (A_prev, W, b, hparameters) — "
        "conv_backward pads it again",
    ),
    Pattern(
        "conv_padding_cropped_wrong",
        _alternative("conv_padding_cropped_wrong"),
        "the padding is cut from one end only: remove pad rows and columns from both sides of the height and "
        "width (da_prev_pad[pad:-pad, pad:-pad, :]), not da_prev_pad[:n_H_prev, :n_W_prev, :]",
    ),
    Pattern(
        "backward_stride_ignored",
        _alternative("backward_stride_ignored"),
        "the backward pass ignores the stride: the window of output (h, w) starts at vert_start = h * stride, "
        "horiz_start = w * stride, as in the forward pass",
    ),
    Pattern(
        "dW_not_accumulated",
        _alternative("dW_not_accumulated"),
        "dW holds only part of its sum: it adds up every window of every example — initialise dW once, before "
        "the loop over the examples, and accumulate with +=",
    ),
    Pattern(
        "db_not_summed",
        _alternative("db_not_summed"),
        "db is not summed over all of dZ: it adds up dZ over the examples and both spatial axes, shape "
        "(1, 1, 1, n_C) — np.sum(dZ, axis=(0, 1, 2)) reshaped, or += inside every loop",
    ),
    Pattern(
        "pool_average_not_divided",
        _alternative("pool_average_not_divided"),
        "average pooling's gradient is not divided by the window size: each of the n_H·n_W (f·f) positions gets "
        "dz / (n_H·n_W) — see distribute_value",
    ),
    Pattern(
        "norm_mean_terms_dropped",
        _alternative("norm_mean_terms_dropped"),
        "the mean and the variance depend on x too: dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / √(σ² + ε); "
        "dx̂ / √(σ² + ε) alone drops the paths through μ and σ²",
    ),
    Pattern(
        "running_stats_not_stored",
        _alternative("running_stats_not_stored"),
        "the running statistics are not updated: store them back in bn_param "
        "(bn_param['running_mean'] = running_mean) in train mode",
    ),
    Pattern(
        "momentum_swapped",
        _alternative("momentum_swapped"),
        "momentum weighs the old running value: running = momentum · running + (1 − momentum) · batch statistic",
    ),
    Pattern(
        "test_mode_batch_stats",
        _alternative("test_mode_batch_stats"),
        "test mode normalises with the batch's own statistics: use running_mean and running_var instead",
    ),
    Pattern(
        "kernel_flipped",
        _alternative("kernel_flipped"),
        "the kernel is flipped once too often (or not at all): the forward pass is a correlation that uses w as is, "
        "so dx scatters dout · w[f] back over each window and dw sums dout · window; written as a full convolution, "
        "dx needs w rotated by 180° exactly once",
    ),
    Pattern(
        "padding_not_removed",
        _alternative("padding_not_removed"),
        "{dx} still has the padding: it is the gradient of the padded input, cut pad rows and columns off both "
        "sides of the height and width ({dx_unpadded})",
    ),
    Pattern(
        "pool_grad_everywhere",
        _alternative("pool_grad_everywhere"),
        "the gradient goes to every position of the pooling window: max pooling passes {dout} only to the "
        "position of the window's maximum ({pool_mask})",
    ),
    Pattern(
        "dropout_not_rescaled",
        _alternative("dropout_not_rescaled"),
        "the kept units are not divided by the keep probability: inverted dropout scales by 1/(keep probability) at "
        "train time, in the forward and the backward pass alike, so that test time needs no change",
    ),
    Pattern(
        "dropout_p_is_keep",
        _alternative("dropout_p_is_keep"),
        "dropout_param['p'] is the probability of keeping a unit in this assignment (mask = rand < p, then divide "
        "by p); this code treats it as the probability of dropping one",
    ),
    Pattern(
        "dropout_p_is_drop",
        _alternative("dropout_p_is_drop"),
        "dropout_param['p'] is the probability of dropping a unit in this assignment (the older handouts: mask = "
        "rand >= p, then divide by 1 − p); this code treats it as the probability of keeping one",
    ),
    Pattern(
        "sign_flipped",
        _sign_flipped,
        "sign flipped: (target − prediction) instead of (prediction − target), or + where − belongs",
    ),
    Pattern(
        "bias_averaged",
        _bias_averaged,
        "the bias gradient is averaged over the {batch} examples instead of summed",
    ),
    Pattern(
        "missing_batch_division",
        _scaled(lambda n: float(n)),
        "{batch} times too large: the 1/{m} (batch size {m} = {batch}) is missing",
    ),
    Pattern(
        "extra_batch_division",
        _scaled(lambda n: 1.0 / n),
        "{batch} times too small: divided by {m} = {batch} once too often",
    ),
    Pattern("unstable", lambda expected, got, hints: hints.large_inputs, lambda e, g, h: unstable_hint(g, h)),
    Pattern(
        "partial_batch",
        _partial_batch,
        "right for some examples only: only part of the batch is used (a loop bound or a slice?)",
    ),
    Pattern("low_precision", _low_precision, "computed in single precision: keep float64 throughout"),
)


def unstable_hint(got: np.ndarray, hints: Hints) -> str:
    """What goes wrong at inputs of magnitude ~1000, for the formula of the check: overflow or underflow."""
    values = np.asarray(got, dtype=np.float64) if got.dtype.kind in "biuf" else np.zeros(0)
    if hints.formula == "softmax":
        if np.isnan(values).any():
            return (
                "wrong only for logits of magnitude ~1000: exp of a large logit overflows to inf (and inf/inf is "
                "NaN) — subtract each row's maximum before exp (log-sum-exp)"
            )
        if np.isinf(values).any():
            return (
                "wrong only for logits of magnitude ~1000: after subtracting the maximum, exp of a very negative "
                "logit underflows to 0 and log(0) = −inf — compute log-probabilities as shifted − log Σ exp(shifted) "
                "(log-sum-exp) instead of taking the log of the probabilities"
            )
        return "wrong only for logits of magnitude ~1000: compute the loss from log-sum-exp of the shifted logits"
    if hints.formula in ("sigmoid", "tanh"):
        return (
            f"wrong only for inputs of magnitude ~1000: exp overflows to inf (inf/inf is NaN) — evaluate the "
            f"{hints.formula} with exp(−|x|), which never overflows"
        )
    return "wrong only for inputs of magnitude ~1000: an exp overflows or underflows"


def diagnose(expected: np.ndarray, got: np.ndarray, hints: Hints) -> tuple[str, str]:
    """``(pattern name, hint)`` of the first catalogue pattern that matches, else ``("", generic hint or "")``."""
    expected = np.asarray(expected)
    got = np.asarray(got)
    fields = {"m": hints.batch_name, "batch": hints.batch, "got_shape": got.shape, "expected_shape": expected.shape}
    fields |= COURSE_TERMS | dict(hints.terms)
    for pattern in CATALOGUE:
        if pattern.test(expected, got, hints):
            hint = pattern.hint if isinstance(pattern.hint, str) else pattern.hint(expected, got, hints)
            return pattern.name, hint.format(**fields)
    if got.dtype.kind not in "biuf" or got.size == 0 or expected.size == 0:
        return "", ""
    generic = array_pattern(got, expected, batch=hints.batch, outputs=1, batch_axis=hints.batch_axis, rtol=MATCH_RTOL)
    return "", generic
