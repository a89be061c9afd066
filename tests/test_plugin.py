"""The pytest plugin, run in subprocesses on the example project (examples/gate_demo) and on a trivial one."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from oracle.compare import FAILING_STATUSES
from oracle.pytest_plugin import gate_label

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gate_demo"
GATE = "tests/test_gradients.py::test_backprop_on_random_networks"


ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess session: this checkout's refbp first on the path, whatever is installed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_", "GATE_DEMO_"))}
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": path, **extra}


def _pytest(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
    return subprocess.run(command, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gate") / "gate_demo"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return root


def _testcases(path: Path) -> dict[str, str | None]:
    """``{name: failure message or None}`` of every JUnit testcase (each name once, see :func:`_testcase_names`)."""
    cases = ET.parse(path).getroot().iter("testcase")
    return {c.get("name"): (c.find("failure").get("message") if c.find("failure") is not None else None) for c in cases}


def _testcase_names(path: Path) -> list[str]:
    """The names of the JUnit testcases in file order, duplicates kept."""
    return [c.get("name") for c in ET.parse(path).getroot().iter("testcase")]


def _failure_testcases(report_dir: Path, gate: str) -> set[str]:
    """The JUnit testcase names a gate's CSV report calls for: one per failing ``(case, layer, quantity)``."""
    rows = pd.read_csv(report_dir / f"test_gradients-{gate}.csv")
    failing = rows[rows["status"].isin(FAILING_STATUSES)]
    return {
        f"{gate}[{case} {'input' if layer == 0 else f'layer {layer}'} {quantity}]"
        for case, layer, quantity in zip(failing["case"], failing["layer"], failing["quantity"], strict=True)
    }


def _without_wall_times(markdown: str) -> str:
    return re.sub(r"wall time: `[^`]*`", "wall time: `…`", markdown)


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
    assert "smallest failing case (shrunk-1: 2 layer(s), batch 1):" in out
    # The demo returns parameter gradients only: the diagnosis comes from which layers still agree.
    assert "diagnosis: layer 2 agrees, layer 1 does not (dL/dW, dL/db)" in out
    # gate_demo imports because the project's pytest settings put "." on the path: the replay line says so.
    replay = re.search(r"replay: PYTHONPATH=\. refbp replay '([^']+)' --impl gate_demo.backprop_buggy:backprop", out)
    assert replay is not None and json.loads(replay.group(1))["batch"] == 1
    assert "2 failed, 1 passed" in out

    report = json.loads((tmp_path / "reports" / "test_gradients-test_backprop_on_random_networks.json").read_text())
    assert report["verdict"] == "fail" and report["meta"]["cases"] == 30
    first_layers = {(d["layer"], d["quantity"]) for d in report["first_divergence"]}
    assert first_layers == {(1, "dL/dW")}

    # JUnit: the two gate tests, the passing strategy test, and one testcase per failing (case, layer, quantity).
    names = _testcase_names(tmp_path / "junit.xml")
    testcases = _testcases(tmp_path / "junit.xml")
    assert len(names) == len(testcases)  # each (case, layer, quantity) once
    expected = set()
    for gate in ("test_backprop_on_random_networks", "test_backprop_on_the_course_network"):
        expected |= _failure_testcases(tmp_path / "reports", gate)
    assert set(names) == expected | {
        "test_backprop_on_random_networks",
        "test_backprop_on_the_course_network",
        "test_gradients_have_the_parameter_shapes",
    }
    assert {" ".join(name.split("[")[1].rstrip("]").split()[1:]) for name in expected} == {
        "layer 1 dL/dW",
        "layer 1 dL/db",
        "input dL/dx",
    }
    assert testcases["test_gradients_have_the_parameter_shapes"] is None
    assert testcases["test_backprop_on_random_networks"].startswith("oracle.gate.BackpropMismatch")
    message = testcases["test_backprop_on_random_networks[c0003 layer 1 dL/dW]"]
    assert message.startswith("c0003: layer 1, dL/dW (impl~torch): mismatch")
    failure = next(
        c.find("failure")
        for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
        if c.get("name") == "test_backprop_on_random_networks[c0003 layer 1 dL/dW]"
    )
    assert "--impl gate_demo.backprop_buggy:backprop" in failure.text
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) == len(testcases) and int(suite.get("failures")) == len(testcases) - 1

    text = summary.read_text()
    assert text.count("## refbp gate: ") == 2 and text.count("**FAIL**") == 2
    assert "### Where it diverges" in text and "### Shrunk failures" in text
    report_md = (tmp_path / "reports" / "test_gradients-test_backprop_on_random_networks.md").read_text()
    assert report_md.strip() in text  # the step summary is the gate's Markdown report


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
    runs = {}
    for kind, extra in (("serial", ()), ("xdist", ("-n", "2"))):
        runs[kind] = _pytest(
            project,
            *common,
            *extra,
            f"--refbp-report={tmp_path / kind}",
            f"--junitxml={tmp_path / kind / 'junit.xml'}",
            GATE_DEMO_IMPL="buggy",
            GITHUB_STEP_SUMMARY=str(tmp_path / f"{kind}-summary.md"),
        )
    serial, sharded = runs["serial"], runs["xdist"]
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
    summaries = [_without_wall_times((tmp_path / f"{kind}-summary.md").read_text()) for kind in ("serial", "xdist")]
    assert summaries[0] == summaries[1] and summaries[0].count("## refbp gate: ") == 1
    # The per-(case, layer, quantity) JUnit testcases, failure text included, are the serial run's.
    failures = []
    for kind in ("serial", "xdist"):
        cases = ET.parse(tmp_path / kind / "junit.xml").getroot().iter("testcase")
        failures.append(sorted((c.get("name"), c.find("failure").text) for c in cases if "[c" in c.get("name", "")))
    assert failures[0] == failures[1] and len(failures[0]) > 10
    gate_line = "tests/test_gradients.py::test_backprop_on_random_networks: FAIL ("
    assert gate_line in serial.stdout and gate_line in sharded.stdout
    verdicts = [
        [line.split("; report ")[0] for line in run.stdout.splitlines() if line.startswith(gate_line)]
        for run in (serial, sharded)
    ]
    assert verdicts[0] == verdicts[1] and len(verdicts[0]) == 1


