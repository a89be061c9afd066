"""``--isolation``: the level is chosen, refused or warned about, and recorded in every report."""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import pytest

from grading import isolation, namespace_view, seccomp_filter
from grading.grader import grade_submission
from grading.sandbox import SandboxLimits
from refbp.cli import main
from refbp.errors import InputError

CORRECT = Path(__file__).parent / "submissions" / "layers" / "vectorised.py"


def test_auto_picks_namespaces_on_this_machine():
    assert isolation.choose_level("auto") == "namespaces"
    assert isolation.unavailable_reason("namespaces") is None


def test_an_unknown_level_is_refused_with_the_choices():
    with pytest.raises(InputError, match="expected one of auto, namespaces, user, process, got 'jail'"):
        isolation.choose_level("jail")


def test_a_level_the_machine_lacks_is_refused_in_one_line_naming_the_fix(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(isolation, "_namespaces_reason", lambda: "bubblewrap could not create the sandbox")
    monkeypatch.setattr(isolation, "_user_reason", lambda: "the user level needs the grader to run as root")
    assert main(["check", str(CORRECT), "--interface", "layers", "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--isolation" in err and "bubblewrap could not create the sandbox" in err
    assert "--isolation process" in err and "unprivileged user namespaces" in err
    assert not (tmp_path / "r.json").exists()


def test_the_weakest_level_warns_and_every_report_says_so(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["check", str(CORRECT), "--interface", "layers", "--isolation", "process", "--json", str(out / "r.json"),
         "--gradescope", str(out / "gs.json"), "--markdown", str(out / "f.md"), "--junit", str(out / "j.xml")]
    )  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: --isolation process runs student code without an OS boundary")
    assert "isolation process (no OS boundary)" in captured.out
    assert json.loads((out / "r.json").read_text())["isolation"] == "process"
    assert "isolation process (no OS boundary)" in json.loads((out / "gs.json").read_text())["output"]
    assert "isolation process (no OS boundary)" in (out / "f.md").read_text()
    assert '<property name="isolation" value="process"/>' in (out / "j.xml").read_text()


def test_the_folder_summary_records_the_level(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "a.py").write_text(CORRECT.read_text())
    assert main(["grade", str(folder), "--interface", "layers", "--out", str(tmp_path / "g"), "--quiet"]) == 0
    assert "isolation namespaces" in (tmp_path / "g" / "summary.md").read_text()
    assert "isolation" in (tmp_path / "g" / "summary.csv").read_text().splitlines()[0]
    assert json.loads((tmp_path / "g" / "a" / "result.json").read_text())["isolation"] == "namespaces"


def test_the_process_level_still_grades_correct_and_buggy_code_alike(tmp_path):
    buggy = tmp_path / "buggy.py"
    buggy.write_text(CORRECT.read_text().replace("dout * cache * (1 - cache)", "dout * cache"))
    limits = SandboxLimits(function_seconds=5.0, isolation="process")
    assert grade_submission(CORRECT, "layers", 0, limits).passed
    result = grade_submission(buggy, "layers", 0, limits)
    assert [r.check for r in result.rows if not r.passed] == ["sigmoid_backward"]
    assert result.isolation == "process"


def test_the_view_hides_the_grader_and_binds_only_what_the_child_needs(tmp_path):
    runner = tmp_path / "runner"
    runner.mkdir()
    sub = tmp_path / "s.py"
    sub.write_text("")
    cmd = namespace_view.command(runner, [sub], ["python"], allowed=(), scratch_bytes=1 << 20, seccomp_fd=None,
                                 info_fd=None)  # fmt: skip
    binds = [(cmd[i + 1], cmd[i + 2]) for i, arg in enumerate(cmd) if arg == "--ro-bind"]
    sources = [source for source, _ in binds]
    for package in ("refbp", "oracle", "grading", "torch"):
        assert not any(Path(s).name == package for s in sources), package
    assert (str(sub), f"{namespace_view.WORK}/s.py") in binds
    assert any(target == f"{namespace_view.SITE}/numpy" for _, target in binds)
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"):
        assert flag in cmd
    assert cmd[cmd.index("--cap-drop") + 1] == "ALL" and cmd[cmd.index("--uid") + 1] == "65534"
    assert "/proc" not in sources and "/" not in sources and os.path.expanduser("~") not in sources


def test_the_seccomp_program_is_well_formed_and_ends_by_allowing():
    for allow in (False, True):
        program = seccomp_filter.program(allow)
        assert len(program) % 8 == 0
        instructions = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
        assert instructions[-1] == (0x06, 0, 0, 0x7FFF0000)
        for index, (code, jt, jf, _) in enumerate(instructions):
            if code & 0x07 == 0x05:  # a jump stays inside the program
                assert index + 1 + max(jt, jf) < len(instructions)
        denied = {k for code, _, _, k in instructions if code == 0x15}
        assert {101, 310, 311, 165, 272, 308, 246, 321} <= denied  # ptrace, process_vm_*, mount, unshare, …
        assert (57 in denied) is not allow  # fork


def test_every_process_of_a_fresh_uid_is_killed_even_in_new_sessions():
    """The user level's clean-up: ``kill(-1)`` as the child's uid reaches processes that left every group."""
    import subprocess

    uid = isolation.fresh_uid()
    script = "setsid /bin/sleep 876.5 & (setsid /bin/sh -c '/bin/sleep 876.5 & exit' &) ; exit 0"
    starter = subprocess.Popen(["/bin/sh", "-c", script], user=uid, group=uid, extra_groups=[], cwd="/",
                               env={"PATH": "/usr/bin:/bin"}, start_new_session=True)  # fmt: skip
    try:
        starter.wait(30)
        deadline = time.monotonic() + 30  # generous: a loaded machine starts the second sleeper late
        while len(isolation.processes_of(uid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(isolation.processes_of(uid)) >= 2  # two sleepers, each in a session of its own
    finally:
        isolation.kill_uid(uid)
    assert isolation.processes_of(uid) == []
    assert isolation.fresh_uid() >= 1_000_000_000


def test_the_user_level_grades_or_is_refused_with_its_reason():
    reason = isolation.unavailable_reason("user")
    if reason is not None:  # e.g. not root, or the interpreter lives under a folder other users cannot enter
        with pytest.raises(InputError, match="--isolation: expected a machine that offers user isolation"):
            isolation.choose_level("user")
        return
    limits = SandboxLimits(function_seconds=5.0, isolation="user")
    result = grade_submission(CORRECT, "layers", 0, limits)
    assert result.passed and result.isolation == "user"


def test_a_grader_installed_inside_the_bound_system_is_hidden_whole():
    """Were the grader's source checkout inside a bound tree (under /usr, say), an empty tmpfs covers all of it."""
    checkout = str(Path(namespace_view.__file__).resolve().parent.parent)
    hidden = namespace_view.hidden_folders(("/usr", checkout))
    assert checkout in hidden  # with tests/ and every solution in it, not only grading/
    assert not any(f != g and f.startswith(g + "/") for f in hidden for g in hidden)  # nothing mounted twice
    assert checkout not in namespace_view.hidden_folders(("/usr",))
