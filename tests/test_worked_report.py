"""``refbp examples``: exit status, terminal table and the Markdown / HTML / JSON reports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from refbp.cli import EXIT_FOUND, EXIT_OK, main
from worked.command import BUNDLED_DIR

BUNDLED_VERDICT = (
    "FAIL: 10 worked examples, 190 claims (183 ok, 1 hand-rounded, 4 wrong, 2 follows); "
    "4 root mistakes, 2 following from them"
)


def test_bundled_examples_exit_1_and_report_the_wrong_claims(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / "elsewhere" / "claims.json"
    rc = main(["examples", "--out", str(tmp_path / "r"), "--json", str(copy)])
    out = capsys.readouterr().out
    assert rc == EXIT_FOUND
    assert BUNDLED_VERDICT in out
    wrong_lines = [line for line in out.splitlines() if "  wrong  " in line]
    assert len(wrong_lines) == 4
    assert "da/dz" in wrong_lines[0] and "0.3655" in wrong_lines[0] and "0.1966" in wrong_lines[0]
    assert "d sigmoid(z)/dz" in wrong_lines[1] and "at z = 1: the formula gives 0.365529" in wrong_lines[1]
    assert "dE/db1" in wrong_lines[2] and "0.0008" in wrong_lines[2] and "0.0024" in wrong_lines[2]
    assert "dl/dx[1]" in wrong_lines[3] and "sign flipped" in wrong_lines[3]
    follows_lines = [line for line in out.splitlines() if "  follows  " in line]
    assert [line.split()[0] for line in follows_lines] == ["dl/dz", "dl/dw1"]

    summary = json.loads((tmp_path / "r" / "worked_examples.json").read_text(encoding="utf-8"))
    assert json.loads(copy.read_text(encoding="utf-8")) == summary
    assert summary["verdict"] == "fail"
    assert summary["counts_by_status"] == {
        "ok": 183,
        "hand-rounded": 1,
        "wrong": 4,
        "follows": 2,
        "unsupported": 0,
        "disagree": 0,
    }
    assert (summary["root_mistakes"], summary["follow_on_mistakes"]) == (4, 2)
    seed000 = "worked/examples/seed000_sigmoid_derivative.toml"
    assert [(w["file"], w["where"], w["claim"], w["printed"], w["should_read"], w["status"])
            for w in summary["wrong"]] == [
        (seed000, "", "da/dz", "0.3655", "0.1966", "wrong"),
        (seed000, "", "dl/dz", "-0.0445", "-0.0240", "follows"),
        (seed000, "", "dl/dw1", "-0.0445", "-0.0240", "follows"),
        (seed000, "formula", "d sigmoid(z)/dz", "sigmoid(z) * 1 / (1 + z**2)", "0.196612", "wrong"),
        ("worked/examples/seed001_case1.toml", "", "dE/db1", "0.0008", "0.0024", "wrong"),
        ("worked/examples/seed001_case2.toml", "part c", "dl/dx[1]", "2", "-2", "wrong"),
    ]  # fmt: skip
    db1 = next(c for e in summary["examples"] for c in e["claims"] if c["claim"] == "dE/db1")
    assert db1["entry"] == "dL/db1[0]"
    assert db1["computed"] == pytest.approx(0.0023882, abs=1e-7)
    assert db1["computed_by"]["torch"] == pytest.approx(db1["computed"], rel=1e-12)
    assert db1["line"] == _line(BUNDLED_DIR / "seed001_case1.toml", '"dE/db1"')

    md = (tmp_path / "r" / "worked_examples.md").read_text(encoding="utf-8")
    assert "### Wrong claims" in md
    assert "| `worked/examples/seed001_case1.toml` |   | `dE/db1` | `0.0008` | `0.0024` |" in md
    assert md.count("**wrong**") == 4 and md.count("**follows**") == 2
    assert "| `zp` | `0.5849` | `0.5848` | 0.584847 | _hand-rounded_ |" in md
    assert "40 claims: 39 ok, **1 wrong**" in md
    assert "| part a | `l` | `1/2` | `1/2` | 0.5 | ok |" in md  # a fraction should read as one
    html = (tmp_path / "r" / "worked_examples.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert html.count('<span class="bad">wrong</span>') == 4
    assert html.count('<span class="bad">follows</span>') == 2
    assert html.count('<tr class="wrong">') == 6
    assert html.count('<span class="hand">hand-rounded</span>') == 1
    assert '<div class="banner fail" role="status"><b>FAIL</b> 10 worked examples, 190 claims' in html
    assert html.index("<h2>Wrong claims</h2>") < html.index("<h2>Linear unit")
    assert '40 claims: 39 ok, <span class="bad">1 wrong</span>' in html
    assert "h1→o1" in html and "<script" not in html
    # self-contained: no stylesheet, image, font or script is fetched
    assert not re.search(r"""(src|href)\s*=|@import|url\(|<link""", html)


def _line(path: Path, fragment: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if fragment in line)


def test_own_examples_pass_with_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    files = [str(BUNDLED_DIR / "softmax_cross_entropy.toml"), str(BUNDLED_DIR / "l2_gradient_descent.toml")]
    rc = main(["examples", *files, "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == EXIT_OK
    assert out.splitlines()[0] == "PASS: 2 worked examples, 42 claims (42 ok)"
    summary = json.loads((tmp_path / "worked_examples.json").read_text(encoding="utf-8"))
    assert summary["wrong"] == []
    steps = {c["step"] for e in summary["examples"] for c in e["claims"]}
    assert steps == {0, 1, 2, 3}


def test_markdown_escapes_what_the_notes_write(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = (BUNDLED_DIR / "l2_gradient_descent.toml").read_text(encoding="utf-8")
    text = text.replace('title = "Linear unit', 'title = "A | pipe and <b>tag</b> in the linear unit')
    path = tmp_path / "odd.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["examples", str(path), "--out", str(tmp_path / "r")]) == EXIT_OK
    capsys.readouterr()
    md = (tmp_path / "r" / "worked_examples.md").read_text(encoding="utf-8")
    html = (tmp_path / "r" / "worked_examples.html").read_text(encoding="utf-8")
    assert "A \\| pipe and &lt;b&gt;tag&lt;/b&gt;" in md
    assert "<b>tag</b>" not in html and "&lt;b&gt;tag&lt;/b&gt;" in html


def test_console_script_exit_status_is_1_with_wrong_claims_and_0_without(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("refbp")

    def run(*files: str) -> subprocess.CompletedProcess:
        command = [str(script), "examples", *files, "--out", str(tmp_path), "--quiet"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}  # this checkout's code
        return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=env)

    bundled = run()
    assert bundled.returncode == EXIT_FOUND, bundled.stderr
    assert bundled.stderr == ""
    assert bundled.stdout.splitlines()[:7] == [
        BUNDLED_VERDICT,
        "  wrong: worked/examples/seed000_sigmoid_derivative.toml: da/dz = 0.3655, should read 0.1966",
        "  follows: worked/examples/seed000_sigmoid_derivative.toml: dl/dz = -0.0445, should read -0.0240",
        "  follows: worked/examples/seed000_sigmoid_derivative.toml: dl/dw1 = -0.0445, should read -0.0240",
        "  wrong: worked/examples/seed000_sigmoid_derivative.toml, formula: d sigmoid(z)/dz = "
        "sigmoid(z) * 1 / (1 + z**2), should read 0.196612",
        "  wrong: worked/examples/seed001_case1.toml: dE/db1 = 0.0008, should read 0.0024",
        "  wrong: worked/examples/seed001_case2.toml, part c: dl/dx[1] = 2, should read -2",
    ]
    clean = run(str(BUNDLED_DIR / "softmax_cross_entropy.toml"))
    assert clean.returncode == EXIT_OK, clean.stderr
    assert clean.stdout.startswith("PASS: 1 worked example, 18 claims (18 ok)\n")
