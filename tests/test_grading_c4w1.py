"""The ``dlai-c4w1`` assignment: the deeplearning.ai convolution notebook (channels last) as students hand it in.

A full course-style notebook (magics, plots, the course's failing ``public_tests`` import, test cells that
print) gets full points, and so does its plain ``.py`` export; each classic convolution or pooling bug,
written into the notebook the way a student writes it, fails the right function with its plain-words hint.
The notebook adds the bias as the course says, ``Z = Z + float(b)`` with ``b`` of shape ``(1, 1, 1)``: the
preset's ``size1_scalars = "legacy"`` lets it, as the course's NumPy did; without it, it fails with a hint.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from grading.assignment import builtin_names, load, resolve
from grading.grader import grade_submission
from grading.nhwc_reference import conv_backward, conv_backward_bugs, pool_backward, pool_backward_bugs, zero_pad
from grading.oracle_nhwc import FUNCTIONS, build
from grading.sandbox import SandboxLimits
from refbp.cli import main

COURSES = Path(__file__).parent / "submissions" / "courses"
NOTEBOOK = COURSES / "Convolution_model_Step_by_Step.ipynb"
EXPORT = COURSES / "convolution_model_step_by_step.py"
LIMITS = SandboxLimits(function_seconds=20.0, submission_seconds=120.0)
POINTS = 16

# bug → (the function whose cell changes, the text there, what replaces it, functions that must fail,
#        the function whose row names the bug, pattern, words of the hint)
BUGS = {
    "pad_all_axes": (
        "zero_pad", "np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)),", "np.pad(X, pad,",
        {"zero_pad", "conv_forward", "conv_backward"}, "zero_pad", "zero_pad_wrong_axes", "never the examples",
    ),
    "pad_channels_too": (
        "zero_pad", "((0, 0), (pad, pad), (pad, pad), (0, 0))", "((0, 0), (pad, pad), (pad, pad), (pad, pad))",
        {"zero_pad", "conv_forward", "conv_backward"}, "zero_pad", "zero_pad_wrong_axes", "or the channels",
    ),
    "bias_left_out": (
        "conv_single_step", "    Z = Z + float(b)\n", "",
        {"conv_single_step", "conv_forward"}, "conv_single_step", "bias_left_out", "bias b is not added",
    ),
    "padded_input_cached": (
        "conv_forward", "cache = (A_prev, W, b, hparameters)", "cache = (A_prev_pad, W, b, hparameters)",
        {"conv_forward", "conv_backward"}, "conv_forward", "cache_holds_padded_input", "store A_prev itself",
    ),
    "padding_not_removed": (
        "conv_backward", "return dA_prev, dW, db", "return dA_prev_pad, dW, db",
        {"conv_backward"}, "conv_backward", "padding_not_removed", "still has the padding",
    ),
    "padding_cropped_at_one_end": (
        "conv_backward", "da_prev_pad[pad:-pad, pad:-pad, :]\n", "da_prev_pad[:n_H_prev, :n_W_prev, :]\n",
        {"conv_backward"}, "conv_backward", "conv_padding_cropped_wrong", "from one end only",
    ),
    "conv_backward_stride_ignored": (
        "conv_backward", "vert_start = h * stride\n", "vert_start = h\n",
        {"conv_backward"}, "conv_backward", "backward_stride_ignored", "ignores the stride",
    ),
    "dW_reset_per_example": (
        "conv_backward", "        da_prev_pad = dA_prev_pad[i]\n",
        "        da_prev_pad = dA_prev_pad[i]\n        dW = np.zeros((f, f, n_C_prev, n_C))\n",
        {"conv_backward"}, "conv_backward", "dW_not_accumulated", "initialise dW once",
    ),
    "dW_assigned_not_added": (
        "conv_backward", "dW[:, :, :, c] += a_slice", "dW[:, :, :, c] = a_slice",
        {"conv_backward"}, "conv_backward", "dW_not_accumulated", "accumulate with +=",
    ),
    "db_assigned_not_added": (
        "conv_backward", "db[:, :, :, c] += dZ[i, h, w, c]", "db[:, :, :, c] = dZ[i, h, w, c]",
        {"conv_backward"}, "conv_backward", "db_not_summed", "over the examples and both spatial axes",
    ),
    "db_summed_per_example": (
        "conv_backward", "    return dA_prev, dW, db",
        "    db = np.sum(dZ, axis=(1, 2), keepdims=True)\n    return dA_prev, dW, db",
        {"conv_backward"}, "conv_backward", "db_not_summed", "shape (1, 1, 1, n_C)",
    ),
    "max_pool_mask_ignored": (
        "pool_backward", "+= mask * dA[i, h, w, c]", "+= dA[i, h, w, c]",
        {"pool_backward"}, "pool_backward", "pool_grad_everywhere", "create_mask_from_window",
    ),
    "average_pool_not_divided": (
        "pool_backward", "+= distribute_value(da, shape)", "+= da",
        {"pool_backward"}, "pool_backward", "pool_average_not_divided", "not divided by the window size",
    ),
    "distribute_value_not_divided": (
        "distribute_value", "average = dz / (n_H * n_W)", "average = dz",
        {"distribute_value", "pool_backward"}, "distribute_value", "pool_average_not_divided", "dz / (n_H·n_W)",
    ),
    "pool_backward_stride_ignored": (
        "pool_backward", "horiz_start = w * stride\n", "horiz_start = w\n",
        {"pool_backward"}, "pool_backward", "backward_stride_ignored", "horiz_start = w * stride",
    ),
}  # fmt: skip


#: Bugs graded together in one notebook: they change different functions, and each still fails only its own.
GROUPS = (
    ("pad_all_axes", "max_pool_mask_ignored"),
    ("pad_channels_too", "average_pool_not_divided"),
    ("bias_left_out", "pool_backward_stride_ignored"),
    ("padding_not_removed", "distribute_value_not_divided"),
    ("padding_cropped_at_one_end",),
    ("padded_input_cached",),
    ("conv_backward_stride_ignored",),
    ("dW_reset_per_example",),
    ("dW_assigned_not_added",),
    ("db_assigned_not_added",),
    ("db_summed_per_example",),
)


def _notebook_with(bugs: tuple[str, ...], folder: Path) -> Path:
    """The course notebook with each bug's text replaced in the cell that defines its function."""
    notebook = nbformat.read(str(NOTEBOOK), as_version=4)
    for bug in bugs:
        function, right, wrong = BUGS[bug][:3]
        cell = next(c for c in notebook.cells if c.cell_type == "code" and f"def {function}(" in c.source)
        assert cell.source.count(right) == 1, (function, right)
        cell.source = cell.source.replace(right, wrong)
    path = folder / "Convolution_model_Step_by_Step.ipynb"
    nbformat.write(notebook, str(path))
    return path


