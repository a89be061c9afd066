"""``refbp autograder``: the Gradescope bundle, unpacked into a folder laid out like Gradescope's and run there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from refbp.cli import main

ROOT = Path(__file__).parents[1]
COURSES = Path(__file__).parent / "submissions" / "courses"
NOTEBOOK = COURSES / "Building_your_Deep_Neural_Network_Step_by_Step.ipynb"
OLD_PY = COURSES / "dnn_step_by_step_2017.py"
HELPERS = COURSES / "dnn_utils_v2.py"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    assert main(["autograder", "dlai-c1w4", "--support", str(HELPERS), "--load", "defs", "--out", str(out)]) == 0
    return out


def _gradescope(tmp_path: Path, bundle: Path, files: dict[str, Path]) -> dict:
    """Unpack as Gradescope does, put ``files`` in the submission, run ``run_autograder``; the results."""
    autograder = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(autograder / "source")
    shutil.copy(autograder / "source" / "run_autograder", autograder / "run_autograder")
    (autograder / "submission").mkdir()
    for name, path in files.items():
        shutil.copy(path, autograder / "submission" / name)
    env = dict(os.environ, REFBP_AUTOGRADER_ROOT=str(tmp_path), REFBP_PYTHON=sys.executable, PYTHONPATH=str(ROOT))
    # zipfile does not restore permission bits; Gradescope's unzip does: run it with bash as its first line says.
    done = subprocess.run(
        ["bash", str(autograder / "run_autograder")], cwd=autograder, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads((autograder / "results" / "results.json").read_text(encoding="utf-8"))


def test_the_bundle_holds_the_scripts_the_assignment_its_helpers_and_refbp(bundle):
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        setup = archive.read("setup.sh").decode()
        run = archive.read("run_autograder").decode()
        assignment = tomllib.loads(archive.read("assignment.toml").decode())
        project = tomllib.loads(archive.read("refbp/pyproject.toml").decode())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    assert {"setup.sh", "run_autograder", "assignment.toml", "support/dnn_utils_v2.py"} <= names
    assert {
        "refbp/grading/assignments/dlai-c1w4.toml",
        "refbp/grading/autograder_run.py",
        "refbp/refbp/cli.py",
    } <= names
    assert '"torch==2.13.0"' in setup and "pip install --no-cache-dir ./refbp" in setup
    assert "/autograder" in run and "grading.autograder_run" in run
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert assignment["support"] == ["support/dnn_utils_v2.py"]
    assert assignment["conventions"] == {"grads_keys": "either"} and assignment["load"] == "defs"
    assert assignment["functions"]["L_model_backward"] == {"points": 3.0}
    assert any(dep.startswith("nbformat") for dep in project["project"]["dependencies"])


def test_the_same_inputs_give_the_same_bytes(bundle, tmp_path):
    again = tmp_path / "again.zip"
    assert main(["autograder", "dlai-c1w4", "--support", str(HELPERS), "--load", "defs", "--out", str(again)]) == 0
    assert again.read_bytes() == bundle.read_bytes()


def test_a_correct_notebook_gets_full_marks_in_the_gradescope_layout(bundle, tmp_path):
    results = _gradescope(tmp_path, bundle, {"step_by_step.ipynb": NOTEBOOK})
    assert results["score"] == 14
    assert all(test["status"] == "passed" for test in results["tests"])
    assert sum(test["max_score"] for test in results["tests"]) == 14
    assert "Assignment dlai-c1w4" in results["output"] and "grads['dA' + str(l)]" in results["output"]


def test_a_buggy_submission_loses_the_points_of_what_it_gets_wrong(bundle, tmp_path):
    buggy = tmp_path / "dnn.py"
    buggy.write_text(OLD_PY.read_text().replace("dW = 1. / m * np.dot(dZ, A_prev.T)", "dW = np.dot(dZ, A_prev.T)"))
    # A student who uploaded the helper too: it is not mistaken for the submission.
    results = _gradescope(tmp_path / "run", bundle, {"dnn.py": buggy, "dnn_utils_v2.py": HELPERS})
    failed = {test["name"] for test in results["tests"] if test["status"] == "failed"}
    assert failed == {
        "linear_backward", "linear_activation_backward (relu)", "linear_activation_backward (sigmoid)",
        "L_model_backward",
    }  # fmt: skip
    assert 0 < results["score"] < 14
    output = next(test["output"] for test in results["tests"] if test["name"] == "linear_backward")
    assert "times too large" in output


def test_the_convolution_notebook_preset_gives_full_marks_in_the_gradescope_layout(tmp_path):
    # the notebook adds its bias as the course says, Z = Z + float(b): it passes only if the convention travels
    out = tmp_path / "c4w1.zip"
    assert main(["autograder", "dlai-c4w1", "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:  # the bundle keeps the course's NumPy reading of float(b)
        assert tomllib.loads(archive.read("assignment.toml").decode())["conventions"] == {"size1_scalars": "legacy"}
    notebook = COURSES / "Convolution_model_Step_by_Step.ipynb"
    results = _gradescope(tmp_path / "run", out, {"Convolution_model_Step_by_Step.ipynb": notebook})
    assert results["score"] == 16 == sum(test["max_score"] for test in results["tests"])
    assert all(test["status"] == "passed" for test in results["tests"])
    assert "Assignment dlai-c4w1" in results["output"]


def test_an_empty_submission_gets_a_result_that_says_so(bundle, tmp_path):
    results = _gradescope(tmp_path, bundle, {"notes.txt": Path(__file__)})
    assert results["score"] == 0 and "No .py or .ipynb file" in results["output"]


def test_the_bundled_source_builds_as_a_package(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path / "source")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "w"),
         str(tmp_path / "source" / "refbp")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "w").glob("refbp-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert "grading/assignments/cs231n-a1.toml" in archive.namelist()


def test_the_cs231n_a2_bundle_grades_a_layers_file_and_names_its_bug(tmp_path):
    out = tmp_path / "a2.zip"
    assert main(["autograder", "cs231n-a2", "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        assert tomllib.loads(archive.read("assignment.toml").decode())["conventions"] == {"dropout_p": "keep"}
    old = tmp_path / "a2-2017.zip"
    assert main(["autograder", "cs231n-a2-2017", "--out", str(old)]) == 0
    with zipfile.ZipFile(old) as archive:  # the bundle keeps the year's reading of dropout's p
        assert tomllib.loads(archive.read("assignment.toml").decode())["conventions"] == {"dropout_p": "drop"}
    course = (COURSES / "cs231n_a2_layers.py").read_text(encoding="utf-8")
    buggy = tmp_path / "layers.py"
    buggy.write_text(course.replace("+= mask * dout[n, c, i, j]", "+= dout[n, c, i, j]"), encoding="utf-8")
    results = _gradescope(tmp_path / "run", out, {"layers.py": buggy})
    failed = [test for test in results["tests"] if test["status"] == "failed"]
    assert [test["name"] for test in failed] == ["max_pool_backward_naive"]
    assert "passes dout only to the position of the window's maximum" in failed[0]["output"]
    assert results["score"] == 41 - 2 and sum(test["max_score"] for test in results["tests"]) == 41
