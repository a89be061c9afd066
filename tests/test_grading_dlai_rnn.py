"""The ``dlai-c5w1`` assignment: deeplearning.ai's "Building a Recurrent Neural Network — Step by Step" notebook.

A correct course-style notebook (magics, a missing ``public_tests``, the course's ``rnn_utils``)
gets full points; each classic backprop-through-time bug, written into the notebook as a
student would, fails the right functions with its plain-words hint; the LSTM backward
functions are optional.
"""

from __future__ import annotations

import json
import re
import tomllib
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grading.assignment import GradedFunction, builtin_names, load, parse, resolve
from grading.grader import grade_submission
from grading.oracle_dlai_rnn import (
    FUNCTIONS,
    build,
    columns,
    lstm_gradients,
    lstm_rows,
    rnn_gradients,
    rnn_rows,
    rows,
)
from grading.oracle_rnn import lstm_sequence, rnn_sequence
from grading.outputs import render_markdown
from grading.sandbox import SandboxLimits
from refbp.cli import main
from refbp.errors import InputError

COURSES = Path(__file__).parent / "submissions" / "courses"
NOTEBOOK = COURSES / "Building_a_Recurrent_Neural_Network_Step_by_Step.ipynb"
HELPERS = COURSES / "rnn_utils.py"
LIMITS = SandboxLimits(function_seconds=20.0, submission_seconds=120.0)
OPTIONAL = {"lstm_cell_backward", "lstm_backward"}

# bug → (the text of the correct notebook, what replaces it, functions that must fail, pattern, words of the hint)
BUGS = {
    "carried_da_dropped": (
        "rnn_cell_backward(da[:, :, t] + da_prevt, caches[t])",
        "rnn_cell_backward(da[:, :, t], caches[t])",
        {"rnn_backward"},
        "carried_dh_dropped",
        "each step's da_next is the upstream da[:, :, t] plus the da_prev returned by the step after it",
    ),
    "dWaa_not_summed": (
        "        dWaa += dWaat\n",
        "        dWaa = dWaat\n",
        {"rnn_backward"},
        "dWh_not_summed",
        "dWaa is one step's only",
    ),
    "tanh_prime_wrong_step": (
        "dtanh = (1 - a_next ** 2) * da_next",
        "dtanh = (1 - a_prev ** 2) * da_next",
        {"rnn_cell_backward", "rnn_backward"},
        "tanh_prime_wrong_step",
        "use 1 − a_next² of this step's own output",
    ),
    "gates_f_and_i_swapped": (
        "    dit = dc * cct * it * (1 - it)\n    dft = dc * c_prev * ft * (1 - ft)\n",
        "    dft = dc * cct * it * (1 - it)\n    dit = dc * c_prev * ft * (1 - ft)\n",
        {"lstm_cell_backward", "lstm_backward"},
        "gate_order_swapped",
        "dft with c_prev into dWf",
    ),
    "dc_prev_without_forget_gate": (
        "    dc_prev = dc * ft\n",
        "    dc_prev = dc\n",
        {"lstm_cell_backward", "lstm_backward"},
        "forget_factor_missing",
        "dc_prev lacks the forget gate",
    ),
    "lstm_carried_dropped_as_in_the_2018_edition": (
        "lstm_cell_backward(da[:, :, t] + da_prevt, dc_prevt, caches[t])",
        "lstm_cell_backward(da[:, :, t], np.zeros((n_a, m)), caches[t])",
        {"lstm_backward"},
        "carried_dh_dropped",
        "2018 edition",
    ),
    "dba_without_keepdims": (
        "dba = np.sum(dtanh, axis=1, keepdims=True)",
        "dba = np.sum(dtanh, axis=1)",
        {"rnn_cell_backward", "rnn_backward"},
        "reshape_needed",
        "keepdims=True",
    ),
}


