"""The README's examples run and say what they claim: the spec, the Python session, the worked-example file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from refbp.cli import main
from refbp.errors import InputError
from refbp.spec import NetworkSpec

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", README, flags=re.S | re.M)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCKS if lang == language]


def test_the_spec_and_the_python_session_reproduce_case_1(tmp_path: Path, monkeypatch) -> None:
    spec_toml = _blocks("toml")[0]
    (tmp_path / "case1.toml").write_text(spec_toml, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    session: dict = {}
    exec(compile(_blocks("python")[0], "README.md", "exec"), session)
    trace, grads = session["trace"], session["grads"]
    np.testing.assert_allclose(trace.layers[0].a, [[0.9866, 0.9950]], atol=5e-5)
    np.testing.assert_allclose(grads.layers[1].grad_W, [[0.0765, 0.1183], [0.0772, 0.1193]], atol=5e-5)
    np.testing.assert_allclose(grads.layers[0].grad_b, [0.0024], atol=5e-5)


def test_the_bad_spec_error_reads_as_the_readme_says(tmp_path: Path) -> None:
    spec_toml = _blocks("toml")[0]
    bad = tmp_path / "case1.toml"
    bad.write_text(spec_toml.replace('activation = "sigmoid"', 'activation = "relu6"', 1), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        NetworkSpec.load(bad)
    quoted = re.search(r"A bad spec raises one line naming the field: `case1.toml: (.*?)`", README, flags=re.S)
    assert str(caught.value).endswith(" ".join(quoted.group(1).split()))


def test_the_worked_example_file_checks_clean(tmp_path: Path, capsys) -> None:
    example = tmp_path / "one_unit.toml"
    worked = next(body for body in _blocks("toml") if body.startswith("# One sigmoid unit"))
    example.write_text(worked, encoding="utf-8")
    assert main(["examples", str(example), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    # dE/db is printed -0.1184 for -0.118459, within the one unit of slack the file states: hand-rounded.
    assert re.search(r"1 worked example, (\d+) claims \((\d+) ok, 1 hand-rounded\)", out), out


COURSES = Path(__file__).parent / "submissions" / "courses"


def _block_with(language: str, text: str) -> str:
    (body,) = [body for body in _blocks(language) if text in body]
    return body


def test_the_grading_examples_run_as_written(tmp_path: Path, monkeypatch, capsys) -> None:
    import shlex
    import shutil

    assignment = _block_with("toml", 'name = "nnlab-hw2"')
    (tmp_path / "nnlab-hw2.toml").write_text(assignment, encoding="utf-8")
    shutil.copy(COURSES / "cs231n_layers.py", tmp_path / "layers.py")
    shutil.copy(COURSES / "Building_your_Deep_Neural_Network_Step_by_Step.ipynb", tmp_path / "step_by_step.ipynb")
    shutil.copy(COURSES / "dnn_utils_v2.py", tmp_path / "dnn_utils_v2.py")
    (tmp_path / "submissions").mkdir()
    shutil.copy(COURSES / "nnlab" / "student.py", tmp_path / "submissions" / "ada.py")
    monkeypatch.chdir(tmp_path)
    commands = [line for line in _block_with("bash", "--assignment cs231n-a1").splitlines() if line.strip()]
    assert len(commands) == 5
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "refbp"
        assert main(argv[1:]) == 0, command
    out = capsys.readouterr().out
    assert "PASS: layers.py: 14/14 (cs231n-a1, seed 0, isolation namespaces)" in out
    assert "PASS: step_by_step.ipynb: 14/14 (dlai-c1w4, seed 0, isolation namespaces)" in out
    assert "1/1 submissions pass every check" in out
    assert (tmp_path / "grades" / "ada" / "feedback.md").is_file() and (tmp_path / "autograder.zip").is_file()


def test_the_assignment_error_reads_as_the_readme_says(tmp_path: Path, monkeypatch) -> None:
    from grading.assignment import load

    assignment = _block_with("toml", 'name = "nnlab-hw2"')
    (tmp_path / "nnlab-hw2.toml").write_text(assignment.replace('inplace = "fail"', 'inplace = "maybe"'))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as caught:
        load(Path("nnlab-hw2.toml"))
    quoted = re.search(r"one line naming the file and field,\s+for example `(.*?)`", README, flags=re.S)
    assert str(caught.value) == " ".join(quoted.group(1).split())


def test_the_typed_spec_has_the_documented_names_and_shapes(tmp_path: Path) -> None:
    from refbp.network import backprop
    from refbp.params import init_parameters
    from refbp.sequential_spec import SequentialSpec

    typed = next(body for body in _blocks("toml") if 'type = "conv2d"' in body)
    (tmp_path / "cnn.toml").write_text(typed, encoding="utf-8")
    spec = NetworkSpec.load(tmp_path / "cnn.toml")
    assert isinstance(spec, SequentialSpec)
    assert spec.parameter_shapes() == {
        "W1": (2, 1, 3, 3),
        "b1": (2,),
        "gamma3": (2,),
        "beta3": (2,),
        "W6": (18, 3),
        "b6": (3,),
    }
    assert spec.buffer_shapes() == {"running_mean3": (2,), "running_var3": (2,)}
    params = init_parameters(spec, seed=0)
    X = np.random.default_rng(0).standard_normal((4, 1, 6, 6))
    trace, grads = backprop(spec, params, X, np.eye(3)[[0, 1, 2, 0]])
    assert trace.layers[3].a.shape == (4, 18) and grads.grad_x.shape == X.shape
    assert set(trace.layers[2].state) == {"running_mean", "running_var"}


def test_the_sequence_spec_has_the_documented_names_and_shapes(tmp_path: Path) -> None:
    from refbp.network import backprop
    from refbp.params import init_parameters

    sequence = next(body for body in _blocks("toml") if 'type = "embedding"' in body)
    (tmp_path / "words.toml").write_text(sequence, encoding="utf-8")
    spec = NetworkSpec.load(tmp_path / "words.toml")
    assert spec.parameter_shapes() == {
        "W1": (10, 4),
        "Wx2": (4, 12),
        "Wh2": (3, 12),
        "b2": (12,),
        "h02": (3,),
        "Wx3": (3, 2),
        "Wh3": (2, 2),
        "b3": (2,),
        "h03": (2,),
        "W4": (2, 10),
        "b4": (10,),
    }
    params = init_parameters(spec, seed=0)
    X = np.array([[1, 2, 3, 2, 9], [0, 0, 0, 0, 0]])
    T = np.array([[2, 3, 2, 9, -1], [0, -1, -1, -1, -1]])
    trace, grads = backprop(spec, params, X, T)
    assert trace.layers[-1].a.shape == (2, 5, 10) and np.all(grads.layers[-1].grad_a[0, 4] == 0)
    assert grads.layers[1].grad_params["h0"].shape == (3,) and np.all(grads.grad_x == 0)
