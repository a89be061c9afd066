"""``refbp sweep --impl`` inside a support declaration: ``REFBP_SUPPORTS`` beside the function, or ``--supports``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refbp.cli import main
from refbp.spec import NetworkSpec


def _cases(out: Path) -> list[NetworkSpec]:
    meta = json.loads((out / "sweep.json").read_text(encoding="utf-8"))["meta"]
    return meta, [NetworkSpec.from_dict(case["spec"]) for case in meta["cases_json"].values()]


def test_the_declaration_beside_the_implementation_is_read(tmp_path: Path, capsys) -> None:
    """A real library once failed 30 of 30 cases with ``KeyError 'b2'``: it has no ``bias = none``."""
    from gate_adapters import layer_library_adapter as module

    out = tmp_path / "r"
    code = main(["sweep", "--cases", "12", "--out", str(out), "--quiet", "--impl", f"{module.__name__}:backprop"])
    assert code == 0, capsys.readouterr().out
    meta, specs = _cases(out)
    assert all(module.REFBP_SUPPORTS.covers(spec) == "" for spec in specs)
    assert meta["supports"].startswith("layouts=in_out; hidden_activations=identity,sigmoid,tanh,relu")
    assert meta["dtype"] == "float64"


def test_a_supports_file_restricts_the_networks_and_bounds_narrow_it(tmp_path: Path, capsys) -> None:
    declaration = tmp_path / "supports.toml"
    declaration.write_text('layouts = ["out_in"]\nlosses = ["mse"]\nmax_depth = 3\ndtypes = ["float32"]\n')
    out = tmp_path / "r"
    argv = ["sweep", "--cases", "8", "--out", str(out), "--quiet", "--supports", str(declaration), "--max-depth", "2"]
    assert main(argv) == 0
    meta, specs = _cases(out)
    assert {(s.layout, s.loss.kind, s.dtype) for s in specs} == {("out_in", "mse", "float32")}
    assert max(s.depth for s in specs) <= 2 and meta["dtype"] == "float32"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dtype", "float64"], "refbp: error: command line: dtype: expected names the support declaration lists"),
        (["--max-width", "200"], None),
    ],
)
def test_options_outside_the_declaration_are_refused(tmp_path: Path, capsys, extra, message) -> None:
    declaration = tmp_path / "supports.toml"
    declaration.write_text('dtypes = ["float32"]\nmax_width = 3\nlosses = ["half_sse"]\n')
    argv = ["sweep", "--cases", "2", "--out", str(tmp_path / "r"), "--quiet", "--supports", str(declaration), *extra]
    code = main(argv)
    if message is None:  # an upper bound above the declared one keeps the declared one
        assert code == 0
        assert max(max(s.widths[1:]) for s in _cases(tmp_path / "r")[1]) <= 3
    else:
        assert code == 2 and capsys.readouterr().err.startswith(message)


def test_a_bad_supports_file_is_one_line_naming_it(tmp_path: Path, capsys) -> None:
    declaration = tmp_path / "supports.toml"
    declaration.write_text('losses = ["hinge"]\n')
    assert main(["sweep", "--cases", "1", "--out", str(tmp_path), "--supports", str(declaration)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"refbp: error: {declaration}: losses: expected a non-empty list from half_sse, mse, "
        "softmax_cross_entropy, binary_cross_entropy, got ['hinge']\n"
    )
    with pytest.raises(SystemExit) as exited:
        main(["sweep", "--cases", "1", "--out", str(tmp_path), "--max-width", "100000"])
    assert exited.value.code == 2
    assert "--max-width: expected a width (1..256), got '100000'" in capsys.readouterr().err


IMPL = """
from oracle.gate import Unsupported
from refbp.network import backprop as reference

REFBP_SUPPORTS = {"losses": ["half_sse", "mse"], "max_depth": 2}


def backprop(spec, params, X, T):
    if spec.layout == "out_in" and spec.depth == 2:
        raise Unsupported("two layers with columns as examples: not yet")
    return reference(spec, params, X, T)
"""


def test_unsupported_cases_are_counted_and_too_many_fail_the_sweep(tmp_path: Path, capsys) -> None:
    module = tmp_path / "adapter.py"
    module.write_text(IMPL, encoding="utf-8")
    out = tmp_path / "r"
    code = main(["sweep", "--cases", "12", "--out", str(out), "--quiet", "--fd", "off", "--impl", f"{module}:backprop"])
    printed = capsys.readouterr().out
    meta, specs = _cases(out)
    skipped = sum(s.layout == "out_in" and s.depth == 2 for s in specs)
    assert skipped > 0 and meta["unsupported cases"] == f"{skipped} of 12"
    assert f"{skipped} unsupported" in printed
    if skipped / 12 > 0.2:
        assert code == 1 and "the support declaration is wrong" in printed
    else:
        assert code == 0


def test_a_case_keeps_its_target_form_through_json() -> None:
    from oracle.cases import Case

    spec = NetworkSpec.from_dict(
        {"inputs": 2, "layers": [{"units": 3, "activation": "softmax"}], "loss": {"kind": "softmax_cross_entropy"}}
    )
    for targets in ("one_hot", "soft"):
        case = Case(spec=spec, batch=2, seed=4, targets=targets)
        again = Case.from_json(case.to_json())
        assert again == case and again.materialize().T.tolist() == case.materialize().T.tolist()
    soft = Case(spec=spec, batch=2, seed=4, targets="soft").materialize().T
    assert not ((soft == 0) | (soft == 1)).all()  # an even seed, yet soft, as declared
    with pytest.raises(ValueError, match="case: targets: expected one of one_hot, soft, got 'fuzzy'"):
        Case.from_dict({"spec": spec.to_dict(), "batch": 1, "seed": 0, "targets": "fuzzy"})