def _notebook_with(tmp_path: Path, right: str, wrong: str) -> Path:
    notebook = nbformat.read(str(NOTEBOOK), as_version=4)
    hits = [cell for cell in notebook.cells if cell.cell_type == "code" and right in cell.source]
    assert len(hits) == 1 and hits[0].source.count(right) == 1, right
    hits[0].source = hits[0].source.replace(right, wrong)
    path = tmp_path / NOTEBOOK.name
    nbformat.write(notebook, str(path))
    return path


def test_a_correct_course_notebook_gets_full_points_with_its_helpers() -> None:
    assert "dlai-c5w1" in builtin_names()
    assignment = resolve("dlai-c5w1")
    assert {f.name for f in assignment.functions} == set(FUNCTIONS)
    assert {f.name for f in assignment.functions if f.optional} == OPTIONAL
    result = grade_submission(NOTEBOOK, "dlai-c5w1", 0, LIMITS, support=[HELPERS])
    assert [(r.check, r.quantity, r.status, r.message) for r in result.rows if r.status != "ok"] == []
    assert result.passed and result.score == result.max_score == 18
    assert {r.target for r in result.rows} == set(FUNCTIONS)
    notes = "\n".join(result.notes)
    assert "dropped %load_ext, %autoreload" in notes
    assert "module public_tests is not installed here" in notes
    assert "rnn_utils" not in notes


def test_without_rnn_utils_the_functions_that_use_softmax_fail_with_a_name_error() -> None:
    result = grade_submission(NOTEBOOK, "dlai-c5w1", 0, LIMITS)
    assert any("module rnn_utils is not installed here" in note for note in result.notes)
    row = next(r for r in result.rows if r.target == "rnn_cell_forward")
    assert row.status == "error" and "NameError: name 'softmax' is not defined" in row.message
    assert "yt_pred = softmax(np.dot(Wya, a_next) + by)" in row.message
    assert not result.passed


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_each_notebook_bug_fails_its_functions_with_its_hint(bug: str, tmp_path: Path) -> None:
    right, wrong, functions, pattern, words = BUGS[bug]
    result = grade_submission(_notebook_with(tmp_path, right, wrong), "dlai-c5w1", 0, LIMITS, support=[HELPERS])
    failing = [r for r in result.rows if not r.passed]
    assert {r.target for r in failing} == functions, [(r.target, r.quantity, r.message) for r in failing]
    assert any(r.pattern == pattern and words in r.diagnosis for r in failing), [
        (r.quantity, r.pattern, r.diagnosis) for r in failing
    ]
    assert not result.passed and result.score < result.max_score == 18


def test_leaving_out_the_optional_lstm_backward_passes_with_the_points_that_remain(tmp_path: Path) -> None:
    notebook = nbformat.read(str(NOTEBOOK), as_version=4)
    notebook.cells = [
        cell for cell in notebook.cells if not any(f"def {name}(" in cell.source for name in sorted(OPTIONAL))
    ]
    path = tmp_path / "rnn_step_by_step.ipynb"
    nbformat.write(notebook, str(path))
    result = grade_submission(path, "dlai-c5w1", 0, LIMITS, support=[HELPERS])
    skipped = [r for r in result.rows if r.status == "skipped"]
    assert {r.target for r in skipped} == OPTIONAL
    assert all(r.score == r.max_score == 0 for r in skipped)
    assert {r.message for r in skipped} == {
        "optional, so not graded: lstm_cell_backward is not defined",
        "optional, so not graded: lstm_backward is not defined",
    }
    assert result.passed and result.score == result.max_score == 12
    feedback = render_markdown(result)
    assert "| lstm_backward | 0/0 | optional, not submitted |" in feedback
    assert "all 8 checks pass" in feedback


def _template(source: str) -> str:
    """The cell as the course hands it out: each assignment between START and END CODE HERE set to ``None``."""
    lines, inside = [], False
    for line in source.split("\n"):
        inside = (inside or "### START CODE HERE" in line) and "### END CODE HERE" not in line
        if inside and re.match(r"\s+\+ ", line):
            continue  # the second line of a two-line expression
        lines.append(re.sub(r"^(\s+[\w\[\]:, ]+? \+?= ).*$", r"\1None", line) if inside else line)
    return "\n".join(lines)