def test_the_correct_course_notebook_gets_full_points_with_its_notes() -> None:
    assert "dlai-c4w1" in builtin_names()
    assert {f.name for f in resolve("dlai-c4w1").functions} == set(FUNCTIONS)
    result = grade_submission(NOTEBOOK, "dlai-c4w1", 0, LIMITS)
    assert [(r.check, r.quantity, r.status, r.message) for r in result.rows if not r.passed] == []
    assert result.passed and result.score == result.max_score == POINTS
    assert {r.target for r in result.rows} == set(FUNCTIONS)
    checks = {r.check for r in result.rows}
    for label in ("pool_backward (mode=max", "pool_backward (mode=average", "conv_forward (f=", "conv_backward (f="):
        assert sum(c.startswith(label) for c in checks) >= 2, label
    notes = "\n".join(result.notes)
    assert "dropped %matplotlib, %load_ext, %autoreload (cell 3)" in notes
    for module in ("h5py", "matplotlib", "public_tests"):
        assert f"module {module} is not installed here" in notes


def test_the_plain_python_export_passes_with_load_defs_and_names_its_first_plot_line_without() -> None:
    result = grade_submission(EXPORT, "dlai-c4w1", 0, LIMITS, load="defs")
    assert result.passed and result.score == POINTS
    everything = grade_submission(EXPORT, "dlai-c4w1", 0, LIMITS)
    line = EXPORT.read_text().splitlines().index("get_ipython().run_line_magic('matplotlib', 'inline')") + 1
    assert everything.score == 0
    assert everything.rows[0].message == (
        "the submission could not be imported: NameError: name 'get_ipython' is not defined "
        f"(line {line}: get_ipython().run_line_magic('matplotlib', 'inline'))"
    )


