"""The example project examples/conv_gate_demo, run in pytest subprocesses: the layer gate catches each
wrong hand-written conv backward and names the wrong quantity; the fixed one passes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "conv_gate_demo"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("conv") / "conv_gate_demo"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return root


def _pytest(cwd: Path, implementation: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CONV_DEMO_"))}
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": path, "CONV_DEMO_IMPL": implementation}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _statuses(out: str) -> dict[str, str]:
    """``{quantity: status}`` of the smallest failing case's table in a LayerMismatch."""
    rows = re.findall(r"^E\s+(out|dx|dW|db)\s+(\w+)\s+\S+\s+rtol", out, flags=re.M)
    return dict(rows)


@pytest.mark.parametrize(("implementation", "wrong"), [("buggy_dx", "dx"), ("buggy_dw", "dW")])
def test_a_wrong_conv_backward_fails_naming_the_quantity(project: Path, implementation: str, wrong: str) -> None:
    run = _pytest(project, implementation)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "LayerMismatch: layer gate (conv2d, style cs231n):" in out and "1 failed" in out
    statuses = _statuses(out)
    assert statuses == {q: ("mismatch" if q == wrong else "ok") for q in ("out", "dx", "dW", "db")}, out
    shrunk = re.search(r'smallest failing case: input \((\d+), \d+, \d+, \d+\), .*"kernel": (\d+)', out)
    assert shrunk and shrunk.group(1) == "1" and int(shrunk.group(2)) >= 2  # one example, a kernel that can flip


def test_the_fixed_conv_backward_passes(project: Path) -> None:
    run = _pytest(project, "fixed")
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