def test_the_untouched_template_of_the_optional_functions_is_skipped_not_failed(tmp_path: Path) -> None:
    notebook = nbformat.read(str(NOTEBOOK), as_version=4)
    for cell in notebook.cells:
        if any(f"def {name}(" in cell.source for name in OPTIONAL):
            cell.source = _template(cell.source)
            compile(cell.source, "cell", "exec")
            assert "dc_prev = None" in cell.source or "dx[:,:,t] = None" in cell.source
    path = tmp_path / "rnn_step_by_step.ipynb"
    nbformat.write(notebook, str(path))
    result = grade_submission(path, "dlai-c5w1", 0, LIMITS, support=[HELPERS])
    assert result.passed and result.score == result.max_score == 12
    skipped = {}
    for row in result.rows:
        if row.status == "skipped":
            skipped.setdefault(row.target, row.message)
    assert set(skipped) == OPTIONAL
    unpack = "optional, so not graded: raised TypeError: cannot unpack non-iterable NoneType object"
    assert skipped["lstm_cell_backward"].startswith(unpack) and skipped["lstm_cell_backward"].endswith(
        "line 32: n_x, m = None)"
    )
    assert skipped["lstm_backward"].startswith(unpack) and skipped["lstm_backward"].endswith("n_a, m, T_x = None)")


def test_an_optional_function_that_is_handed_in_wrong_still_fails(tmp_path: Path) -> None:
    right, wrong, *_ = BUGS["dc_prev_without_forget_gate"]
    result = grade_submission(_notebook_with(tmp_path, right, wrong), "dlai-c5w1", 0, LIMITS, support=[HELPERS])
    assert not result.passed
    assert {r.target for r in result.rows if r.status == "mismatch"} == OPTIONAL


