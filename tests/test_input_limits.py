"""Absurd sizes and hostile files: refused before any allocation, in one line, with the limit named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from refbp import InputError, LayerSpec, NetworkSpec, limits
from refbp.cli import main
from refbp.data import as_inputs
from refbp.text_input import MAX_BYTES

SMALL = {"inputs": 2, "layers": [{"units": 1}]}


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if code == 2:
        assert captured.err.count("\n") == 1, captured.err
    return code, captured.err


def _case(spec: dict, batch: int = 1) -> str:
    return json.dumps({"spec": spec, "batch": batch, "seed": 0})


@pytest.mark.parametrize(
    ("spec", "batch", "words"),
    [
        ({"inputs": 10**8, "layers": [{"units": 1}]}, 1, "inputs: expected at most 1,000,000 (width limit"),
        ({"inputs": 2, "layers": [{"units": 10**8}]}, 1, "layers[0].units: expected at most 1,000,000 (width limit"),
        ({"inputs": 2, "layers": [{"units": 1}] * 10_000}, 1, "layers: expected at most 1,000 (depth limit"),
        ({"inputs": 10_000, "layers": [{"units": 10_000}]}, 1, "parameter count: expected at most 50,000,000"),
        (SMALL, 10**7, "case: batch: expected at most 1,000,000 (batch limit"),
        ({"inputs": 1000, "layers": [{"units": 1}]}, 100_000, "batch × width: expected at most 50,000,000"),
    ],
)
def test_absurd_sizes_are_refused_before_anything_is_allocated(spec, batch, words, capsys):
    code, err = _run(capsys, "replay", _case(spec, batch), "--fd", "off")
    assert code == 2 and words in err and "refbp --limit" in err


def test_a_limit_can_be_raised_for_one_run(capsys):
    deep = _case({"inputs": 1, "layers": [{"units": 1, "activation": "tanh"}] * 1001})
    assert _run(capsys, "replay", deep, "--fd", "off")[0] == 2
    assert _run(capsys, "--limit", "depth=1001", "replay", deep, "--fd", "off")[0] == 0
    assert limits.current("depth") == 1000  # back to the default after the run
    with limits.raised(batch=2_000_000, activations=4e6):
        assert as_inputs(NetworkSpec(1, (LayerSpec(1),)), np.zeros((1_500_000, 1))).shape == (1_500_000, 1)
    with pytest.raises(InputError, match="batch: expected at most 1,000,000"):
        as_inputs(NetworkSpec(1, (LayerSpec(1),)), np.zeros((1_500_000, 1)))


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["sweep", "--max-width", "1e5"], "argument --max-width: expected a width (1..256), got '1e5'"),
        (["sweep", "--max-width", "100000"], "argument --max-width: expected a width (1..256), got '100000'"),
        (["sweep", "--max-depth", "10000"], "argument --max-depth: expected a depth (1..32), got '10000'"),
        (["sweep", "--cases", "9" * 5000], "argument --cases: expected a positive integer"),
        (["bench", "--workers", "100000"], "argument --workers: expected a number of processes up to the cores"),
        (["--limit", "depth", "sweep"], "--limit: expected NAME=N"),
        (["--limit", "depth=1e999", "sweep"], "--limit depth: expected a positive whole number"),
        (["--limit", "depth=0.5", "sweep"], "--limit depth: expected a positive whole number"),
    ],
)
def test_absurd_options_are_one_line(argv, words, capsys, monkeypatch):
    monkeypatch.setattr("oracle.bench.run_benchmarks", lambda *a, **k: pytest.fail("ran despite bad usage"))
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's usage errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and words in err, err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[" * 5000 + "]" * 5000, "got 'nesting deeper than 32 levels'"),
        ('{"spec": ' + '{"a": ' * 40 + "1" + "}" * 41, "got 'nesting deeper than 32 levels'"),
        ('{"spec": {"inputs": ' + "9" * 5000 + "}}", "got 'an integer of more than 100 digits'"),
        ('{"spec": {"inputs": ' + "9" * 200 + "}}", "got 'an integer of more than 100 digits'"),
        ('{"spec": {"inputs": 2, "layers": [{"units": 1}], "a\\nb": 1}}', "a\\nb: expected a known field"),
    ],
)
def test_json_beyond_the_parser_limits_is_one_line(text, words, capsys):
    code, err = _run(capsys, "replay", text)
    assert code == 2 and words in err


def test_files_that_are_not_text_are_one_line(tmp_path, capsys):
    latin = tmp_path / "spec.toml"
    latin.write_bytes(b"inputs = 2\n# caf\xe9\n")
    with pytest.raises(InputError, match=r"spec\.toml: expected UTF-8 text, got 'byte 0xe9 on line 2'$"):
        NetworkSpec.load(latin)
    big = tmp_path / "big.json"
    with big.open("wb") as fh:
        fh.truncate(MAX_BYTES + 1)
    for argv, words in (
        (["replay", "/dev/zero"], "/dev/zero: expected a JSON case or a readable .json file, got 'a character device'"),
        (["replay", str(tmp_path)], "got 'a folder'"),
        (["replay", str(big)], "of at most 16 MiB, got 'a larger file'"),
        (["examples", "/dev/zero"], "/dev/zero: expected a readable worked-example file, got 'a character device'"),
        (["examples", str(latin)], "expected UTF-8 text, got 'byte 0xe9 on line 2'"),
    ):
        code, err = _run(capsys, *argv)
        assert code == 2 and words in err


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ("a = " + "[" * 3000 + "]" * 3000, "nesting deeper than 32 levels"),
        ("a = " + "9" * 5000, "an integer of more than 100 digits"),
        ("inputs = " + "9" * 150 + "\n[[layers]]\nunits = 1\n", "an integer of more than 100 digits"),
    ],
)
def test_toml_beyond_the_parser_limits_is_one_line(toml, words, tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(toml)
    with pytest.raises(InputError, match=words):
        NetworkSpec.load(spec)
    example = tmp_path / "example.toml"
    example.write_text(toml)
    code, err = _run(capsys, "examples", str(example), "--out", str(tmp_path / "r"))
    assert code == 2 and words in err


def test_a_key_with_a_newline_keeps_the_error_on_one_line(tmp_path, capsys):
    example = tmp_path / "example.toml"
    example.write_text('title = "x"\n"claims\\nextra" = 1\n')
    code, err = _run(capsys, "examples", str(example), "--out", str(tmp_path / "r"))
    assert code == 2 and '"claims\\nextra"' in err
    with pytest.raises(InputError) as info:
        NetworkSpec.from_dict({"inputs": 2, "layers": [{"units": 1}], "x\ny": 1})
    assert (
        str(info.value)
        == "spec: x\\ny: expected a known field (one of inputs, layout, dtype, layers, loss, l2), got 'unknown field'"
    )
