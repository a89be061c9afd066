"""Correct submissions in several styles pass; each buggy one fails on the right function and quantity.

A buggy submission is a correct one with one bug put in: the table below names the base
file, the exact text replaced (it must occur exactly once), the check and quantity that
must fail, the pattern the diagnosis must name (``""`` where no catalogue pattern is
expected), and every function allowed to fail as a consequence.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from grading.grader import SubmissionResult, grade_folder, grade_submission
from grading.sandbox import SandboxLimits

SUBMISSIONS = Path(__file__).parent / "submissions"
LIMITS = SandboxLimits(function_seconds=20.0, submission_seconds=120.0)

CORRECT = [
    ("layers", "layers/vectorised.py"),
    ("layers", "layers/loops.py"),
    ("deep", "deep/vectorised.py"),
    ("deep", "deep/loops.py"),
    ("spec", "spec/general.py"),
]


# Correct in another valid way: (name, interface, base, old text, new text), every occurrence replaced.
CORRECT_VARIANTS = [
    ("relu_ge_mask", "layers", "layers/vectorised.py", "return dout * (cache > 0)", "return dout * (cache >= 0)"),
    (
        "softmax_loss_from_log_sum_exp",
        "layers",
        "layers/vectorised.py",
        "loss = -logp[np.arange(n), y].mean()",
        "loss = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(n), y])",
    ),
    ("spec_prefixed_keys", "spec", "spec/general.py", 'grads[f"', 'grads[f"d'),
    ("deep_db_mean", "deep", "deep/vectorised.py", "1 / m * np.sum(dZ, axis=1, keepdims=True)", "dZ.mean(1)[:, None]"),
]


class Bug(NamedTuple):
    name: str
    interface: str
    base: str
    old: str
    new: str
    check: str
    quantity: str
    pattern: str
    fails: tuple[str, ...]
    status: str = ""  # the status the row must have, where it matters (else any failing one)


DEEP_LINEAR = ("linear_backward", "linear_activation_backward", "L_model_backward")

BUGS = [
    # ----------------------------------------------------------------- layers
    Bug(
        "affine_dw_transposed",
        "layers",
        "layers/vectorised.py",
        "dw = x.reshape(x.shape[0], -1).T @ dout",
        "dw = (x.reshape(x.shape[0], -1).T @ dout).T",
        "affine_backward",
        "dw",
        "transposed",
        ("affine_backward",),
    ),
    Bug(
        "affine_db_averaged",
        "layers",
        "layers/vectorised.py",
        "db = dout.sum(axis=0)",
        "db = dout.mean(axis=0)",
        "affine_backward",
        "db",
        "bias_averaged",
        ("affine_backward",),
    ),
    Bug(
        "affine_db_wrong_axis",
        "layers",
        "layers/vectorised.py",
        "db = dout.sum(axis=0)",
        "db = dout.sum(axis=1)",
        "affine_backward",
        "db",
        "wrong_axis",
        ("affine_backward",),
    ),
    Bug(
        "affine_dx_sign",
        "layers",
        "layers/vectorised.py",
        "dx = (dout @ w.T).reshape(x.shape)",
        "dx = -(dout @ w.T).reshape(x.shape)",
        "affine_backward",
        "dx",
        "sign_flipped",
        ("affine_backward",),
    ),
    Bug(
        "affine_dx_not_reshaped",
        "layers",
        "layers/vectorised.py",
        "dx = (dout @ w.T).reshape(x.shape)",
        "dx = dout @ w.T",
        "affine_backward",
        "dx",
        "reshape_needed",
        ("affine_backward",),
    ),
    Bug(
        "affine_dw_partial_batch",
        "layers",
        "layers/vectorised.py",
        "dw = x.reshape(x.shape[0], -1).T @ dout",
        "dw = x.reshape(x.shape[0], -1)[:-1].T @ dout[:-1]",
        "affine_backward",
        "dw",
        "partial_batch",
        ("affine_backward",),
    ),
    Bug(
        "affine_dx_partial_batch",
        "layers",
        "layers/vectorised.py",
        "dx = (dout @ w.T).reshape(x.shape)",
        "dx = (dout @ w.T).reshape(x.shape)\n    dx[1:] = 0",
        "affine_backward",
        "dx",
        "partial_batch",
        ("affine_backward",),
    ),
    Bug(
        "relu_no_mask",
        "layers",
        "layers/vectorised.py",
        "return dout * (cache > 0)",
        "return dout",
        "relu_backward",
        "dx",
        "derivative_skipped",
        ("relu_backward",),
    ),
    Bug(
        "relu_mutates_dout",
        "layers",
        "layers/vectorised.py",
        "return dout * (cache > 0)",
        "dout[cache <= 0] = 0\n    return dout",
        "relu_backward",
        "inputs unchanged",
        "",
        ("relu_backward",),
    ),
    Bug(
        "sigmoid_missing_one_minus_s",
        "layers",
        "layers/vectorised.py",
        "return dout * cache * (1 - cache)",
        "return dout * cache",
        "sigmoid_backward",
        "dx",
        "missing_one_minus_s",
        ("sigmoid_backward",),
    ),
    Bug(
        "sigmoid_unstable",
        "layers",
        "layers/vectorised.py",
        "out = 1 / (1 + np.exp(-x))",
        "out = np.exp(x) / (1 + np.exp(x))",
        "sigmoid_forward: large inputs",
        "out",
        "unstable",
        ("sigmoid_forward",),
    ),
    Bug(
        "tanh_missing_square",
        "layers",
        "layers/vectorised.py",
        "return dout * (1 - cache**2)",
        "return dout * (1 - cache)",
        "tanh_backward",
        "dx",
        "missing_square",
        ("tanh_backward",),
    ),
    Bug(
        "softmax_dx_not_divided",
        "layers",
        "layers/vectorised.py",
        "return loss, dx / n",
        "return loss, dx",
        "softmax_loss",
        "dx",
        "missing_batch_division",
        ("softmax_loss",),
    ),
    Bug(
        "softmax_loss_summed",
        "layers",
        "layers/vectorised.py",
        "loss = -logp[np.arange(n), y].mean()",
        "loss = -logp[np.arange(n), y].sum()",
        "softmax_loss",
        "loss",
        "missing_batch_division",
        ("softmax_loss",),
    ),
    Bug(
        "softmax_unshifted",
        "layers",
        "layers/vectorised.py",
        "shifted = x - x.max(axis=1, keepdims=True)",
        "shifted = x",
        "softmax_loss: large logits",
        "dx",
        "unstable",
        ("softmax_loss",),
    ),
    Bug(
        "softmax_wrong_axis",
        "layers",
        "layers/vectorised.py",
        "shifted = x - x.max(axis=1, keepdims=True)\n"
        "    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))",
        "shifted = x - x.max(axis=0, keepdims=True)\n"
        "    logp = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))",
        "softmax_loss",
        "dx",
        "wrong_axis",
        ("softmax_loss",),
    ),
    # ------------------------------------------------------------------- deep
    Bug(
        "deep_dw_missing_m",
        "deep",
        "deep/vectorised.py",
        "dW = 1 / m * np.dot(dZ, A_prev.T)",
        "dW = np.dot(dZ, A_prev.T)",
        "linear_backward",
        "dW",
        "missing_batch_division",
        DEEP_LINEAR,
    ),
    Bug(
        "deep_db_no_keepdims",
        "deep",
        "deep/vectorised.py",
        "db = 1 / m * np.sum(dZ, axis=1, keepdims=True)",
        "db = 1 / m * np.sum(dZ, axis=1)",
        "linear_backward",
        "db",
        "reshape_needed",
        DEEP_LINEAR,
    ),
    Bug(
        "deep_db_wrong_axis",
        "deep",
        "deep/vectorised.py",
        "db = 1 / m * np.sum(dZ, axis=1, keepdims=True)",
        "db = 1 / m * np.sum(dZ, axis=0, keepdims=True)",
        "linear_backward",
        "db",
        "wrong_axis",
        DEEP_LINEAR,
    ),
    Bug(
        "deep_dA_divided_by_m",
        "deep",
        "deep/vectorised.py",
        "dA_prev = np.dot(W.T, dZ)",
        "dA_prev = np.dot(W.T, dZ) / m",
        "linear_backward",
        "dA_prev",
        "extra_batch_division",
        DEEP_LINEAR,
    ),
    Bug(
        "deep_dw_partial_batch",
        "deep",
        "deep/vectorised.py",
        "dW = 1 / m * np.dot(dZ, A_prev.T)",
        "dW = 1 / m * np.dot(dZ[:, 1:], A_prev[:, 1:].T)",
        "linear_backward",
        "dW",
        "partial_batch",
        DEEP_LINEAR,
    ),
    Bug(
        "deep_sigmoid_missing_one_minus_s",
        "deep",
        "deep/vectorised.py",
        "return dA * s * (1 - s)",
        "return dA * s",
        "sigmoid_backward",
        "dZ",
        "missing_one_minus_s",
        ("sigmoid_backward", "linear_activation_backward", "L_model_backward"),
    ),
    Bug(
        "deep_relu_no_mask",
        "deep",
        "deep/vectorised.py",
        "dZ[Z <= 0] = 0",
        "pass",
        "relu_backward",
        "dZ",
        "derivative_skipped",
        ("relu_backward", "linear_activation_backward", "L_model_backward"),
    ),
    Bug(
        "deep_relu_aliases_dA",
        "deep",
        "deep/vectorised.py",
        "dZ = np.array(dA, copy=True)",
        "dZ = dA",
        "relu_backward",
        "inputs unchanged",
        "",
        ("relu_backward", "linear_activation_backward", "L_model_backward"),
    ),
    Bug(
        "deep_grads_wrong_layer",
        "deep",
        "deep/vectorised.py",
        'grads["dW" + str(l + 1)] = dW_temp',
        'grads["dW" + str(l)] = dW_temp',
        "L_model_backward",
        "grads['dW2']",
        "wrong_layer_order",
        ("L_model_backward",),
    ),
    Bug(
        "deep_dAL_sign",
        "deep",
        "deep/vectorised.py",
        "dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))",
        "dAL = np.divide(Y, AL) - np.divide(1 - Y, 1 - AL)",
        "L_model_backward",
        "grads['dA3']",
        "sign_flipped",
        ("L_model_backward",),
    ),
    Bug(
        "deep_cost_sign",
        "deep",
        "deep/vectorised.py",
        "cost = -1 / m * np.sum(",
        "cost = 1 / m * np.sum(",
        "compute_cost",
        "cost",
        "sign_flipped",
        ("compute_cost",),
    ),
    Bug(
        "deep_cost_not_averaged",
        "deep",
        "deep/vectorised.py",
        "cost = -1 / m * np.sum(",
        "cost = -np.sum(",
        "compute_cost",
        "cost",
        "missing_batch_division",
        ("compute_cost",),
    ),
    Bug(
        "deep_update_ascent",
        "deep",
        "deep/vectorised.py",
        '= parameters["W" + str(l + 1)] - learning_rate',
        '= parameters["W" + str(l + 1)] + learning_rate',
        "update_parameters",
        "parameters['W1']",
        "sign_flipped",
        ("update_parameters",),
    ),
    Bug(
        "deep_Z_transposed",
        "deep",
        "deep/vectorised.py",
        "Z = np.dot(W, A) + b",
        "Z = np.dot(A.T, W.T) + b.T",
        "linear_forward",
        "Z",
        "transposed",
        (
            "linear_forward",
            "linear_activation_forward",
            "L_model_forward",
            "linear_backward",
            "linear_activation_backward",
            "L_model_backward",
        ),
    ),
    Bug(
        "deep_db_wrong_layer",
        "deep",
        "deep/vectorised.py",
        'grads["db" + str(l + 1)] = db_temp',
        'grads["db" + str(l + 2)] = db_temp',
        "L_model_backward",
        "grads['db2']",
        "wrong_layer_order",
        ("L_model_backward",),
    ),
    # ------------------------------------------------------------ layers, loops
    Bug(
        "loops_affine_partial_batch",
        "layers",
        "layers/loops.py",
        "    for i in range(n):\n        dx[i] = w @ dout[i]",
        "    for i in range(n - 1):\n        dx[i] = w @ dout[i]",
        "affine_backward",
        "dw",
        "partial_batch",
        ("affine_backward",),
    ),
    Bug(
        "loops_sigmoid_missing_one_minus_s",
        "layers",
        "layers/loops.py",
        "    s = np.vectorize(_sigmoid)(cache)\n    return dout * s * (1 - s)",
        "    s = np.vectorize(_sigmoid)(cache)\n    return dout * s",
        "sigmoid_backward",
        "dx",
        "missing_one_minus_s",
        ("sigmoid_backward",),
    ),
    Bug(
        "loops_softmax_loss_not_averaged",
        "layers",
        "layers/loops.py",
        "return loss / n, dx / n",
        "return loss, dx / n",
        "softmax_loss",
        "loss",
        "missing_batch_division",
        ("softmax_loss",),
    ),
    # -------------------------------------------------------------- deep, loops
    Bug(
        "loops_deep_partial_batch",
        "deep",
        "deep/loops.py",
        "    for j in range(m):\n        dW += ",
        "    for j in range(m - 1):\n        dW += ",
        "linear_backward",
        "dW",
        "partial_batch",
        DEEP_LINEAR,
    ),
    Bug(
        "loops_deep_db_missing_m",
        "deep",
        "deep/loops.py",
        "db[:, 0] += dZ[:, j] / m",
        "db[:, 0] += dZ[:, j]",
        "linear_backward",
        "db",
        "missing_batch_division",
        DEEP_LINEAR,
    ),
    Bug(
        "loops_deep_dAL_sign",
        "deep",
        "deep/loops.py",
        "dA = (AL - Y) / (AL * (1 - AL))",
        "dA = (Y - AL) / (AL * (1 - AL))",
        "L_model_backward",
        "grads['dA3']",
        "sign_flipped",
        ("L_model_backward",),
    ),
    Bug(
        "loops_deep_dA_wrong_layer",
        "deep",
        "deep/loops.py",
        'grads[f"dA{l - 1}"] = dA',
        'grads[f"dA{l}"] = dA',
        "L_model_backward",
        "grads['dA3']",
        "wrong_layer_order",
        ("L_model_backward",),
    ),
    Bug(
        "loops_deep_update_ascent",
        "deep",
        "deep/loops.py",
        'parameters[key] -= learning_rate * grads["d" + key]',
        'parameters[key] += learning_rate * grads["d" + key]',
        "update_parameters",
        "parameters['b2']",
        "sign_flipped",
        ("update_parameters",),
    ),
    # ------------------------------------------------------------------- spec
    Bug(
        "spec_bias_averaged",
        "spec",
        "spec/general.py",
        'grads[f"b{i}"] = delta.sum(axis=batch_axis)',
        'grads[f"b{i}"] = delta.mean(axis=batch_axis)',
        "backprop: network 1",
        "grads['b2']",
        "bias_averaged",
        ("backprop",),
    ),
    Bug(
        "spec_weight_transposed",
        "spec",
        "spec/general.py",
        'grads[f"W{i}"] = (acts[i - 1].T @ delta if rows else delta @ acts[i - 1].T) + lam * W',
        'grads[f"W{i}"] = (delta.T @ acts[i - 1] if rows else delta @ acts[i - 1].T) + lam * W.T',
        "backprop: network 1",
        "grads['W2']",
        "transposed",
        ("backprop",),
    ),
    Bug(
        "spec_sigmoid_derivative",
        "spec",
        "spec/general.py",
        "return a * (1 - a)",
        "return a",
        "backprop: network 3",
        "grads['W1']",
        "",
        ("backprop",),
    ),
    Bug(
        "spec_mean_not_divided",
        "spec",
        "spec/general.py",
        'scale = 1 / n if reduction == "mean" else 1',
        "scale = 1",
        "backprop: network 2",
        "grads['W1']",
        "missing_batch_division",
        ("backprop",),
    ),
    # ------------------------------------------------------- an exception raised
    Bug(
        "affine_forward_not_flattened",
        "layers",
        "layers/vectorised.py",
        "out = x.reshape(x.shape[0], -1) @ w + b",
        "out = x @ w + b",
        "affine_forward",
        "out",
        "",
        ("affine_forward", "affine_backward"),
        status="error",
    ),
]


def _materialise(bug: Bug, folder: Path) -> Path:
    text = (SUBMISSIONS / bug.base).read_text(encoding="utf-8")
    assert text.count(bug.old) == 1, f"{bug.name}: the replaced text must occur exactly once in {bug.base}"
    path = folder / f"{bug.name}.py"
    path.write_text(text.replace(bug.old, bug.new), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, SubmissionResult]:
    """Every buggy submission, graded two at a time."""
    folder = tmp_path_factory.mktemp("buggy")
    results = {}
    for interface in ("layers", "deep", "spec"):
        bugs = [b for b in BUGS if b.interface == interface]
        paths = [_materialise(b, folder) for b in bugs]
        for bug, result in zip(bugs, grade_folder(paths, interface, 0, LIMITS, jobs=2), strict=True):
            results[bug.name] = result
    return results


def test_the_table_holds_at_least_twenty_bugs_with_unique_names():
    assert len({b.name for b in BUGS}) == len(BUGS) >= 20


@pytest.mark.parametrize(("interface", "name"), CORRECT)
@pytest.mark.parametrize("seed", [0, 1])
def test_correct_submissions_pass(interface, name, seed):
    result = grade_submission(SUBMISSIONS / name, interface, seed, LIMITS)
    assert [(r.check, r.quantity, r.status, r.message) for r in result.rows if not r.passed] == []
    assert result.score == result.max_score > 0


@pytest.mark.parametrize(("name", "interface", "base", "old", "new"), CORRECT_VARIANTS)
def test_correct_variants_pass(name, interface, base, old, new, tmp_path):
    text = (SUBMISSIONS / base).read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / f"{name}.py"
    path.write_text(text.replace(old, new), encoding="utf-8")
    result = grade_submission(path, interface, 0, LIMITS)
    assert [(r.check, r.quantity, r.status) for r in result.rows if not r.passed] == []


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_buggy_submission_fails_on_the_right_function_with_the_right_hint(bug, graded):
    result = graded[bug.name]
    assert not result.passed
    rows = [r for r in result.rows if r.check.startswith(bug.check) and r.quantity == bug.quantity]
    assert rows, f"no row {bug.check} / {bug.quantity}"
    assert all(not r.passed for r in rows), [(r.check, r.status) for r in rows]
    assert rows[0].pattern == bug.pattern, (rows[0].pattern, rows[0].diagnosis, rows[0].message)
    if bug.status:
        assert rows[0].status == bug.status, (rows[0].status, rows[0].message)
    if bug.pattern:
        assert rows[0].diagnosis
    failing_targets = {r.target for r in result.rows if not r.passed}
    assert failing_targets <= set(bug.fails), failing_targets - set(bug.fails)
    assert rows[0].target in failing_targets


def test_unstable_softmax_fails_only_on_large_logits_with_a_stability_hint(graded):
    result = graded["softmax_unshifted"]
    large = {r.quantity: r for r in result.rows if r.check == "softmax_loss: large logits"}
    assert large["loss"].status == "nan"
    assert "NaN" in large["loss"].message
    assert "log-sum-exp" in large["loss"].diagnosis
    assert all(r.passed for r in result.rows if r.check == "softmax_loss")


def test_a_shape_failure_names_both_shapes(graded):
    row = next(r for r in graded["deep_db_no_keepdims"].rows if r.check == "linear_backward" and r.quantity == "db")
    assert row.status == "shape"
    assert "(4,)" in row.message or "shape (" in row.message
    assert "keepdims" in row.diagnosis


#: The bug families the issue lists, each as the catalogue patterns that name it.
ISSUE_PATTERNS = {
    "off by a factor of N or m": {"missing_batch_division", "extra_batch_division"},
    "transposed": {"transposed"},
    "sign flipped": {"sign_flipped"},
    "missing (1 − s) in a sigmoid derivative": {"missing_one_minus_s"},
    "bias gradient averaged instead of summed": {"bias_averaged"},
    "wrong axis": {"wrong_axis"},
    "only part of the batch used": {"partial_batch"},
    "wrong layer order": {"wrong_layer_order"},
}


@pytest.mark.parametrize("family", list(ISSUE_PATTERNS))
def test_every_bug_family_of_the_issue_has_buggy_submissions(family):
    bugs = [b for b in BUGS if b.pattern in ISSUE_PATTERNS[family]]
    assert len(bugs) >= 2, [b.name for b in bugs]


def test_most_buggy_submissions_get_a_named_hint_and_every_base_style_is_used():
    named = [b for b in BUGS if b.pattern]
    assert len(named) >= 0.8 * len(BUGS)
    assert {b.base for b in BUGS} == {name for _, name in CORRECT}


def test_an_exception_is_reported_with_the_students_line_and_its_dependents_say_why(graded):
    result = graded["affine_forward_not_flattened"]
    out = next(r for r in result.rows if r.check == "affine_forward" and r.quantity == "out")
    assert out.message.startswith("raised ValueError: ")
    assert out.message.endswith("(line 7: out = x @ w + b)")
    dx = next(r for r in result.rows if r.check == "affine_backward" and r.quantity == "dx")
    assert dx.status == "error" and dx.message.startswith("affine_forward raised ValueError")
    assert dx.message.endswith("so no cache to use")