def test_every_bug_is_graded_once() -> None:
    assert sorted(bug for group in GROUPS for bug in group) == sorted(BUGS)


@pytest.mark.parametrize("bugs", GROUPS, ids="+".join)
def test_each_convolution_bug_fails_its_function_with_its_hint(bugs: tuple[str, ...], tmp_path: Path) -> None:
    result = grade_submission(_notebook_with(bugs, tmp_path), "dlai-c4w1", 0, LIMITS)
    failing = [r for r in result.rows if not r.passed]
    expected = set().union(*(BUGS[bug][3] for bug in bugs))
    assert {r.target for r in failing} == expected, [(r.check, r.quantity, r.message) for r in failing]
    for bug in bugs:
        named_by, pattern, words = BUGS[bug][4:]
        named = [r for r in failing if r.target == named_by and r.pattern == pattern]
        assert named and all(words in r.diagnosis for r in named), [(r.check, r.pattern, r.diagnosis) for r in failing]


def _cell_and_line(notebook: Path, text: str) -> tuple[int, int]:
    for number, cell in enumerate(nbformat.read(str(notebook), as_version=4).cells, start=1):
        for line_number, line in enumerate(cell.source.split("\n"), start=1):
            if text in line and cell.cell_type == "code":
                return number, line_number
    raise AssertionError(text)


def _notebook_adding_the_bias_as(bias: str, folder: Path) -> Path:
    notebook = nbformat.read(str(NOTEBOOK), as_version=4)
    cell = next(c for c in notebook.cells if "def conv_single_step(" in c.source)
    assert cell.source.count("Z = Z + float(b)") == 1
    cell.source = cell.source.replace("Z = Z + float(b)", bias)
    path = folder / "conv.ipynb"
    nbformat.write(notebook, str(path))
    return path


def _without_the_convention(folder: Path) -> Path:
    """dlai-c4w1 as a file of its own, without its ``[conventions]``: the installed NumPy's rules."""
    text = resources.files("grading").joinpath("assignments", "dlai-c4w1.toml").read_text(encoding="utf-8")
    assert '[conventions]\nsize1_scalars = "legacy"\n' in text
    path = folder / "c4w1-numpy.toml"
    path.write_text(text.replace('[conventions]\nsize1_scalars = "legacy"\n', ""), encoding="utf-8")
    assert load(path).size1_scalars == "numpy" and resolve("dlai-c4w1").size1_scalars == "legacy"
    return path


@pytest.mark.parametrize("bias", ["Z = Z + b", "Z = Z + int(b) - int(b) + float(b)", "Z += b.item()"])
def test_the_older_numpy_ways_of_adding_the_bias_get_full_points_under_the_preset(bias: str, tmp_path: Path) -> None:
    # Z = Z + b keeps Z of shape (1, 1, 1); conv_forward then stores it into Z[i, h, w, c], which older NumPy took
    result = grade_submission(_notebook_adding_the_bias_as(bias, tmp_path), "dlai-c4w1", 0, LIMITS)
    assert [(r.check, r.message) for r in result.rows if not r.passed] == []
    assert result.score == POINTS


@pytest.mark.parametrize(
    ("bias", "error", "raised_at", "failing", "words"),
    [
        (
            "Z = Z + float(b)",
            "TypeError: only 0-dimensional arrays",
            "Z = Z + float(b)",
            {"conv_single_step", "conv_forward", "conv_backward"},
            "b.item()",
        ),
        (
            "Z = Z + b",
            "ValueError: setting an array element with a sequence",
            "Z[i, h, w, c] = conv_single_step(a_slice_prev, weights, biases)",
            {"conv_forward", "conv_backward"},
            "np.sum(s) + b",
        ),
    ],
)
def test_without_the_convention_a_bias_kept_as_an_array_fails_with_the_reason(
    bias: str, error: str, raised_at: str, failing: set[str], words: str, tmp_path: Path
) -> None:
    path = _notebook_adding_the_bias_as(bias, tmp_path)
    result = grade_submission(path, load(_without_the_convention(tmp_path)), 0, LIMITS)
    wrong = [r for r in result.rows if not r.passed]
    assert {r.target for r in wrong} == failing
    assert result.score == pytest.approx(POINTS - sum(r.max_score for r in wrong)) and result.score < POINTS
    cell_number, line = _cell_and_line(path, raised_at)
    where = f"(cell {cell_number}, line {line}: {raised_at})"
    forward = [r for r in wrong if r.target != "conv_single_step"]  # conv_backward: its forward call raised
    assert all(r.status == "error" and error in r.message and where in r.message for r in forward)
    assert all(f"NumPy {np.__version__}" in r.diagnosis and words in r.diagnosis for r in forward)


