"""Malformed worked-example files: one line on stderr naming file, line and field; exit status 2."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from refbp.cli import EXIT_USAGE, main
from worked.command import BUNDLED_DIR
from worked.example_file import locate

GOOD = (BUNDLED_DIR / "seed001_case1.toml").read_text(encoding="utf-8")


def _line(text: str, fragment: str) -> int:
    """1-based number of the first line holding ``fragment``."""
    return next(n for n, line in enumerate(text.splitlines(), start=1) if fragment in line)


def _variant(old: str, new: str) -> str:
    assert GOOD.count(old) == 1, old
    return GOOD.replace(old, new)


# name: (file text, fragment of the offending line or None, what the message must say)
MALFORMED = {
    "bad TOML": (_variant("t = [0.1, 0.05]", "t = [0.1, 0.05"), None, "expected valid TOML"),
    "bad TOML: a key set twice": (
        _variant('h2 = "0.9950"', 'h2 = "0.9950"\nh2 = "0.9951"'),
        'h2 = "0.9951"',
        "expected valid TOML, got 'Cannot overwrite a value",
    ),
    "unknown activation": (
        _variant(
            '{ units = 2, activation = "sigmoid", bias = "shared" },\n    { units = 2',
            '{ units = 2, activation = "sigmoidal", bias = "shared" },\n    { units = 2',
        ),
        'activation = "sigmoidal"',
        "network.layers[0].activation: expected one of identity, sigmoid, tanh, relu, leaky_relu, softmax, "
        "got 'sigmoidal'",
    ),
    "unknown layer type": (
        _variant(
            '{ units = 2, activation = "sigmoid", bias = "shared" },\n]',
            '{ type = "conv", units = 2, activation = "sigmoid", bias = "shared" },\n]',
        ),
        'type = "conv"',
        "network.layers[1].type: expected one of dense, conv2d, max_pool2d, avg_pool2d, batchnorm, layernorm, "
        "groupnorm, dropout, flatten, embedding, rnn, lstm, temporal_affine, last_step, got 'conv'",
    ),
    "typed network": (
        _variant(
            '{ units = 2, activation = "sigmoid", bias = "shared" },\n]',
            '{ type = "dropout", keep_prob = 0.5 },\n]',
        ),
        "layers = [",
        "network.layers: expected dense layers (worked examples take no typed layers), got 'typed layers'",
    ),
    "unknown bias mode": (
        _variant('bias = "shared" },\n]', 'bias = "common" },\n]'),
        'bias = "common"',
        "network.layers[1].bias: expected one of per_unit, shared, none, got 'common'",
    ),
    "unknown loss": (
        _variant('kind = "half_sse"', 'kind = "hinge"'),
        'kind = "hinge"',
        "network.loss.kind: expected one of half_sse, mse, softmax_cross_entropy, binary_cross_entropy, "
        "temporal_softmax_cross_entropy, got 'hinge'",
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
    "alias to an unknown name": (
        _variant('z_h1 = "z1[0]"', 'z_h1 = "zz1[0]"'),
        'z_h1 = "zz1[0]"',
        "aliases.z_h1: expected a known quantity (W, b, z, a, delta with a layer number, x, loss, data_loss, "
        "penalty, or an alias), got 'zz1[0]'",
    ),
    "claim about a nonexistent quantity": (
        _variant('"dE/dw6" = "0.0020"', '"dE/dq6" = "0.0020"'),
        '"dE/dq6"',
        'claims."dE/dq6": expected a known quantity',
    ),
    "claim about a nonexistent layer": (
        _variant('"dE/db1" = "0.0008"', '"dE/db3" = "0.0008"'),
        '"dE/db3"',
        "claims.\"dE/db3\": expected a layer between 1 and 2 in b3, got 'dE/db3'",
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
    "weights with a row too few": (
        _variant("W1 = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]", "W1 = [[0.1, 0.2], [0.3, 0.4]]"),
        "W1 = [[0.1, 0.2], [0.3, 0.4]]",
        "parameters.W1: expected shape (3, 2), got 'shape (2, 2)'",
    ),
    "ragged weights": (
        _variant("W1 = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]", "W1 = [[0.1, 0.2], [0.3], [0.5, 0.6]]"),
        "W1 = [[0.1, 0.2], [0.3]",
        "parameters.W1: expected numbers in an array of shape (3, 2)",
    ),
    "a shared bias given per unit": (
        _variant("b1 = 0.5", "b1 = [0.5, 0.5]"),
        "b1 = [0.5, 0.5]",
        "parameters.b1: expected shape (1,), got 'shape (2,)'",
    ),
    "missing weights": (
        _variant("W2 = [[0.7, 0.8], [0.9, 0.1]]\n", ""),
        "[parameters]",
        "parameters.W2: expected an array of shape (2, 2), got 'missing'",
    ),
    "inputs of the wrong shape": (
        _variant("x = [1, 4, 5]", "x = [1, 4]"),
        "x = [1, 4]",
        "data.x: expected shape (N, 3) for layout in_out, got 'shape (2,)'",
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
    "updates after zero steps": (
        _variant("[after_steps.1]", "[after_steps.0]"),
        "[after_steps.0]",
        "after_steps.0: expected a number of steps from 1 to 100,000, got '0'",
    ),
    "an empty claims list": (
        GOOD[: GOOD.index("[claims]")] + "[claims]\n",
        "[claims]",
        "claims: expected at least one claim, got 'none'",
    ),
    "no claims at all": (GOOD[: GOOD.index("[claims]")], None, "claims: expected at least one claim, got 'none'"),
    "an empty file": ("", None, "network: expected a [network] table, got 'missing'"),
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


LOCATE_TEXT = """\
[network]
inputs = 2
layers = [  # one layer a line, "a, b" in a comment
    { units = 2, activation = "tanh", bias = "per_unit" },
    # a comment line, with a comma
    { units = 3, activation = "sig,moid" }, { units = 1, activation = "identity" },
]
loss = { kind = "half_sse" }
sizes = [[1, 2],
         [3, 4]]

[parameters]
W1 = [[0.1, 0.2], [0.3, 0.4]]
"""


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("network",), 1),
        (("network", "inputs"), 2),
        (("network", "layers"), 3),
        (("network", "layers[0]", "activation"), 4),
        (("network", "layers[1]", "activation"), 6),  # the comma in "sig,moid" is inside a string
        (("network", "layers[2]", "units"), 6),
        (("network", "layers[3]", "units"), 3),  # no such element: the array's line
        (("network", "loss", "kind"), 8),
        (("network", "sizes[1]"), 10),
        (("network", "inputs[0]"), 2),  # not an array: the key's line
        (("parameters", "W1"), 13),
        (("parameters", "W9"), 12),  # missing: the enclosing table
        (("aliases", "w7"), None),
    ],
)
def test_locate_finds_the_nearest_line(path: tuple[str, ...], line: int | None) -> None:
    assert locate(LOCATE_TEXT, path) == line
    assert tomllib.loads(LOCATE_TEXT)["network"]["layers"][1]["activation"] == "sig,moid"