PLAIN_TESTS = """\
import sys

import pytest

HEAVY = ("torch", "pandas", "numpy", "refbp", "oracle.gate", "oracle.sweep")


@pytest.mark.parametrize("x", [1, 2])
def test_one(x):
    assert x


def test_the_plugin_imported_nothing_heavy():
    assert "oracle.pytest_plugin" in sys.modules or "no:refbp" in sys.argv
    assert [m for m in HEAVY if m in sys.modules] == []
"""


def _without_timing(stdout: str) -> list[str]:
    return [re.sub(r" in \d+\.\d+s", " in …s", line) for line in stdout.splitlines()]


def test_a_session_without_the_gate_is_unchanged(tmp_path: Path) -> None:
    project = tmp_path / "plain"
    project.mkdir()
    (project / "test_plain.py").write_text(PLAIN_TESTS)
    summary = tmp_path / "summary.md"
    with_plugin = _pytest(project, "--collect-only", GITHUB_STEP_SUMMARY=str(summary))
    without = _pytest(project, "--collect-only", "-p", "no:refbp")
    assert _without_timing(with_plugin.stdout) == _without_timing(without.stdout)
    assert with_plugin.stdout.splitlines()[:2] == ["test_plain.py::test_one[1]", "test_plain.py::test_one[2]"]

    # A full run: the same output as without the plugin, and nothing written, whatever --refbp-* says.
    reports = tmp_path / "reports"
    options = ("-rA", f"--refbp-report={reports}", "--refbp-cases=3")
    with_plugin = _pytest(project, *options, GITHUB_STEP_SUMMARY=str(summary))
    assert with_plugin.returncode == 0, with_plugin.stdout + with_plugin.stderr
    assert "3 passed" in with_plugin.stdout and "refbp" not in with_plugin.stdout
    without = _pytest(project, "-rA", "-p", "no:refbp")
    assert _without_timing(with_plugin.stdout) == _without_timing(without.stdout)
    assert not summary.exists() and not reports.exists()
    assert sorted(p.name for p in project.iterdir()) == ["test_plain.py"]

    run = _pytest(project, f"--junitxml={tmp_path / 'junit.xml'}", "-n", "2", GITHUB_STEP_SUMMARY=str(summary))
    assert run.returncode == 0 and "refbp gate" not in run.stdout
    assert not summary.exists()
    plain = {"test_one[1]", "test_one[2]", "test_the_plugin_imported_nothing_heavy"}
    assert set(_testcases(tmp_path / "junit.xml")) == plain


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
    assert 'pip install torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}' in workflow
    assert "TORCH_INDEX_URL: ${{ vars.TORCH_INDEX_URL }}" in workflow
    assert "working-directory: examples/gate_demo" in workflow and (EXAMPLE / "tests").is_dir()
    assert "--refbp-report reports" in workflow and "--junitxml reports/junit.xml" in workflow
    assert "uses: actions/upload-artifact@v4" in workflow and "path: examples/gate_demo/reports/" in workflow