def test_the_check_command_grades_the_notebook_and_lists_the_preset(capsys) -> None:
    assert main(["check", str(NOTEBOOK), "--assignment", "dlai-c4w1"]) == 0
    assert (
        f"PASS: Convolution_model_Step_by_Step.ipynb: {POINTS}/{POINTS} (dlai-c4w1, seed 0" in capsys.readouterr().out
    )
    assert main(["check", str(NOTEBOOK), "--interface", "nhwc"]) == 0
    assert main(["assignments"]) == 0
    listing = capsys.readouterr().out
    assert "dlai-c4w1" in listing and "pool_backward" in listing
    assert "  size-1 scalars: legacy (float(b) takes an array of one entry of any shape" in listing


def test_the_reference_matches_a_plain_channels_last_loop_and_torch() -> None:
    rng = np.random.default_rng(5)
    A_prev, W, b = (
        rng.standard_normal((2, 5, 6, 3)),
        rng.standard_normal((3, 3, 3, 4)),
        rng.standard_normal((1, 1, 1, 4)),
    )
    stride, pad, f = 2, 1, 3
    n_H, n_W = (5 + 2 - 3) // 2 + 1, (6 + 2 - 3) // 2 + 1
    dZ = rng.standard_normal((2, n_H, n_W, 4))
    # the notebook's loops, written out for this test alone
    A_pad = np.pad(A_prev, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dA_pad, dW = np.zeros_like(A_pad), np.zeros_like(W)
    for i in range(2):
        for h in range(n_H):
            for w in range(n_W):
                window = (i, slice(h * stride, h * stride + f), slice(w * stride, w * stride + f))
                for c in range(4):
                    dA_pad[window] += W[..., c] * dZ[i, h, w, c]
                    dW[..., c] += A_pad[window] * dZ[i, h, w, c]
    got = conv_backward(A_prev, W, b, dZ, stride, pad)
    np.testing.assert_allclose(got["dA_prev"], dA_pad[:, pad:-pad, pad:-pad], rtol=1e-12)
    np.testing.assert_allclose(got["dW"], dW, rtol=1e-12)
    np.testing.assert_allclose(got["db"], dZ.sum(axis=(0, 1, 2)).reshape(1, 1, 1, 4), rtol=1e-12)
    bugs = conv_backward_bugs(A_prev, W, b, dZ, stride, pad)
    np.testing.assert_allclose(bugs["padding_not_removed"]["dA_prev"][0], dA_pad, rtol=1e-12)
    assert zero_pad(A_prev, 2).shape == (2, 9, 10, 3)
    x = torch.tensor(A_prev.transpose(0, 3, 1, 2), requires_grad=True)
    out = torch.nn.functional.max_pool2d(x, 2, 1)
    dA = rng.standard_normal(out.shape).transpose(0, 2, 3, 1)
    (dx,) = torch.autograd.grad(out, [x], torch.tensor(dA.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(pool_backward(A_prev, dA, 2, 1, "max"), dx.numpy().transpose(0, 2, 3, 1), rtol=1e-12)
    spread = pool_backward_bugs(A_prev, dA, 2, 1, "max")["pool_grad_everywhere"][0]
    assert spread.sum() == pytest.approx(4 * dA.sum())


def test_every_backward_and_forward_check_is_confirmed_by_torch() -> None:
    twins = {c.name: c.twin for c in build(2)}
    confirmed = {name for name, twin in twins.items() if twin}
    assert {name.split(" (")[0] for name in confirmed} == {
        "zero_pad", "conv_single_step", "conv_forward", "conv_backward", "pool_forward", "pool_backward",
    }  # fmt: skip
    assert len(confirmed) == 16
