"""Malformed worked-example files: one line on stderr naming file, line and field; exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from refbp.cli import EXIT_USAGE, main
from worked.command import BUNDLED_DIR

GOOD = (BUNDLED_DIR / "seed001_case1.toml").read_text(encoding="utf-8")


def _line(text: str, fragment: str) -> int:
    """1-based number of the first line holding ``fragment``."""
    return next(n for n, line in enumerate(text.splitlines(), start=1) if fragment in line)


def _variant(old: str, new: str) -> str:
    assert GOOD.count(old) == 1, old
    return GOOD.replace(old, new)


# name: (file text, fragment of the offending line or None, what the message must say)
MALFORMED = {
    "bad TOML": (_variant('t = [0.1, 0.05]', 't = [0.1, 0.05'), None, "expected valid TOML"),
    "unknown activation": (
        _variant('{ units = 2, activation = "sigmoid", bias = "shared" },\n    { units = 2',
                 '{ units = 2, activation = "sigmoidal", bias = "shared" },\n    { units = 2'),
        "[network]",
        "network.layers[0].activation: expected one of identity, sigmoid, tanh, relu, leaky_relu, softmax, "
        "got 'sigmoidal'",
    ),
    "unknown layer key": (
        _variant('{ units = 2, activation = "sigmoid", bias = "shared" },\n]',
                 '{ units = 2, activation = "sigmoid", bias = "shared", kind = "conv" },\n]'),
        "[network]",
        "network.layers[1].kind: expected a known field",
    ),
    "alias to a missing entry": (
        _variant('w10 = "W2[1,1]"', 'w10 = "W2[2,1]"'),
        'w10 = "W2[2,1]"',
        "aliases.w10: expected an index into shape (2, 2), got 'W2[2,1]'",
    ),
    "alias to a missing layer": (
        _variant('o2 = "a2[1]"', 'o2 = "a3[1]"'),
        'o2 = "a3[1]"',
        "aliases.o2: expected a layer between 1 and 2 in a3, got 'a3[1]'",
    ),
    "claim about a nonexistent quantity": (
        _variant('"dE/dw6" = "0.0020"', '"dE/dq6" = "0.0020"'),
        '"dE/dq6"',
        "claims.\"dE/dq6\": expected a known quantity",
    ),
    "claim with an index out of range": (
        _variant('"dE/dh2" = "0.0818"', '"dE/da1[2]" = "0.0818"'),
        '"dE/da1[2]"',
        "claims.\"dE/da1[2]\": expected an index into shape (1, 2), got 'dE/da1[2]'",
    ),
    "claim that is not a printed number": (
        _variant('o1 = "0.8896"', "o1 = 0.8896"),
        "o1 = 0.8896",
        'claims.o1: expected a number written as a string, as printed (e.g. "0.0020"), got 0.8896',
    ),
    "shape mismatch in weights": (
        _variant("W2 = [[0.7, 0.8], [0.9, 0.1]]", "W2 = [[0.7, 0.8, 0.9], [0.9, 0.1, 0.2]]"),
        "W2 = [[0.7, 0.8, 0.9]",
        "parameters.W2: expected shape (2, 2), got 'shape (2, 3)'",
    ),
    "targets of the wrong shape": (
        _variant("t = [0.1, 0.05]", "t = [0.1, 0.05, 0.2]"),
        "t = [0.1, 0.05, 0.2]",
        "data.t: expected shape (1, 2) for layout in_out, got 'shape (3,)'",
    ),
    "update claims without a learning rate": (
        _variant("learning_rate = 0.01\n", ""),
        None,
        "learning_rate: expected a learning rate > 0 (needed by after_steps), got 'missing'",
    ),
    "unknown top-level key": (
        _variant("learning_rate = 0.01", "learning_rate = 0.01\nlearnig_rate = 0.01"),
        "learnig_rate",
        "learnig_rate: expected a known key",
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_file_is_one_line_and_exit_2(name: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text, fragment, message = MALFORMED[name]
    path = tmp_path / "example.toml"
    path.write_text(text, encoding="utf-8")
    rc = main(["examples", str(path), "--out", str(tmp_path / "reports")])
    captured = capsys.readouterr()
    assert rc == EXIT_USAGE
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"refbp: error: {path}")
    assert message in lines[0]
    if fragment is not None:
        assert f"{path}, line {_line(text, fragment)}: " in lines[0]
    assert not (tmp_path / "reports").exists()  # nothing computed, nothing written


def test_bad_toml_names_the_line_of_the_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text, _, _ = MALFORMED["bad TOML"]
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["examples", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    # tomllib notices the unclosed array where the next table starts.
    line = _line(text, "[claims]")
    expected = f"expected valid TOML, got 'Unclosed array (at line {line}, column 1)'"
    assert err == f"refbp: error: {path}, line {line}: {expected}\n"


def test_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "nope.toml"
    assert main(["examples", str(path)]) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"refbp: error: {path}: expected a readable worked-example file, got 'No such file or directory'\n"
    )


def test_a_malformed_file_stops_the_run_before_a_good_one_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text(MALFORMED["shape mismatch in weights"][0], encoding="utf-8")
    assert main(["examples", str(good), str(bad), "--out", str(tmp_path / "r")]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(bad) in captured.err


def test_console_script_reports_a_malformed_file(tmp_path: Path) -> None:
    text, fragment, message = MALFORMED["claim about a nonexistent quantity"]
    path = tmp_path / "example.toml"
    path.write_text(text, encoding="utf-8")
    script = Path(sys.executable).with_name("refbp")
    done = subprocess.run(
        [str(script), "examples", str(path), "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == EXIT_USAGE
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"refbp: error: {path}, line {_line(text, fragment)}: {message}")
