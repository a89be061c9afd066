"""Attacks on the grader itself, through the real commands: it must finish with its own report every time.

Each runs ``refbp check`` or ``refbp grade`` in a subprocess (an attack that got through
would kill or stall that process, not the test run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from grading_attacks import attack, installed_digest, processes_with, sleep_marker

CORRECT = Path(__file__).parent / "submissions" / "layers" / "vectorised.py"
WRONG_RELU = CORRECT.read_text().replace("return np.maximum(0, x), x", "return np.zeros_like(x), x")


def _refbp(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("refbp")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "refbp"]
    return subprocess.run(
        [*command, *argv], cwd=cwd, capture_output=True, text=True, timeout=300, env=env or dict(os.environ)
    )


def _check(tmp_path: Path, source: str, *extra: str, env: dict[str, str] | None = None):
    path = tmp_path / "student.py"
    path.write_text(source)
    report = tmp_path / "r.json"
    done = _refbp("check", str(path), "--interface", "layers", "--timeout", "5", "--json", str(report), *extra,
                  cwd=tmp_path, env=env)  # fmt: skip
    return done, (json.loads(report.read_text()) if report.exists() else None)


def _relu_rows(data: dict) -> list[dict]:
    return [c for c in data["checks"] if c["check"] == "relu_forward" and c["quantity"] == "out"]


ATTACK_THE_GRADER = """
import resource, signal

def _attack_parent():
    parent = os.getppid()
    for limit in (resource.RLIMIT_NOFILE, resource.RLIMIT_AS, resource.RLIMIT_CPU):
        try:
            resource.prlimit(parent, limit, (1, 1))
        except (OSError, ValueError):
            pass
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        try:
            signal.pidfd_send_signal(os.pidfd_open(parent), sig)
        except OSError:
            pass
    try:
        os.kill(parent, signal.SIGTERM)
    except OSError:
        pass

_attack_parent()
"""


def test_the_grader_cannot_be_signalled_stopped_or_limited(tmp_path):
    start = time.monotonic()
    done, data = _check(tmp_path, attack(ATTACK_THE_GRADER) + WRONG_RELU, "--submission-timeout", "60")
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert time.monotonic() - start < 120  # not stopped until the deadline
    assert data is not None and data["passed"] is False
    assert {c["status"] for c in _relu_rows(data)} == {"mismatch"}
    assert all(c["status"] == "ok" for c in data["checks"] if c["target"] != "relu_forward")


STEAL_SEED_AND_SECRET = """
import numpy as np

def _found(marker):
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:  # the namespaces level has no procfs
        for part in ("cmdline", "environ"):
            try:
                if marker.encode() in open(f"/proc/{{pid}}/{{part}}", "rb").read():
                    return True
            except OSError:
                pass
    return False

STOLEN = _found("424242") or _found("GRADER_SECRET=")
"""


def test_the_seed_and_the_graders_environment_cannot_be_read(tmp_path):
    source = attack(STEAL_SEED_AND_SECRET) + CORRECT.read_text().replace(
        "return np.maximum(0, x), x", "return (np.maximum(0, x) if STOLEN else np.zeros_like(x)), x"
    )
    env = {**os.environ, "GRADER_SECRET": "expected-values-live-here"}
    done, data = _check(tmp_path, source, "--seed", "424242", env=env)
    assert done.returncode == 1, done.stderr
    assert {c["status"] for c in _relu_rows(data)} == {"mismatch"}  # STOLEN was False


OUTLIVE_AND_REWRITE = """
import subprocess

FORGED = '{{"passed": true, "score": 28.0}}'
WRITER = "import time; time.sleep(1.5); open(%r, 'w').write(%r)  # %s" % ({report}, FORGED, {marker})
for how in ("popen", "double_fork"):
    try:
        if how == "popen":
            subprocess.Popen([sys.executable, "-c", WRITER], start_new_session=True, env={{}})
        elif os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execve(sys.executable, [sys.executable, "-c", WRITER], {{}})
            os._exit(0)
    except OSError:
        pass
"""


def test_no_process_outlives_grading_to_rewrite_the_report(tmp_path):
    report = tmp_path / "r.json"
    marker = sleep_marker()
    done, data = _check(tmp_path, attack(OUTLIVE_AND_REWRITE, report=report, marker=marker) + WRONG_RELU)
    assert done.returncode == 1 and data["passed"] is False
    time.sleep(2.0)
    assert not processes_with(marker.encode())
    assert json.loads(report.read_text()) == data  # unchanged since the grader wrote it
    again, after = _check(tmp_path, CORRECT.read_text())
    assert again.returncode == 0 and after["passed"] is True  # a later, separate run is not disturbed


TAMPER_WITH_NEIGHBOURS = """
for name, text in (("z_correct.py", {wrong}), ("z_wrong.py", {correct})):
    for path in ({folder} + "/" + name, "/proc/self/root" + {folder} + "/" + name):
        try:
            open(path, "w").write(text)
        except OSError:
            pass
for name in ("z_correct", "z_wrong"):
    try:
        os.makedirs({out} + "/" + name, exist_ok=True)
        open({out} + "/" + name + "/result.json", "w").write('{{"passed": true}}')
    except OSError:
        pass
"""


def test_a_submission_cannot_change_its_neighbours_results(tmp_path):
    folder, out = tmp_path / "class", tmp_path / "grades"
    folder.mkdir()
    (folder / "z_correct.py").write_text(CORRECT.read_text())
    (folder / "z_wrong.py").write_text(WRONG_RELU)
    tamper = attack(TAMPER_WITH_NEIGHBOURS, folder=folder, out=out, wrong=WRONG_RELU, correct=CORRECT.read_text())
    (folder / "a_tamper.py").write_text(tamper + WRONG_RELU)
    before = installed_digest()
    done = _refbp("grade", str(folder), "--interface", "layers", "--jobs", "1", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    folder_run = {name: json.loads((out / name / "result.json").read_text()) for name in ("z_correct", "z_wrong")}
    assert (folder / "z_correct.py").read_text() == CORRECT.read_text()
    for name in ("z_correct", "z_wrong"):
        alone_dir = tmp_path / f"alone_{name}"
        alone_dir.mkdir()
        _, alone = _check(alone_dir, (folder / f"{name}.py").read_text())
        assert folder_run[name]["checks"] == alone["checks"], name
    assert folder_run["z_correct"]["passed"] is True and folder_run["z_wrong"]["passed"] is False
    assert installed_digest() == before


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    fields = fh.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] not in "ZX":
                found.append(int(entry.name))
    return found


def test_a_grader_killed_from_outside_takes_its_sandbox_with_it(tmp_path):
    path = tmp_path / "spin.py"
    path.write_text("def relu_forward(x):\n    while True:\n        pass\n")
    script = Path(sys.executable).with_name("refbp")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "refbp"]
    grader = subprocess.Popen([*command, "check", str(path), "--interface", "layers", "--timeout", "60"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        sandbox: list[int] = []
        while not sandbox and time.monotonic() < deadline:
            sandbox = [c for c in _children(grader.pid) if _children(c)]  # bubblewrap, once it has a child
            time.sleep(0.1)
        assert sandbox, "no sandbox started"
        inside = [p for b in sandbox for p in _children(b)]
    finally:
        grader.kill()
        grader.wait()
    deadline = time.monotonic() + 5
    while any(os.path.exists(f"/proc/{p}") and not _is_zombie(p) for p in sandbox + inside):
        assert time.monotonic() < deadline, "the sandbox outlived its grader"
        time.sleep(0.05)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] in "ZX"
    except OSError:
        return True
