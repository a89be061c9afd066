"""The conv2d entry of ``refbp bench``: it times the same computation on both sides and judges it."""

from __future__ import annotations

from oracle.bench_conv import CONV_TARGET, conv_verdict, measure_conv


def test_the_smoke_conv_entry_agrees_with_torch_and_gives_a_verdict() -> None:
    result = measure_conv(smoke=True, repeats=2, sample_seconds=0.002)
    assert result["agree"] is True
    assert result["shape"] == [4, 2, 8, 8] and result["filters"] == 4
    assert set(result["seconds"]) == {"refbp", "torch", "textbook"}
    assert result["ratio"] == result["seconds"]["refbp"] / result["seconds"]["torch"]
    row = conv_verdict(result)
    assert row["goal"] == f"≤ {CONV_TARGET:.0f}×" and row["met"] == (result["ratio"] <= CONV_TARGET)
    assert "textbook loop" in row["measured"]


def test_a_slow_or_wrong_conv_misses_the_target() -> None:
    slow = {
        "shape": [64, 3, 32, 32],
        "filters": 32,
        "agree": True,
        "ratio": 3.0,
        "seconds": {"refbp": 0.3, "torch": 0.1, "textbook": 100.0},
    }
    assert conv_verdict(slow)["missed_by"] == "50%"
    wrong = {**slow, "ratio": 0.5, "agree": False}
    assert conv_verdict(wrong)["met"] is False and conv_verdict(wrong)["missed_by"] == "results differ"
