"""The pytest plugin, run in subprocesses on the example project (examples/gate_demo) and on a trivial one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from oracle.pytest_plugin import gate_label

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gate_demo"
GATE = "tests/test_gradients.py::test_backprop_on_random_networks"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_", "GATE_DEMO_"))}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def _pytest(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
    return subprocess.run(command, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gate") / "gate_demo"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return root


def _testcases(path: Path) -> dict[str, str | None]:
    """``{name: failure message or None}`` of every JUnit testcase."""
    cases = ET.parse(path).getroot().iter("testcase")
    return {c.get("name"): (c.find("failure").get("message") if c.find("failure") is not None else None) for c in cases}


def test_the_buggy_implementation_fails_at_layer_1(project: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    run = _pytest(
        project,
        f"--junitxml={tmp_path / 'junit.xml'}",
        f"--refbp-report={tmp_path / 'reports'}",
        GATE_DEMO_IMPL="buggy",
        GITHUB_STEP_SUMMARY=str(summary),
    )
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert "BackpropMismatch: backprop gate:" in out
    assert "c0003: layer 1, dL/dW (impl~torch): mismatch" in out  # the bug is in layer 1's backward step
    assert "layer 2, dL/dW" not in out and "layer 3, dL/dW" not in out
    assert "--impl gate_demo.backprop_buggy:backprop" in out
    assert "2 failed, 1 passed" in out

    report = json.loads((tmp_path / "reports" / "test_gradients-test_backprop_on_random_networks.json").read_text())
    assert report["verdict"] == "fail" and report["meta"]["cases"] == 30
    first_layers = {(d["layer"], d["quantity"]) for d in report["first_divergence"]}
    assert first_layers == {(1, "dL/dW")}

    # JUnit: the two gate tests, the passing strategy test, and one testcase per failing (case, layer, quantity).
    testcases = _testcases(tmp_path / "junit.xml")
    rows = pd.read_csv(tmp_path / "reports" / "test_gradients-test_backprop_on_random_networks.csv")
    failing = rows[rows["status"] == "mismatch"]
    expected = {f"test_backprop_on_random_networks[{c} {'input' if layer == 0 else f'layer {layer}'} {q}]"
                for c, layer, q in zip(failing["case"], failing["layer"], failing["quantity"], strict=True)}
    assert expected <= set(testcases)
    assert {name for name in testcases if name.startswith("test_backprop_on_random_networks[")} == expected
    assert testcases["test_gradients_have_the_parameter_shapes"] is None
    assert testcases["test_backprop_on_random_networks"].startswith("oracle.gate.BackpropMismatch")
    message = testcases["test_backprop_on_random_networks[c0003 layer 1 dL/dW]"]
    assert message.startswith("c0003: layer 1, dL/dW (impl~torch): mismatch")
    assert {case.split()[0] for case in testcases if "[" in case} >= {"test_backprop_on_the_course_network[c0001"}
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) == len(testcases) and int(suite.get("failures")) == len(testcases) - 1

    text = summary.read_text()
    assert text.count("## refbp gate: ") == 2 and "**FAIL**" in text
    assert "### Where it diverges" in text and "### Shrunk failures" in text


def test_the_fixed_implementation_passes(project: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    run = _pytest(project, f"--junitxml={tmp_path / 'junit.xml'}", GITHUB_STEP_SUMMARY=str(summary))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
    assert f"{GATE}: PASS, 30 cases, seed 0" in run.stdout
    assert set(_testcases(tmp_path / "junit.xml").values()) == {None}
    assert len(_testcases(tmp_path / "junit.xml")) == 3
    text = summary.read_text()
    assert text.count("**PASS** — ") == 2 and "**FAIL**" not in text


def test_xdist_shards_merge_into_the_serial_report(project: Path, tmp_path: Path) -> None:
    common = ("-k", "random_networks", "--refbp-cases=16", "--refbp-seed=7")
    serial = _pytest(project, *common, f"--refbp-report={tmp_path / 'serial'}", GATE_DEMO_IMPL="buggy")
    sharded = _pytest(project, *common, "-n", "2", f"--refbp-report={tmp_path / 'xdist'}", GATE_DEMO_IMPL="buggy")
    assert serial.returncode == sharded.returncode == 1, sharded.stdout + sharded.stderr
    assert "test_backprop_on_random_networks[refbp-shard1of2]" in sharded.stdout
    assert "test_backprop_on_random_networks[refbp-shard2of2]" in sharded.stdout
    name = "test_gradients-test_backprop_on_random_networks"
    serial_csv = (tmp_path / "serial" / f"{name}.csv").read_text()
    assert serial_csv == (tmp_path / "xdist" / f"{name}.csv").read_text()
    assert serial_csv.count("\n") > 100
    reports = [json.loads((tmp_path / d / f"{name}.json").read_text()) for d in ("serial", "xdist")]
    for report in reports:
        report["meta"].pop("wall_seconds")
    assert reports[0] == reports[1]


def test_a_session_without_the_gate_is_unchanged(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('x', [1, 2])\ndef test_one(x):\n    assert x\n"
    )
    summary = tmp_path / "summary.md"
    with_plugin = _pytest(tmp_path, "--collect-only", GITHUB_STEP_SUMMARY=str(summary))
    without = _pytest(tmp_path, "--collect-only", "-p", "no:refbp")
    assert with_plugin.stdout.splitlines()[:-1] == without.stdout.splitlines()[:-1]
    assert with_plugin.stdout.splitlines()[:2] == ["test_plain.py::test_one[1]", "test_plain.py::test_one[2]"]
    run = _pytest(tmp_path, f"--junitxml={tmp_path / 'junit.xml'}", "-n", "2", GITHUB_STEP_SUMMARY=str(summary))
    assert run.returncode == 0 and "refbp gate" not in run.stdout
    assert not summary.exists()
    assert set(_testcases(tmp_path / "junit.xml")) == {"test_one[1]", "test_one[2]"}


def test_importing_the_plugin_imports_no_heavy_module() -> None:
    code = (
        "import sys, oracle.pytest_plugin\n"
        "print(sorted(m for m in ('torch', 'pandas', 'hypothesis', 'numpy', 'refbp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True)
    assert out.stdout.strip() == "[]"


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    for option, wording in [
        ("--refbp-cases=0", "--refbp-cases: expected an integer >= 1, got 0"),
        ("--refbp-dtype=float16", "--refbp-dtype: expected one of float64, float32, got 'float16'"),
        ("--refbp-fd=half", "--refbp-fd: expected one of full, directional, off, got 'half'"),
    ]:
        run = _pytest(tmp_path, option)
        assert run.returncode == 4 and wording in run.stderr, run.stderr


@pytest.mark.parametrize(
    ("nodeid", "label"),
    [
        ("t.py::test_a[refbp-shard1of2]", "t.py::test_a"),
        ("t.py::test_a[x-refbp-shard2of3]", "t.py::test_a[x]"),
        ("t.py::test_a[refbp-shard2of3-y]", "t.py::test_a[y]"),
        ("t.py::test_a[x-refbp-shard2of3-y]", "t.py::test_a[x-y]"),
        ("t.py::test_a[x]", "t.py::test_a[x]"),
    ],
)
def test_gate_label_drops_the_shard(nodeid: str, label: str) -> None:
    assert gate_label(nodeid) == label


def test_the_ci_workflow_uploads_what_the_gate_writes() -> None:
    workflow = (EXAMPLE.parent / "ci" / "refbp-gate.yml").read_text()
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in workflow
    assert "working-directory: examples/gate_demo" in workflow and (EXAMPLE / "tests").is_dir()
    assert "--refbp-report reports" in workflow and "--junitxml reports/junit.xml" in workflow
    assert "uses: actions/upload-artifact@v4" in workflow and "path: examples/gate_demo/reports/" in workflow
