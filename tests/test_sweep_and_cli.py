"""Cases, the three-way check's modes, sweeps and the ``refbp sweep``/``refbp replay`` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from oracle.cases import KINK_MARGIN, Case
from oracle.check import check_case
from oracle.fd_dense import preactivations
from oracle.sweep import run_sweep
from refbp.cli import main
from refbp.network import backprop
from refbp.spec import LayerSpec, LossSpec, NetworkSpec

RELU_SPEC = NetworkSpec(inputs=3, layers=(LayerSpec(4, "relu"), LayerSpec(3, "leaky_relu"), LayerSpec(2)))
CE_SPEC = NetworkSpec(inputs=2, layers=(LayerSpec(3, "softmax"),), loss=LossSpec("softmax_cross_entropy"))

BUGGY = """
import numpy as np
from refbp.network import backprop as _reference

def doubled_W1(spec, params, X, T):
    trace, grads = _reference(spec, params, X, T)
    grads.layers[0].grad_W = 2 * grads.layers[0].grad_W
    return trace, grads

def crashes(spec, params, X, T):
    raise RuntimeError("not implemented yet")
"""


def test_case_json_round_trip_and_deterministic_data() -> None:
    case = Case(RELU_SPEC, batch=3, seed=42)
    again = Case.from_json(case.to_json())
    assert again == case
    a, b = case.materialize(), again.materialize()
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.T, b.T)
    assert not np.array_equal(a.X, Case(RELU_SPEC, batch=3, seed=43).materialize().X)


@pytest.mark.parametrize("seed", range(20))
def test_generated_data_stay_clear_of_relu_kinks(seed: int) -> None:
    case = Case(RELU_SPEC, batch=4, seed=seed)
    data = case.materialize()
    zs = preactivations(RELU_SPEC, data.params, data.X)
    assert min(np.abs(zs[0]).min(), np.abs(zs[1]).min()) >= KINK_MARGIN


def test_soft_cross_entropy_targets_on_odd_seeds() -> None:
    one_hot = Case(CE_SPEC, batch=4, seed=2).materialize().T
    soft = Case(CE_SPEC, batch=4, seed=3).materialize().T
    assert set(np.unique(one_hot)) <= {0.0, 1.0} and np.allclose(one_hot.sum(axis=1), 1.0)
    assert not np.allclose(soft.sum(axis=1), 1.0) and soft.min() >= 0 and soft.max() <= 1


def test_a_relu_exactly_at_its_kink_is_reported_as_kink_not_failure() -> None:
    spec = NetworkSpec(inputs=2, layers=(LayerSpec(2, "relu", bias="none"), LayerSpec(1)))
    params = {"W1": np.array([[1.0, 0.5], [-1.0, 0.5]]), "W2": np.array([[1.0], [2.0]]), "b2": np.array([0.1])}
    X = np.array([[1.0, 1.0]])  # z1 = (0, 1): the first unit sits on the kink
    result = check_case("kink", spec, params, X, np.array([[0.3]]))
    assert result.passed
    statuses = {(r.layer, r.quantity, r.pair): r.status for r in result.rows}
    assert statuses[(1, "delta", "refbp~fd")] == "kink"
    assert statuses[(1, "delta", "refbp~torch")] == "ok"


def _doubled_W1(spec, params, X, T):
    trace, grads = backprop(spec, params, X, T)
    grads.layers[0].grad_W = 2 * grads.layers[0].grad_W
    return trace, grads


def test_directional_mode_falls_back_to_entries_only_where_it_disagrees() -> None:
    spec = NetworkSpec(inputs=3, layers=(LayerSpec(4, "tanh"), LayerSpec(2)))
    data = Case(spec, batch=2, seed=1).materialize()
    result = check_case("d", spec, data.params, data.X, data.T, impl=_doubled_W1, fd="directional")
    fd_rows = {(r.layer, r.quantity, r.pair): r for r in result.rows if r.pair.endswith("~fd")}
    assert fd_rows[(1, "dL/dW", "refbp~fd")].status == "mismatch"
    assert fd_rows[(1, "dL/dW", "refbp~fd")].n_entries == 12  # per entry, after the fallback
    assert "directional" in fd_rows[(2, "dL/dW", "refbp~fd")].message
    assert fd_rows[(2, "dL/dW", "refbp~fd")].n_entries == 3  # three random directions
    assert (result.first.layer, result.first.quantity) == (1, "dL/dW")


def test_sweep_is_deterministic_for_a_seed() -> None:
    first = run_sweep(15, seed=4, progress=False).rows
    second = run_sweep(15, seed=4, progress=False).rows
    assert len(first) > 100
    cols = ["case", "layer", "quantity", "pair", "status", "max_abs_err"]
    assert first[cols].equals(second[cols])


@pytest.fixture
def buggy_module(tmp_path: Path) -> Path:
    path = tmp_path / "student_bp.py"
    path.write_text(BUGGY)
    return path


def test_cli_sweep_passes_and_writes_reports(tmp_path: Path, capsys) -> None:
    assert main(["sweep", "--cases", "12", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS: 12 cases")
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert summary["verdict"] == "pass" and summary["meta"]["cases"] == 12
    assert {p.name for p in tmp_path.iterdir()} >= {"sweep.csv", "sweep.json", "sweep.md", "sweep.html"}


def test_cli_sweep_records_the_torch_device_and_says_when_cuda_is_missing(tmp_path: Path, capsys) -> None:
    import torch

    assert main(["sweep", "--cases", "2", "--out", str(tmp_path), "--quiet", "--device", "cuda"]) == 0
    err = capsys.readouterr().err
    meta = json.loads((tmp_path / "sweep.json").read_text())["meta"]
    if torch.cuda.is_available():
        assert meta["torch device"].startswith("cuda") and err == ""
    else:
        assert meta["torch device"] == "cpu"
        assert "--device cuda: CUDA is not available, the torch twin runs on the CPU" in err
    assert "torch device" in (tmp_path / "sweep.md").read_text()


def test_cli_sweep_finds_a_bug_names_the_layer_and_prints_a_replay(tmp_path: Path, buggy_module, capsys) -> None:
    target = f"{buggy_module}:doubled_W1"
    code = main(["sweep", "--cases", "20", "--out", str(tmp_path), "--quiet", "--impl", target])
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("FAIL: 20 cases")
    assert "layer 1, dL/dW (impl~torch): mismatch" in out
    replay = next(line for line in out.splitlines() if line.strip().startswith("replay:")).split("replay: ", 1)[1]
    assert replay.endswith(f"--impl {target}")
    case_json = json.loads(replay.split("'")[1])
    assert len(case_json["spec"]["layers"]) <= 2 and case_json["batch"] <= 2
    assert main(["replay", replay.split("'")[1], "--impl", target]) == 1
    assert "layer 1  dL/dW" in capsys.readouterr().out


def test_cli_reports_a_crashing_implementation(tmp_path: Path, buggy_module, capsys) -> None:
    code = main(["sweep", "--cases", "3", "--out", str(tmp_path), "--quiet", "--impl", f"{buggy_module}:crashes"])
    assert code == 1
    assert "impl raised RuntimeError: not implemented yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep", "--cases", "0"], "--cases: expected a positive integer, got '0'"),
        (["sweep", "--fd", "sideways"], "invalid choice: 'sideways'"),
        (["sweep", "--impl", "no_colon"], "--impl: expected MODULE:FUNCTION or FILE.py:FUNCTION"),
        (["sweep", "--impl", "missing_file.py:f"], "--impl: expected an existing Python file"),
        (["sweep", "--impl", "json:no_such_function"], "expected a function 'no_such_function' in json"),
        (["replay", "{not json"], "case: line 1 column 2: expected valid JSON"),
        (["replay", '{"spec": {"inputs": 2, "layers": []}}'], "case: spec: layers: expected a non-empty list"),
        (["replay", "no/such/case.json"], "no/such/case.json: expected a JSON case or a readable .json file"),
        (["sweep", "--device", "gpu"], "device: expected cpu, cuda or cuda:N, got 'gpu'"),
        (["bogus"], "invalid choice: 'bogus'"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(argv: list[str], message: str, capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_console_script_runs_in_a_subprocess(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("refbp")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "refbp"]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    done = subprocess.run(
        [*command, "sweep", "--cases", "5", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("PASS: 5 cases")
    bad = subprocess.run([*command, "sweep", "--dtype", "float16"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_an_interrupted_sweep_keeps_its_cases_and_still_writes_the_reports(tmp_path: Path, capsys) -> None:
    calls = [0]

    def stops_at_the_fourth_case(spec, params, X, T):
        calls[0] += 1
        if calls[0] == 4:
            raise KeyboardInterrupt
        return backprop(spec, params, X, T)

    result = run_sweep(10, seed=2, impl=stops_at_the_fourth_case, progress=False)
    assert result.interrupted and len(result.results) == 3 and not result.shrunk
    assert set(result.rows["case"]) == {"c0001", "c0002", "c0003"}

    module = tmp_path / "stopper.py"
    module.write_text(
        "import sys\nfrom refbp import backprop\ncalls = [0]\n\ndef impl(spec, params, X, T):\n"
        "    calls[0] += 1\n    if calls[0] == 4:\n        raise KeyboardInterrupt\n"
        "    if calls[0] == 6:\n        sys.exit(0)\n"
        "    return backprop(spec, params, X, T)\n"
    )
    # Under the command, a KeyboardInterrupt or SystemExit that the implementation raises
    # itself (no Ctrl-C was pressed) is a finding, not the end of the run.
    code = main(["sweep", "--cases", "10", "--out", str(tmp_path / "r"), "--quiet", "--impl", f"{module}:impl"])
    assert code == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL: 10 cases") and "c0004: impl raised KeyboardInterrupt" in out
    assert "c0006: impl raised SystemExit: 0" in out
    summary = json.loads((tmp_path / "r" / "sweep.json").read_text())
    assert summary["meta"]["interrupted"] is False and summary["meta"]["cases"] == 10
    assert summary["counts_by_status"]["error"] == 2


def test_the_progress_bar_counts_to_the_end_on_stderr(capsys) -> None:
    run_sweep(4, seed=0, progress=True, fd="off")
    err = capsys.readouterr().err
    assert err.endswith("\n") and f"[{'#' * 30}] 4/4 cases" in err.splitlines()[-1]
    run_sweep(4, seed=0, progress=False, fd="off")
    assert capsys.readouterr().err == ""


def test_an_impl_module_that_exits_on_import_is_bad_input(tmp_path: Path, capsys) -> None:
    module = tmp_path / "quits.py"
    module.write_text("import sys\nsys.exit(0)\n\ndef impl(spec, params, X, T):\n    pass\n")
    assert main(["sweep", "--cases", "1", "--out", str(tmp_path / "r"), "--impl", f"{module}:impl"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--impl: expected an importable module (SystemExit: 0)" in err
    assert not (tmp_path / "r" / "sweep.json").exists()
