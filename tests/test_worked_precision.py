"""What a printed precision can say: exponent claims, hints only where the digits tell, hand-rounded as a status,
and unknown keys echoed by name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from refbp.cli import EXIT_OK, EXIT_USAGE, main
from refbp.errors import InputError
from worked.command import BUNDLED_DIR
from worked.evaluate import check_example
from worked.example_file import parse_example
from worked.results import ClaimResult
from worked.rounding import HAND_ROUNDED, ROUNDED, judge, parse_printed, round_like

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
_TOML_BLOCKS = re.findall(r"^```toml\n(.*?)^```", README, flags=re.S | re.M)
ONE_UNIT = next(block for block in _TOML_BLOCKS if block.startswith("# One sigmoid"))  # o = σ(z) = 0.524979


@pytest.mark.parametrize("text", ["1e1", "1e2", "1e400", "0e0", "1e-400", "-1e-400", "1E+1", "0.0e1"])
def test_an_exponent_claim_is_compared_at_its_significant_digits(text: str) -> None:
    assert judge(parse_printed(text), 0.524979) is None
    assert round_like(parse_printed(text), 0.524979) in ("5e-1", "1e0", "0.1e1")


@pytest.mark.parametrize(
    ("text", "verdict"),
    [("5e-1", ROUNDED), ("5.2e-1", ROUNDED), ("5.25e-1", ROUNDED), ("52.5e-2", ROUNDED), ("5.3e-1", HAND_ROUNDED),
     ("5.4e-1", None), ("0.5e0", ROUNDED)],
)  # fmt: skip
def test_exponent_claims_that_do_print_the_value(text: str, verdict: str | None) -> None:
    assert judge(parse_printed(text), 0.524979) == verdict


@pytest.mark.parametrize("claim", ["1e1", "1e400", "0e0", "1e-400"])
def test_the_cli_reports_a_meaningless_exponent_claim_as_wrong(tmp_path, capsys, claim: str) -> None:
    path = tmp_path / "one.toml"
    path.write_text(ONE_UNIT.replace('o = "0.5250"', f'o = "{claim}"'), encoding="utf-8")
    assert main(["examples", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"wrong: {path}: o = {claim}, should read " in out


# dL/dw = (w·x − t)·x = (0.06 − 0.102)·0.2 = −0.0084, printed to two places with the sign lost.
SMALL_GRADIENT = """
learning_rate = {lr}
[graph]
x = 0.2
t = 0.102
w = 0.3
L = "0.5 * (w * x - t)**2"
[graph.train]
loss = "L"
parameters = ["w"]
[claims]
"dL/dw" = "{printed}"
[after_steps.1]
w = "{after}"
"""


def _results(text: str) -> dict[tuple[str, int], ClaimResult]:
    return {(r.claim.reference, r.claim.step): r for r in check_example(parse_example(text, "h.toml"))}


def test_a_sign_lost_at_two_decimals_is_sign_flipped_not_a_rounding_slip() -> None:
    r = _results(SMALL_GRADIENT.format(lr=0.1, printed="0.01", after="0.3008"))[("dL/dw", 0)]
    assert r.value == pytest.approx(-0.0084, abs=1e-12)
    assert r.status == "wrong"
    assert r.hint == "sign flipped"


def test_no_before_the_update_hint_when_the_update_is_within_rounding() -> None:
    """w moves by 0.00013 (1.3 units of the fourth place): printing the old 0.3000 is a slip the digits cannot tell."""
    r = _results(SMALL_GRADIENT.format(lr=0.0155, printed="-0.0084", after="0.3000"))[("w", 1)]
    assert r.value == pytest.approx(0.3001302, abs=1e-12) and r.status == "wrong"
    assert r.hint == "off by 1.3 units in the last digit: a rounding slip (should read 0.3001)"
    far = _results(SMALL_GRADIENT.format(lr=2.0, printed="-0.0084", after="0.3000"))[("w", 1)]
    assert far.value == pytest.approx(0.3168, abs=1e-12)
    assert far.hint == "the value before the update"


def test_a_rounding_slip_hint_needs_the_same_sign() -> None:
    r = _results(SMALL_GRADIENT.format(lr=0.1, printed="-0.0086", after="0.3008"))[("dL/dw", 0)]
    assert r.status == "wrong" and r.hint == "off by 2.0 units in the last digit: a rounding slip (should read -0.0084)"


def test_hand_rounded_is_its_own_status_in_every_report(tmp_path, capsys) -> None:
    path = tmp_path / "one.toml"
    path.write_text(ONE_UNIT, encoding="utf-8")
    assert main(["examples", str(path), "--out", str(tmp_path / "r")]) == EXIT_OK
    terminal = capsys.readouterr().out
    row = next(line for line in terminal.splitlines() if line.split()[:1] == ["dE/db"])
    assert row.split()[:5] == ["dE/db", "-0.1184", "-0.1185", "-0.118459", "hand-rounded"]
    assert "(8 ok, 1 hand-rounded)" in terminal
    summary = json.loads((tmp_path / "r" / "worked_examples.json").read_text(encoding="utf-8"))
    db = next(c for c in summary["examples"][0]["claims"] if c["claim"] == "dE/db")
    assert (db["status"], db["match"]) == ("hand-rounded", "hand-rounded")
    assert summary["counts_by_status"]["hand-rounded"] == 1 and summary["verdict"] == "pass"
    md = (tmp_path / "r" / "worked_examples.md").read_text(encoding="utf-8")
    assert "| `dE/db` | `-0.1184` | `-0.1185` | -0.118459 | _hand-rounded_ |" in md
    assert "9 claims: 8 ok, 1 hand-rounded" in md
    html = (tmp_path / "r" / "worked_examples.html").read_text(encoding="utf-8")
    assert '<td class="status"><span class="hand">hand-rounded</span></td>' in html


CASE1 = (BUNDLED_DIR / "seed001_case1.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "detail"),
    [
        ("inputs = 3", "inputs = 3\nmomentum = 0.9",
         "got unknown key 'momentum' in [network]; did you mean the top-level optimizer = { kind = 'momentum' }?"),
        ("inputs = 3", "inputs = 3\nlr = 0.1", "got unknown key 'lr' in [network]; did you mean the top-level key "
         "'learning_rate'?"),
        ("learning_rate = 0.01", "learnig_rate = 0.01",
         "got unknown key 'learnig_rate' at the top level; did you mean 'learning_rate'?"),
        ("[aliases]", "[aliasses]", "got unknown key 'aliasses' at the top level; did you mean 'aliases'?"),
        ('activation = "sigmoid", bias = "shared" },\n]', 'activaton = "sigmoid", bias = "shared" },\n]',
         "got unknown key 'activaton' in [network.layers[1]]; did you mean 'activation'?"),
        ('"dE/db1" = "0.0008"', '"dE/db1" = { printed = "0.0008", slak_units = 1 }',
         "got unknown key 'slak_units' in [claims.\"dE/db1\"]; did you mean 'slack_units'?"),
    ],
)  # fmt: skip
def test_an_unknown_key_is_echoed_by_name_with_a_suggestion(tmp_path, capsys, old: str, new: str, detail: str) -> None:
    assert CASE1.count(old) >= 1
    path = tmp_path / "case1.toml"
    path.write_text(CASE1.replace(old, new, 1), encoding="utf-8")
    assert main(["examples", str(path), "--out", str(tmp_path / "r")]) == EXIT_USAGE
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].endswith(detail), err


def test_an_unknown_key_in_a_graph_file_too() -> None:
    with pytest.raises(InputError, match=r"graph\.train\.los: .*got unknown key 'los' in \[graph\.train\]; did you "
                                         r"mean 'loss'\?"):  # fmt: skip
        parse_example('[graph]\nx = 1\ny = "2 * x"\n[graph.train]\nlos = "y"\n[claims]\ny = "2"\n', "g.toml")