def test_optional_must_be_a_boolean_and_round_trips_through_the_bundle(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "x.toml"
    bad.write_text('name = "x"\nstyle = "dlai-rnn"\n[functions.lstm_backward]\noptional = "yes"\n', encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load(bad)
    assert str(caught.value) == f"{bad}: functions.lstm_backward.optional: expected true or false, got 'yes'"
    assert parse({"name": "x", "style": "dlai-rnn", "functions": {"rnn_forward": {}}}, tmp_path).functions[0] == (
        GradedFunction("rnn_forward", "rnn_forward")
    )
    out = tmp_path / "autograder.zip"
    assert main(["autograder", "dlai-c5w1", "--support", str(HELPERS), "--out", str(out)]) == 0
    assert "Gradescope autograder for dlai-c5w1" in capsys.readouterr().out
    with zipfile.ZipFile(out) as archive:
        bundled = tomllib.loads(archive.read("assignment.toml").decode())
        assert "support/rnn_utils.py" in archive.namelist()
    assert {name for name, entry in bundled["functions"].items() if entry.get("optional")} == OPTIONAL
    assert bundled["style"] == "dlai-rnn"


def test_refbp_assignments_lists_the_preset(capsys) -> None:
    assert main(["assignments"]) == 0
    out = capsys.readouterr().out
    assert "dlai-c5w1 (style dlai-rnn, --interface dlai-rnn)" in out
    assert resolve("dlai-rnn").name == "dlai-c5w1"
    assert "  - rnn_backward: 3 points\n" in out and "  - lstm_backward: 3 points, optional\n" in out


def _notebook_case(lstm: bool, steps: int, backward_steps: int):
    """The inputs of the notebook's own test cells (``np.random.seed(1)`` …), in their order of drawing."""
    np.random.seed(1)
    x = np.random.randn(3, 10, steps)
    a0 = np.random.randn(5, 10)
    if lstm:
        p = {key: np.random.randn(5, 8) if key[0] == "W" else np.random.randn(5, 1) for key in
             ("Wf", "bf", "Wi", "bi", "Wo", "bo", "Wc", "bc")}  # fmt: skip
    else:
        p = {"Wax": np.random.randn(5, 3), "Waa": np.random.randn(5, 5), "Wya": np.random.randn(2, 5)}
        p |= {"ba": np.random.randn(5, 1), "by": np.random.randn(2, 1)}
    return x[:, :, :backward_steps], a0, p, np.random.randn(5, 10, backward_steps)


def test_the_reference_reproduces_the_notebooks_printed_expected_gradients() -> None:
    """The official notebook's expected outputs, recomputed by the grader's transposed refbp reference."""
    x, a0, p, da = _notebook_case(lstm=False, steps=4, backward_steps=4)
    grads = rnn_gradients(rnn_sequence(rows(x), a0.T, rnn_rows(p), rows(da)), cell=False)
    np.testing.assert_allclose(grads["dx"][1][2], [-2.07101689, -0.59255627, 0.02466855, 0.01483317], atol=5e-9)
    assert grads["da0"][2][3] == pytest.approx(-0.314942375127, abs=1e-11)
    assert grads["dWax"][3][1] == pytest.approx(11.264104496527777, rel=1e-12)
    assert grads["dWaa"][1][2] == pytest.approx(2.3033331265798926, rel=1e-12)
    assert grads["dba"].shape == (5, 1) and grads["dba"][4, 0] == pytest.approx(-0.74747722, abs=5e-9)
    # lstm_backward's test draws x with 7 steps but da with 4: only the first 4 steps are backpropagated
    x, a0, p, da = _notebook_case(lstm=True, steps=7, backward_steps=4)
    values = lstm_sequence(rows(x), a0.T, lstm_rows(p), rows(da))
    dx, grads = columns(values["dx"]), lstm_gradients(values["dWx"], values["dWh"], values["db"])
    np.testing.assert_allclose(dx[1][2], [0.00218254, 0.28205375, -0.48292508, -0.43281115], atol=5e-9)
    assert values["dh0"].T[2][3] == pytest.approx(0.312770310257, abs=1e-11)
    assert grads["dWf"][3][1] == pytest.approx(-0.0809802310938, abs=1e-12)
    assert grads["dWf"].shape == (5, 8) and grads["dbf"].shape == (5, 1)


def test_every_check_is_confirmed_by_torch_and_shapes_vary_with_the_seed() -> None:
    checks = build(5)
    assert [c.target for c in checks] == list(FUNCTIONS)
    assert all(c.twin == "dlai_" + c.target for c in checks)
    shapes = {tuple(np.shape(build(seed)[3].inputs["x"])) for seed in range(6)}
    assert len(shapes) > 2
    lstm_check = checks[-1]
    assert lstm_check.inputs["Wf"].shape[1] == lstm_check.inputs["a0"].shape[0] + lstm_check.inputs["x"].shape[0]


def test_the_checked_in_notebook_prints_the_official_expected_values() -> None:
    """The material is the course's notebook as a student ran it: its printed outputs are the official ones."""
    cells = nbformat.read(str(NOTEBOOK), as_version=4).cells
    printed = "".join(out.get("text", "") for cell in cells if cell.cell_type == "code" for out in cell.outputs)
    assert 'gradients["dxt"][1][2] = -1.3872130506' in printed
    assert 'gradients["dx"][1][2] = [ 0.00218254  0.28205375 -0.48292508 -0.43281115]' in printed
    assert json.loads(NOTEBOOK.read_text(encoding="utf-8"))["nbformat"] == 4


def test_the_readme_commands_for_the_preset_run_as_written(tmp_path: Path, monkeypatch, capsys) -> None:
    import shlex
    import shutil

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```bash\n(.*?)```", readme, flags=re.S) if "dlai-c5w1 --support" in b)
    commands = [shlex.split(line) for line in block.splitlines() if line.strip()]
    assert [argv[:2] for argv in commands] == [["refbp", "check"], ["refbp", "autograder"]]
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    shutil.copy(HELPERS, tmp_path / HELPERS.name)
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        assert main(argv[1:]) == 0, argv
    out = capsys.readouterr().out
    assert f"PASS: {NOTEBOOK.name}: 18/18 (dlai-c5w1, seed 0, isolation namespaces)" in out
    assert (tmp_path / "c5w1-autograder.zip").is_file()
