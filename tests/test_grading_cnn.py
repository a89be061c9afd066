"""The ``cs231n-a2`` assignment: a correct course-style A2 ``layers.py`` gets full points, and each classic
normalisation, convolution, pooling and dropout bug fails the right function with its plain-words hint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grading.assignment import builtin_names, resolve
from grading.grader import grade_submission
from grading.oracle_cnn import FUNCTIONS, build
from grading.patterns import diagnose
from grading.sandbox import SandboxLimits

COURSE = Path(__file__).parent / "submissions" / "courses" / "cs231n_a2_layers.py"
LIMITS = SandboxLimits(function_seconds=20.0, submission_seconds=120.0)

# bug → ([(text of the correct file, what replaces it), ...], functions that must fail, pattern, words of the hint)
BUGS = {
    "batchnorm backward without the mean terms": (
        [("    dsq = np.ones_like(x) * dvar / N\n    dx_centered += 2 * x_centered * dsq\n"
          "    dmu = -np.sum(dx_centered, axis=0)\n    dx = dx_centered + dmu / N\n", "    dx = dx_centered\n")],
        {"batchnorm_backward"}, "norm_mean_terms_dropped", "paths through μ and σ²",
    ),
    "conv backward with the kernel flipped in dx": (
        [("+= w[f] * dout[n, f, i, j]", "+= w[f, :, ::-1, ::-1] * dout[n, f, i, j]")],
        {"conv_backward_naive"}, "kernel_flipped", "rotated by 180° exactly once",
    ),
    "conv backward with the window flipped in dw": (
        [("dw[f] += window * dout[n, f, i, j]", "dw[f] += window[:, ::-1, ::-1] * dout[n, f, i, j]")],
        {"conv_backward_naive"}, "kernel_flipped", "correlation",
    ),
    "conv backward keeping the padding on dx": (
        [("    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]\n", "    dx = dx_pad\n")],
        {"conv_backward_naive"}, "padding_not_removed", "dx still has the padding",
    ),
    "max-pool backward to every window position": (
        [("+= mask * dout[n, c, i, j]", "+= dout[n, c, i, j]")],
        {"max_pool_backward_naive"}, "pool_grad_everywhere", "passes dout only to the position",
    ),
    "dropout not rescaled (forward and backward)": (
        [("mask = (np.random.rand(*x.shape) < p) / p", "mask = np.random.rand(*x.shape) < p")],
        {"dropout_forward", "dropout_backward"}, "dropout_not_rescaled", "divided by the keep probability",
    ),
    "dropout rescaled in the forward pass only": (
        [("mask = (np.random.rand(*x.shape) < p) / p\n        out = x * mask\n",
          "mask = np.random.rand(*x.shape) < p\n        out = x * mask / p\n")],
        {"dropout_backward"}, "dropout_not_rescaled", "backward pass alike",
    ),
    "batchnorm running statistics never stored": (
        [('    bn_param["running_mean"] = running_mean\n    bn_param["running_var"] = running_var\n', "")],
        {"batchnorm_forward", "spatial_batchnorm_forward"}, "running_stats_not_stored", "store them back",
    ),
    "batchnorm momentum the wrong way round": (
        [("        running_mean = momentum * running_mean + (1 - momentum) * sample_mean\n",
          "        running_mean = (1 - momentum) * running_mean + momentum * sample_mean\n"),
         ("        running_var = momentum * running_var + (1 - momentum) * sample_var\n",
          "        running_var = (1 - momentum) * running_var + momentum * sample_var\n")],
        {"batchnorm_forward", "spatial_batchnorm_forward"}, "momentum_swapped", "weighs the old running value",
    ),
    "layernorm backward without the mean terms": (
        [("(D * g - g.sum(axis=1, keepdims=True) - x_hat * (g * x_hat).sum(axis=1, keepdims=True)) / (D * std)",
          "g / std")],
        {"layernorm_backward"}, "norm_mean_terms_dropped", "paths through μ and σ²",
    ),
    "batchnorm test mode with the batch statistics": (
        [("        x_hat = (x - running_mean) / np.sqrt(running_var + eps)\n",
          "        x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)\n")],
        {"batchnorm_forward", "spatial_batchnorm_forward"}, "test_mode_batch_stats", "running_mean and running_var",
    ),
}  # fmt: skip


def test_a_correct_a2_layers_file_gets_full_points() -> None:
    assert {"cs231n-a2", "cs231n-a2-2017"} <= set(builtin_names())
    assignment = resolve("cs231n-a2")
    assert [f.name for f in assignment.functions] == list(FUNCTIONS) and assignment.dropout_p == "keep"
    result = grade_submission(COURSE, "cs231n-a2", 0, LIMITS)
    assert [(r.check, r.quantity, r.status, r.message) for r in result.rows if not r.passed] == []
    assert result.passed and result.score == result.max_score == 41
    assert {r.target for r in result.rows} == set(FUNCTIONS)
    quantities = {(r.check, r.quantity) for r in result.rows}
    assert {("batchnorm_forward", "running_mean"), ("batchnorm_forward: test mode", "out"),
            ("dropout_forward", "kept fraction"), ("dropout_backward: test mode", "dx")} <= quantities  # fmt: skip


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_each_a2_bug_fails_its_function_with_its_hint(bug: str, tmp_path: Path) -> None:
    replacements, functions, pattern, words = BUGS[bug]
    text = COURSE.read_text(encoding="utf-8")
    for right, wrong in replacements:
        assert text.count(right) == 1, bug
        text = text.replace(right, wrong)
    path = tmp_path / "layers.py"
    path.write_text(text, encoding="utf-8")
    result = grade_submission(path, "cs231n-a2", 0, LIMITS)
    failing = [r for r in result.rows if not r.passed]
    assert {r.target for r in failing} == functions, [(r.target, r.quantity, r.message) for r in failing]
    for target in functions:
        assert any(r.target == target and r.pattern == pattern and words in r.diagnosis for r in failing), [
            (r.target, r.quantity, r.pattern, r.diagnosis) for r in failing
        ]


def test_every_bug_the_oracle_names_differs_from_the_right_answer() -> None:
    for check in build(5):
        for expect in check.expects:
            for bug, values in expect.hints.alternatives.items():
                for value in values:
                    same = value.shape == expect.value.shape and np.allclose(value, expect.value)
                    assert not same, (check.name, expect.quantity, bug)


def test_every_backward_check_is_confirmed_by_torch() -> None:
    twins = {c.target: c.twin for c in build(2) if "backward" in c.target or c.target.endswith("loss")}
    assert {t for t, twin in twins.items() if not twin} == {"dropout_backward"}  # checked through its own mask
    assert twins["conv_backward_naive"].startswith("conv_backward:")


OLD = Path(__file__).parent / "submissions" / "courses" / "cs231n_a2_2017_layers.py"


def test_a_2017_layers_file_gets_full_points_on_the_2017_preset() -> None:
    assignment = resolve("cs231n-a2-2017")
    assert assignment.dropout_p == "drop"
    assert {f.name for f in assignment.functions} == set(FUNCTIONS) - {
        "layernorm_forward", "layernorm_backward", "spatial_groupnorm_forward", "spatial_groupnorm_backward",
    }  # fmt: skip
    result = grade_submission(OLD, "cs231n-a2-2017", 0, LIMITS)
    assert [(r.check, r.quantity, r.status, r.message) for r in result.rows if not r.passed] == []
    assert result.passed and result.score == result.max_score == 33


@pytest.mark.parametrize(
    ("course", "assignment", "pattern", "kept"),
    [
        (OLD, "cs231n-a2", "dropout_p_is_keep", "expected 0.3"),  # 2017 code (p drops) on the 2018+ handout
        (COURSE, "cs231n-a2-2017", "dropout_p_is_drop", "expected 0.7"),  # 2018+ code (p keeps) on the 2017 one
    ],
    ids=["p keeps", "p drops"],
)
def test_each_dropout_p_convention_fails_the_other_reading(course, assignment, pattern, kept) -> None:
    result = grade_submission(course, assignment, 0, LIMITS)
    failing = [r for r in result.rows if not r.passed and r.target.startswith("dropout")]
    assert {(r.check, r.quantity) for r in failing} == {
        ("dropout_forward", "out"), ("dropout_forward", "kept fraction"), ("dropout_backward", "dx"),
    }  # fmt: skip
    assert all(r.pattern == pattern for r in failing), [(r.quantity, r.pattern) for r in failing]
    fraction = next(r for r in failing if r.quantity == "kept fraction")
    assert kept in fraction.message
    tests_mode = [r for r in result.rows if r.check.endswith("test mode") and r.target.startswith("dropout")]
    assert tests_mode and all(r.passed for r in tests_mode)


def test_dropout_is_checked_through_the_submissions_own_mask(tmp_path: Path) -> None:
    """Another random generator (no seed, binomial draws) passes; a cache without the mask is named."""
    text = COURSE.read_text(encoding="utf-8")
    own = tmp_path / "own_rng.py"
    own.write_text(
        text.replace(
            "mask = (np.random.rand(*x.shape) < p) / p",
            "mask = np.random.default_rng().binomial(1, p, size=x.shape) / p",
        ),
        encoding="utf-8",
    )
    result = grade_submission(own, "cs231n-a2", 0, LIMITS)
    assert result.passed and result.score == result.max_score
    hidden = tmp_path / "no_mask.py"
    hidden.write_text(
        text.replace("    cache = (dropout_param, mask)\n", "    cache = (dropout_param, None)\n")
        .replace("        dx = dout * mask\n", "        dx = dout * (dropout_param['last'] != 0) / 0.3\n")
        .replace("        out = x * mask\n", "        out = x * mask\n        dropout_param['last'] = out\n"),
        encoding="utf-8",
    )
    failing = [r for r in grade_submission(hidden, "cs231n-a2", 0, LIMITS).rows if not r.passed]
    assert {r.target for r in failing} == {"dropout_forward", "dropout_backward"}
    assert all("found no dropout mask in the cache" in r.message for r in failing)


def test_refbp_assignments_lists_both_presets_with_their_conventions(capsys) -> None:
    from refbp.cli import main

    assert main(["assignments"]) == 0
    out = "\n" + capsys.readouterr().out
    assert "\ncs231n-a2 (style cnn" in out and "\ncs231n-a2-2017 (style cnn" in out
    assert "  - spatial_groupnorm_backward: 3 points" in out and "  - conv_backward_naive: 3 points" in out
    assert "  dropout p: keep (dropout_param['p'] is the probability of keeping a unit)" in out
    assert "  dropout p: drop (dropout_param['p'] is the probability of dropping a unit)" in out


def test_a_full_convolution_without_the_rotation_is_the_flipped_kernel_bug() -> None:
    """dx written as the "full" convolution of dout with w as is (the rotation forgotten, or done twice) equals
    the scatter form with w flipped: the oracle's kernel_flipped value, whichever way the student wrote it."""
    # the full-convolution form below is for stride 1: the first seed whose conv check has stride 1, pad 1
    check = next(c for seed in range(40) for c in build(seed) if c.twin == "conv_backward:1,1")
    x, w, dout = check.inputs["x"], check.inputs["w"], check.inputs["dout"]
    k, pad = w.shape[2], 1
    wide = np.pad(dout, ((0, 0), (0, 0), (k - 1, k - 1), (k - 1, k - 1)))
    dx_pad = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * pad, x.shape[3] + 2 * pad))
    for i in range(dx_pad.shape[2]):
        for j in range(dx_pad.shape[3]):
            dx_pad[:, :, i, j] = np.einsum("nfhw,fchw->nc", wide[:, :, i : i + k, j : j + k], w)  # not rotated
    got = dx_pad[:, :, pad:-pad, pad:-pad]
    expect = next(e for e in check.expects if e.quantity == "dx")
    assert diagnose(expect.value, got, expect.hints)[0] == "kernel_flipped"
    rotated = np.zeros_like(dx_pad)
    for i in range(dx_pad.shape[2]):
        for j in range(dx_pad.shape[3]):
            rotated[:, :, i, j] = np.einsum("nfhw,fchw->nc", wide[:, :, i : i + k, j : j + k], w[:, :, ::-1, ::-1])
    np.testing.assert_allclose(rotated[:, :, pad:-pad, pad:-pad], expect.value, rtol=1e-12, atol=1e-12)


def test_refbp_check_grades_the_2017_file_with_its_preset_and_interface_cnn_means_cs231n_a2(tmp_path, capsys) -> None:
    from refbp.cli import main

    assert main(["check", str(OLD), "--assignment", "cs231n-a2-2017", "--timeout", "20"]) == 0
    assert "PASS: cs231n_a2_2017_layers.py: 33/33 (cs231n-a2-2017, seed 0" in capsys.readouterr().out
    assert resolve("cnn").name == "cs231n-a2"
