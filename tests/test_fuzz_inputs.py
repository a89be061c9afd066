"""Fuzzing the promise on bad input: spec JSON/TOML, worked-example TOML and command-line arguments.

Whatever hypothesis draws, every command run (in-process, through ``refbp.cli.main``)

* exits 0, 1 or 2 (never a traceback, never another status);
* on exit 2, prints at most one line on stderr;
* writes nothing outside its output folder (``out/`` of a scratch folder; ``/dev/null``
  stays a device);
* leaves its input files byte for byte as they were.

Each test is bounded (a fixed number of examples, small networks, finite differences
off, one case per sweep) so that the whole file takes well under a minute in CI. The
grader's sandbox is replaced by a stub result in the command-line fuzz: what is fuzzed
there is argument and output-path handling, which runs before any grading.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grading.grader import SubmissionResult
from refbp import InputError, NetworkSpec
from refbp.cli import main

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
)

SPEC: dict[str, Any] = {
    "inputs": 2,
    "layout": "in_out",
    "dtype": "float64",
    "layers": [
        {"units": 2, "activation": "leaky_relu", "bias": "per_unit", "negative_slope": 0.1},
        {"units": 1, "activation": "identity", "bias": "shared"},
    ],
    "loss": {"kind": "half_sse", "reduction": "sum", "targets": "dense"},
    "l2": {"lambda": 0.1, "include_bias": False},
}
EXAMPLE: dict[str, Any] = {
    "title": "one unit",
    "learning_rate": 0.5,
    "network": {
        "inputs": 2,
        "layers": [{"units": 1, "activation": "sigmoid", "bias": "shared"}],
        "loss": {"kind": "half_sse", "reduction": "sum"},
    },
    "parameters": {"W1": [[0.5], [-0.25]], "b1": 0.1},
    "aliases": {"w1": "W1[0,0]", "o": "a1[0]"},
    "data": {"x": [1, 2], "t": [1]},
    "claims": {"o": "0.5250", "loss": "0.1128", "dE/dw1": "-0.1185"},
    "after_steps": {"1": {"w1": "0.5592"}},
}

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.sampled_from([0, -1, 10**8, 10**12, 10**150, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["relu6", "no", "1e5", "1e400", "1e-400", "0e0", "\n", "a\nb", "W9[0,0]", "nan"]),
    st.lists(st.one_of(st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=2)), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-2, 2), max_size=2),
)
KEYS = st.one_of(st.text(max_size=6), st.sampled_from(["units", "lambda", "a\nb", "include_bias", "", "claims"]))


@st.composite
def mutated(draw: st.DrawFn, base: dict) -> dict:
    """``base`` with one to three random edits: a value replaced by junk, a key removed, or a key added."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        node: Any = data
        while True:
            children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
            containers = [(k, v) for k, v in children if isinstance(v, dict | list) and v]
            if not containers or draw(st.booleans()):
                break
            node = draw(st.sampled_from(containers))[1]
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "add" or not keys:
            if isinstance(node, dict):
                node[draw(KEYS)] = draw(JUNK)
            else:
                node.append(draw(JUNK))
        elif action == "delete":
            del node[draw(st.sampled_from(keys))]
        else:
            node[draw(st.sampled_from(keys))] = draw(JUNK)
    return data


def _tomlable(value: Any) -> Any:
    """TOML has no null: ``None`` becomes an empty string."""
    if isinstance(value, dict):
        return {str(k): _tomlable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tomlable(v) for v in value]
    return "" if value is None else value


