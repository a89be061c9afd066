"""Reports rendered from the tidy table: files, contents, escaping and atomic writes."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oracle import report_html
from oracle.report import COLUMNS, fmt_sci, summarise, verdict, write_reports

EVIL = "evil<script>alert(1)</script>"
REPLAY = 'refbp check --case \'{"inputs": 3, "layers": [2, 1]}\' --seed 7'


def _row(case, layer, quantity, pair="refbp~torch", status="ok", rel=1e-13, **extra) -> dict:
    fd = pair.endswith("~fd")
    values = dict(
        case=case,
        layer=layer,
        quantity=quantity,
        pair=pair,
        status=status,
        max_abs_err=rel * 2,
        max_rel_err=rel,
        rtol=1e-5 if fd else 1e-8,
        atol=1e-10,
        worst_index="[0, 1]",
        worst_left=1.0,
        worst_right=1.0 + rel,
        n_entries=6,
        n_kink=0,
        dtype="float64",
        message="",
        diagnosis="",
    )
    values.update(extra)
    return values


def _ok_case(case: str, depth: int = 2) -> list[dict]:
    rows = []
    for pair in ("refbp~torch", "refbp~fd", "torch~fd"):
        for layer in range(1, depth + 1):
            if pair == "refbp~torch":
                rows += [_row(case, layer, "z", pair), _row(case, layer, "a", pair)]
            for q in ("dL/da", "delta", "dL/dW", "dL/db"):
                rows.append(_row(case, layer, q, pair, rel=1e-9 if pair.endswith("~fd") else 1e-13))
        rows.append(_row(case, 0, "dL/dx", pair))
    rows.append(_row(case, depth, "loss"))
    return rows


@pytest.fixture
def failing_rows() -> pd.DataFrame:
    rows = _ok_case("c0001") + _ok_case("c0002") + _ok_case(EVIL, depth=3)
    df = pd.DataFrame(rows)

    def set_row(case, layer, quantity, pair, **values):
        mask = (df["case"] == case) & (df["layer"] == layer) & (df["quantity"] == quantity) & (df["pair"] == pair)
        assert mask.sum() == 1
        for key, value in values.items():
            df.loc[mask, key] = value

    # c0002: refbp's dL/dW of layer 2 is off by the batch size (against torch and FD);
    # layer 1 below it is spoiled too, but the divergence starts at layer 2.
    diag = "off by a factor of 2 (the batch size)"
    for pair in ("refbp~torch", "refbp~fd"):
        set_row("c0002", 2, "dL/dW", pair, status="mismatch", max_rel_err=0.5, max_abs_err=1.0, diagnosis=diag)
        set_row("c0002", 1, "dL/dW", pair, status="mismatch", max_rel_err=0.25, max_abs_err=0.3)
    # A kink row (not failing) and a NaN row (failing) in the case with the nasty name.
    set_row("c0001", 1, "delta", "refbp~fd", status="kink", n_kink=2, max_rel_err=1e-9)
    set_row(EVIL, 3, "loss", "refbp~torch", status="nan", max_rel_err=np.nan, max_abs_err=np.nan,
            rtol=np.nan, atol=np.nan, worst_left=np.inf, message="non-finite <value> & more")  # fmt: skip
    return df


@pytest.fixture
def meta() -> dict:
    return {
        "title": "refbp sweep <test>",
        "command": "refbp sweep --cases 3 --seed 7",
        "seed": 7,
        "cases": 3,
        "dtype": "float64",
        "fd_mode": "central",
        "wall_seconds": 1.25,
        "depth_by_case": {"c0001": 2, "c0002": 2, EVIL: 3},
        "shrunk": [
            {
                "signature": "dL/dW (refbp~torch)",
                "case": {"inputs": 3, "layers": [2, 1], "batch": 2, "seed": 7},
                "replay": REPLAY,
                "depth": 2,
                "batch": 2,
                "first_divergence": {
                    "layer": 2,
                    "quantity": "dL/dW",
                    "pair": "refbp~torch",
                    "max_rel_err": 0.5,
                    "diagnosis": "off by a factor of 2 (the batch size)",
                },
            }
        ],
    }


def _strict_json(text: str):
    def reject(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)


def test_writes_all_four_files(tmp_path, failing_rows, meta):
    paths = write_reports(tmp_path / "out", failing_rows, meta)
    assert set(paths) == {"csv", "json", "md", "html"}
    for kind, path in paths.items():
        assert path == tmp_path / "out" / f"sweep.{kind}"
        assert path.is_file() and path.stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sweep.csv", "sweep.html", "sweep.json", "sweep.md"]


def test_reports_get_the_ordinary_file_mode(tmp_path, failing_rows, meta):
    old = os.umask(0o027)
    try:
        paths = write_reports(tmp_path, failing_rows, meta)
    finally:
        os.umask(old)
    assert {p.stat().st_mode & 0o777 for p in paths.values()} == {0o640}
    assert not list(tmp_path.glob(".*.tmp"))


def test_stem(tmp_path, failing_rows, meta):
    paths = write_reports(tmp_path, failing_rows, meta, stem="check")
    assert paths["md"].name == "check.md"


def test_csv_round_trips(tmp_path, failing_rows, meta):
    paths = write_reports(tmp_path, failing_rows, meta)
    back = pd.read_csv(paths["csv"], keep_default_na=False, na_values=["", "nan"])
    assert len(back) == len(failing_rows)
    assert list(back.columns) == list(COLUMNS)
    assert set(back["case"]) == set(failing_rows["case"])
    assert (back["status"] == "mismatch").sum() == 4
    np.testing.assert_allclose(back["max_rel_err"], failing_rows["max_rel_err"].astype(float))


def test_json_is_strict_and_counts(tmp_path, failing_rows, meta):
    paths = write_reports(tmp_path, failing_rows, meta)
    text = paths["json"].read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    summary = _strict_json(text)
    assert summary["verdict"] == "fail"
    assert summary["meta"] == json.loads(json.dumps(meta))
    assert summary["n_rows"] == len(failing_rows)
    assert summary["n_cases"] == 3
    assert summary["n_failing_cases"] == 2
    counts = summary["counts_by_status"]
    assert counts["mismatch"] == 4 and counts["nan"] == 1 and counts["kink"] == 1 and counts["shape"] == 0
    assert counts["ok"] == len(failing_rows) - 6
    assert sum(counts.values()) == len(failing_rows)
    by_pair = summary["counts_by_pair_status"]
    assert by_pair["refbp~torch"]["mismatch"] == 2 and by_pair["refbp~fd"]["mismatch"] == 2
    assert by_pair["torch~fd"]["mismatch"] == 0 and by_pair["refbp~fd"]["kink"] == 1
    assert len(summary["failing_rows"]) == 5
    nan_row = next(r for r in summary["failing_rows"] if r["status"] == "nan")
    assert nan_row["max_rel_err"] is None and nan_row["worst_left"] is None

    worst = {(w["quantity"], w["pair"]): w for w in summary["worst"]}
    w = worst[("dL/dW", "refbp~torch")]
    assert w["max_rel_err"] == 0.5 and w["case"] == "c0002" and w["layer"] == 2 and w["worst_index"] == "[0, 1]"
    assert w["n_failing"] == 2
    # A NaN failure outranks the finite errors of the other cases.
    loss = worst[("loss", "refbp~torch")]
    assert loss["status"] == "nan" and loss["case"] == EVIL and loss["max_rel_err"] is None
    assert worst[("z", "refbp~torch")]["n_failing"] == 0

    divergences = {d["case"]: d for d in summary["first_divergence"]}
    assert set(divergences) == {"c0002", EVIL}
    d = divergences["c0002"]
    assert (d["layer"], d["quantity"], d["pair"]) == (2, "dL/dW", "refbp~torch")
    assert d["also_pairs"] == ["refbp~fd"]
    assert d["diagnosis"] == "off by a factor of 2 (the batch size)"


def test_summarise_matches_json_and_verdict(tmp_path, failing_rows, meta):
    paths = write_reports(tmp_path, failing_rows, meta)
    assert _strict_json(paths["json"].read_text(encoding="utf-8")) == json.loads(
        json.dumps(summarise(failing_rows, meta), allow_nan=False)
    )
    assert verdict(failing_rows) is False


def test_markdown(tmp_path, failing_rows, meta):
    md = write_reports(tmp_path, failing_rows, meta)["md"].read_text(encoding="utf-8")
    lines = md.splitlines()
    verdict_line = next(line for line in lines if line.startswith("**FAIL**"))
    assert "3 cases" in verdict_line and "2 failing cases" in verdict_line and "4 mismatches" in verdict_line
    assert "`refbp sweep --cases 3 --seed 7`" in md or "refbp sweep --cases 3 --seed 7" in md
    assert "seed: `7`" in md
    # Where it diverges: layer 2 dL/dW for c0002, with the diagnosis.
    section = md.split("### Where it diverges", 1)[1]
    div_line = next(line for line in section.splitlines() if "c0002" in line)
    cells = [c.strip() for c in div_line.strip("|").split("|")]
    assert cells[1] == "2" and cells[2] == "`dL/dW`" and cells[3].startswith("refbp~torch")
    assert cells[5] == "5.0e-1" and "batch size" in cells[6]
    # Worst errors in scientific notation, 2 significant digits.
    assert re.search(r"\| `dL/dW` \| refbp~torch \| 5\.0e-1 \|", md)
    # The shrunk failure: the case as JSON and the replay command, each fenced.
    assert "```json\n" in md and '"layers": [' in md
    assert f"```sh\n{REPLAY}\n```" in md
    # The nasty case name only ever appears inside a code span, where it is inert text.
    assert f"`{EVIL}`" in md and "<script" not in md.replace(f"`{EVIL}`", "")


def test_html_self_contained_and_escaped(tmp_path, failing_rows, meta):
    page = write_reports(tmp_path, failing_rows, meta)["html"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page and page.count('class="heatmap"') == 3  # one heat map per pair
    assert "<title>" in page  # page title and per-cell tooltips
    # Nothing fetched: no external src/href, no scripts, no links to stylesheets.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    # User-controlled text is escaped.
    assert "evil&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "refbp sweep &lt;test&gt;" in page
    assert "non-finite &lt;value&gt; &amp; more" in page
    # Verdict banner, tables, the quantity columns in order and the layer labels.
    assert 'class="banner fail"' in page
    for heading in ("Counts by status", "Worst error per quantity", "Where it diverges", "Shrunk failures"):
        assert heading in page
    positions = [page.index(f'class="qlabel">{q}</text>') for q in ("z", "a", "loss", "dL/da", "delta")]
    assert positions == sorted(positions)
    assert "0 (input)" in page and "<details>" in page
    assert 'class="failing"' in page  # failing cells outlined


def test_atomic_replace_failure_keeps_old_report(tmp_path, failing_rows, meta, monkeypatch):
    old = {kind: f"old {kind}\n" for kind in ("csv", "json", "md", "html")}
    for kind, text in old.items():
        (tmp_path / f"sweep.{kind}").write_text(text, encoding="utf-8")
    real_replace = os.replace

    def flaky_replace(src, dst, *args, **kwargs):
        if str(dst).endswith("sweep.md"):
            raise OSError("disk on fire")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_reports(tmp_path, failing_rows, meta)
    monkeypatch.undo()

    # The file whose replace failed keeps its old content, and so do those after it.
    assert (tmp_path / "sweep.md").read_text(encoding="utf-8") == old["md"]
    assert (tmp_path / "sweep.html").read_text(encoding="utf-8") == old["html"]
    # Those replaced before it are complete new files, never a mix.
    assert _strict_json((tmp_path / "sweep.json").read_text(encoding="utf-8"))["verdict"] == "fail"
    # No temp files left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.csv", "sweep.html", "sweep.json", "sweep.md"]


def test_atomic_write_failure_keeps_every_old_file(tmp_path, failing_rows, meta, monkeypatch):
    for kind in ("csv", "json", "md", "html"):
        (tmp_path / f"sweep.{kind}").write_text(f"old {kind}\n", encoding="utf-8")
    calls = {"n": 0}
    real_fsync = os.fsync

    def flaky_fsync(fd):
        calls["n"] += 1
        if calls["n"] == 3:  # staging the third file fails half-way
            raise OSError("interrupted")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", flaky_fsync)
    with pytest.raises(OSError, match="interrupted"):
        write_reports(tmp_path, failing_rows, meta)
    monkeypatch.undo()
    for kind in ("csv", "json", "md", "html"):
        assert (tmp_path / f"sweep.{kind}").read_text(encoding="utf-8") == f"old {kind}\n"
    assert len(list(tmp_path.iterdir())) == 4


def test_all_ok_passes(tmp_path):
    rows = pd.DataFrame(_ok_case("c0001") + _ok_case("c0002", depth=1))
    assert verdict(rows) is True
    paths = write_reports(tmp_path, rows, {"title": "all good", "cases": 2})
    summary = _strict_json(paths["json"].read_text(encoding="utf-8"))
    assert summary["verdict"] == "pass" and summary["failing_rows"] == [] and summary["first_divergence"] == []
    md = paths["md"].read_text(encoding="utf-8")
    assert "**PASS** — 2 cases, 0 mismatches" in md
    assert "Where it diverges" not in md
    page = paths["html"].read_text(encoding="utf-8")
    assert 'class="banner pass"' in page and "<svg" in page and 'class="failing"' not in page


def test_no_rows(tmp_path):
    empty = pd.DataFrame(columns=list(COLUMNS))
    assert verdict(empty) is True
    paths = write_reports(tmp_path, empty, {"title": "nothing"})
    summary = _strict_json(paths["json"].read_text(encoding="utf-8"))
    assert summary["verdict"] == "pass" and summary["n_rows"] == 0
    assert "**PASS** — no rows" in paths["md"].read_text(encoding="utf-8")
    assert "no rows" in paths["html"].read_text(encoding="utf-8")
    assert len(pd.read_csv(paths["csv"])) == 0
    # A bare DataFrame without any columns, and None, work too.
    assert write_reports(tmp_path, pd.DataFrame(), {"title": "bare"}, stem="bare")["json"].is_file()
    assert summarise(None, {"title": "none"})["verdict"] == "pass"


def test_without_diagnosis_column_and_inferred_depth(tmp_path):
    rows = pd.DataFrame(_ok_case("c0001", depth=3)).drop(columns=["diagnosis"])
    mask = (rows["quantity"] == "delta") & (rows["pair"] == "refbp~torch")
    rows.loc[mask & (rows["layer"] == 1), "status"] = "mismatch"
    rows.loc[mask & (rows["layer"] == 3), "status"] = "mismatch"
    rows.loc[(rows["quantity"] == "a") & (rows["layer"] == 2), "status"] = "shape"
    summary = summarise(rows, {"title": "t"})
    # Forward quantities come first: the shape error in a_2 is where it diverges.
    (d,) = summary["first_divergence"]
    assert (d["layer"], d["quantity"], d["status"], d["depth"]) == (2, "a", "shape", 3)
    rows = rows[rows["status"] != "shape"]
    (d,) = summarise(rows, {"title": "t"})["first_divergence"]
    # Gradients walk backward from the loss: layer 3 before layer 1.
    assert (d["layer"], d["quantity"], d["diagnosis"]) == (3, "delta", "")
    assert write_reports(tmp_path, rows, {"title": "t"})["md"].is_file()


def test_caps_long_lists(tmp_path):
    rows = []
    for k in range(40):
        rows.append(_row(f"c{k:04d}", 1, "dL/dW", status="mismatch", rel=0.1))
    md = write_reports(tmp_path, pd.DataFrame(rows), {"title": "many"})["md"].read_text(encoding="utf-8")
    assert "… and 15 more failing cases" in md


@pytest.mark.parametrize(
    ("value", "text"),
    [(3.14159e-12, "3.1e-12"), (0.5, "5.0e-1"), (1.5, "1.5e+0"), (0.0, "0"), (math.nan, "—"), (None, "—")],
)
def test_fmt_sci(value, text):
    assert fmt_sci(value) == text


def test_colour_scale_is_monotone_and_clamped():
    colours = [report_html._colour(x) for x in (-30, -16, -8, 0, 3)]
    assert colours[0] == colours[1] and colours[3] == colours[4]
    assert len(set(colours[1:4])) == 3


@pytest.mark.skipif(
    not os.environ.get("REFBP_RENDER_HTML") or shutil.which("chromium") is None,
    reason="set REFBP_RENDER_HTML=1 with chromium installed to render the page",
)
def test_html_renders_in_chromium(tmp_path, failing_rows, meta):  # pragma: no cover - optional
    page = write_reports(tmp_path, failing_rows, meta)["html"]
    shot = tmp_path / "sweep.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert shot.stat().st_size > 10_000
    out = Path(os.environ.get("REFBP_RENDER_HTML_OUT", tmp_path))
    if out != tmp_path:
        shutil.copy(shot, out / "sweep.png")