def test_the_ci_workflow_is_valid_yaml_with_the_steps_in_order() -> None:
    import yaml

    workflow = yaml.safe_load((EXAMPLE.parent / "ci" / "refbp-gate.yml").read_text())
    assert set(workflow[True]) == {"push", "pull_request"}  # YAML 1.1 reads the key `on` as True
    steps = workflow["jobs"]["gate"]["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert uses == ["actions/checkout", "actions/setup-python", "", "", "actions/upload-artifact"]
    install, gate, upload = steps[2]["run"], steps[3], steps[4]
    assert install.index("torch==2.13.0") < install.index('".[test]"')  # the CPU wheel first, then refbp
    assert gate["run"].split()[:3] == ["python", "-m", "pytest"] and "-n auto" in gate["run"]
    assert upload["if"] == "always()" and upload["uses"] == "actions/upload-artifact@v4"
    assert upload["with"]["path"] == f"{gate['working-directory']}/reports/"


EXPECTED_RED = """
import numpy as np
import pytest

from oracle.gate import BackpropMismatch
from oracle.strategies import network_specs
from refbp.network import backprop

SEEN = set()


def recording(spec, params, X, T):
    SEEN.update({str(X.dtype), *(str(p.dtype) for p in params.values())})
    return backprop(spec, params, X, T)


def doubled(spec, params, X, T):
    trace, grads = backprop(spec, params, X, T)
    grads.layers[-1].grad_W = 2 * grads.layers[-1].grad_W
    return trace, grads


def test_expected_red(bp_oracle):
    with pytest.raises(BackpropMismatch):
        bp_oracle.assert_matches(doubled, max_depth=2)


def test_dtype_header(bp_oracle):
    record = bp_oracle.assert_matches(recording, specs=network_specs(max_depth=2))
    assert SEEN == {record["dtype"]} == {"float32"}


def test_red(bp_oracle):
    bp_oracle.assert_matches(doubled, max_depth=2)
"""


def test_junit_failures_only_for_failed_tests_dtype_header_and_a_replay_that_runs(tmp_path: Path) -> None:
    """A red gate inside ``pytest.raises`` once added failed JUnit testcases to a passing run; ``--refbp-dtype
    float32`` with ``specs=`` once said float32 and ran float64; the replay line needed an unstated PYTHONPATH."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_mine.py").write_text(EXPECTED_RED, encoding="utf-8")
    junit, reports = tmp_path / "junit.xml", tmp_path / "reports"
    run = _pytest(
        tmp_path, "--refbp-dtype=float32", "--refbp-cases=4", f"--junitxml={junit}", f"--refbp-report={reports}"
    )
    assert run.returncode == 1 and "1 failed, 2 passed" in run.stdout, run.stdout + run.stderr
    names = set(_testcases(junit))
    assert {"test_expected_red", "test_dtype_header", "test_red"} <= names
    extra = names - {"test_expected_red", "test_dtype_header", "test_red"}
    assert extra and all(name.startswith("test_red[") for name in extra)
    meta = json.loads((reports / "test_mine-test_dtype_header.json").read_text())["meta"]
    assert meta["dtype"] == "float32"

    line = next(x for x in run.stdout.splitlines() if "replay: " in x).split("replay: ", 1)[1]
    assert line.startswith("PYTHONPATH=tests refbp replay '") and line.endswith("--impl test_mine:doubled")
    command = line.replace(" refbp replay ", f" {sys.executable} -m refbp replay ", 1)
    env = {k: v for k, v in _env().items() if k != "PYTHONPATH"}  # only what the line itself sets
    replay = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert replay.returncode == 1, replay.stdout + replay.stderr  # it imported test_mine and found the bug
    assert "dL/dW (impl~torch): mismatch, max rel err 5.00e-01" in replay.stdout