def _digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` but ``out/``: its kind and content hash."""
    found = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if Path(root, d) != folder / "out"]
        for name in files:
            path = Path(root, name)
            mode = os.lstat(path).st_mode
            found[str(path.relative_to(folder))] = (
                hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(mode) else oct(mode)
            )
        for name in dirs:
            found[str(Path(root, name).relative_to(folder)) + "/"] = "folder"
    return found


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A scratch folder as the working directory."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            yield Path(folder)
        finally:
            os.chdir(previous)


def _run_and_check_the_promise(folder: Path, argv: list[str]) -> int:
    before = _digest(folder)
    null = os.stat("/dev/null")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse's usage errors
            code = stop.code
    text = err.getvalue()
    assert code in (0, 1, 2), (argv, code, text)
    assert "Traceback" not in text and "Error:" not in text.replace("refbp: error:", ""), (argv, text)
    if code == 2:
        assert text.count("\n") <= 1 and text.startswith("refbp"), (argv, text)
    assert _digest(folder) == before, argv
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and os.stat("/dev/null").st_rdev == null.st_rdev
    return code


@SETTINGS
@given(mutated(SPEC))
def test_fuzzed_spec_json_through_replay(spec):
    case = json.dumps({"spec": spec, "batch": 2, "seed": 1})
    with _scratch() as folder:
        (folder / "case.json").write_text(case)
        _run_and_check_the_promise(folder, ["replay", "case.json", "--fd", "off"])


@SETTINGS
@given(mutated(SPEC))
def test_fuzzed_spec_toml_through_the_api(spec):
    text = tomli_w.dumps(_tomlable(spec))
    try:
        NetworkSpec.from_toml(text, source="spec.toml")
    except InputError as err:
        assert "\n" not in str(err) and str(err).startswith("spec.toml")


@SETTINGS
@given(mutated(EXAMPLE), st.one_of(st.none(), st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=3))))
def test_fuzzed_worked_example_toml(example, splice):
    raw = tomli_w.dumps(_tomlable(example)).encode("utf-8")
    if splice is not None:
        at = splice[0] % (len(raw) + 1)
        raw = raw[:at] + splice[1] + raw[at:]
    with _scratch() as folder:
        (folder / "example.toml").write_bytes(raw)
        _run_and_check_the_promise(folder, ["examples", "example.toml", "--out", "out/r", "--quiet"])


PATHS = st.sampled_from(
    [
        "out/r",
        "out/r.json",
        "out/a/b/c.md",
        "out",
        "{input}",  # the command's own input, which it must refuse to write
        "/dev/null",
        "{input}/x",
        "out/" + "n" * 300,
        "",
        "out/r\nx",
    ]
)
COMMANDS = {
    "sweep": (
        ["--cases", "--seed", "--max-depth", "--max-width", "--dtype", "--out", "--impl", "--fd"],
        ["--cases", "1", "--fd", "off", "--no-shrink", "--quiet", "--max-depth", "2", "--max-width", "3"],
    ),
    "replay": (["--fd", "--impl"], ["--fd", "off"]),
    "examples": (["--out", "--json"], ["--quiet"]),
    "bench": (["--out", "--workers", "--repeats"], ["--workers", "100000"]),
    "check": (["--json", "--gradescope", "--junit", "--markdown", "--seed", "--timeout"], ["--interface", "layers"]),
    "grade": (["--out", "--json", "--junit", "--markdown", "--gradescope", "--jobs"], ["--interface", "layers"]),
}
POSITIONAL = {"replay": ["case.json"], "examples": ["input.toml"], "check": ["student.py"], "grade": ["submissions"]}
OUTPUT_OPTIONS = {"--out", "--json", "--gradescope", "--junit", "--markdown"}
VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1e5", "100000", "nan", "2", "abc", "float16", "x.py:f", "student.py:backprop"]), PATHS
)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    options, forced = COMMANDS[command]
    # The default output folder moves into out/ (a fuzzed --out later on the line overrides it).
    argv = [command, *POSITIONAL.get(command, []), *(["--out", "out/default"] if "--out" in options else [])]
    for _ in range(draw(st.integers(0, 3))):
        option = draw(st.sampled_from(options))
        argv += [option, draw(PATHS if option in OUTPUT_OPTIONS else VALUES)]
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(st.sampled_from(["--nope", "-", "--limit", "depth=0"])))
    # What keeps each run short: one tiny case, no finite differences, no real benchmark.
    argv = [*argv, *forced] if command in ("sweep", "bench") else argv
    own_input = POSITIONAL.get(command, ["out/no-input"])[0]
    return [arg.replace("{input}", own_input) for arg in argv]


def _stub_grade(path, interface, seed=0, limits=None):
    return SubmissionResult(Path(path).name, interface, seed, [])


@SETTINGS
@given(command_lines())
def test_fuzzed_command_lines(argv):
    with _scratch() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr("grading.grader.grade_submission", _stub_grade)
        (folder / "input.toml").write_text(tomli_w.dumps(EXAMPLE))
        (folder / "case.json").write_text(json.dumps({"spec": SPEC, "batch": 2, "seed": 0}))
        (folder / "student.py").write_text("def backprop(spec, params, X, T):\n    raise SystemExit(0)\n")
        (folder / "submissions").mkdir()
        for name in ("a.py", "summary.md.py", "..py"):
            (folder / "submissions" / name).write_text("x = 1\n")
        _run_and_check_the_promise(folder, argv)
