"""The benchmark in its smoke configuration (what CI runs): report written and well-formed, never timed.

The numbers checked here are the ones that do not depend on the machine: FLOP counts,
parameter counts, that the torch network being timed is the same network as refbp's
(loss and gradients), the sampling order, the verdict arithmetic and the report's shape.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import oracle.bench_fd as bench_fd
from oracle.bench import BenchConfig, run_benchmarks, verdicts
from oracle.bench_fd import (
    DIRECTIONAL_PHASES,
    describe_spec,
    directional_disagreements,
    directional_keys,
    fd_directional_check,
    fd_full_check,
    fd_specs,
)
from oracle.bench_grid import GRID, SMOKE_GRID, flops, grid_spec, tanh_seconds
from oracle.bench_measure import phase_shares, time_interleaved
from oracle.bench_report import directional_note, render_markdown, write_report
from oracle.bench_svg import render_svg
from oracle.bench_torch import TorchNet
from oracle.cases import Case
from oracle.check import DIRECTIONS
from refbp.cli import main
from refbp.network import backprop
from refbp.trace import quantity_map


@pytest.fixture(scope="module")
def smoke_result() -> dict:
    return run_benchmarks(BenchConfig.smoke_test(sweep_cases=6, workers=2))


def test_flops_count_six_n_in_out_per_layer() -> None:
    # widths 64 → 64 → 64 → 10, batch 32
    assert flops(grid_spec(64, 3), 32) == 6 * 32 * (64 * 64 + 64 * 64 + 64 * 10)
    assert grid_spec(64, 3).widths == (64, 64, 64, 10)


def test_fd_networks_have_at_least_ten_thousand_parameters() -> None:
    classifier, regressor = fd_specs()
    assert classifier.n_parameters == 32 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10 == 13_130
    assert regressor.n_parameters == 20 * 100 + 100 + 100 * 80 + 80 + 80 * 5 + 5 == 10_585


@pytest.mark.parametrize("spec", [grid_spec(8, 2), grid_spec(16, 3), *fd_specs(smoke=True)], ids=describe_spec)
def test_the_timed_torch_network_is_refbps_network(spec) -> None:
    """Same loss and, after one timed step, the same parameter and input gradients as refbp."""
    data = Case(spec, batch=5, seed=4).materialize()
    trace, grads = backprop(spec, data.params, data.X, data.T)
    net = TorchNet.build(spec, data.params, data.X, data.T)
    loss = net.loss(net.weights, net.biases, net.x)
    assert loss.item() == pytest.approx(trace.loss, rel=1e-12)
    step_with_input = net.step(input_grad=True)
    step_with_input()
    expected = grads.by_parameter()
    names = [*(f"W{n}" for n in range(1, spec.depth + 1)), *(f"b{n}" for n in range(1, spec.depth + 1))]
    present = [name for name in names if name in expected]
    for name, leaf in zip(present, net.parameters, strict=True):
        np.testing.assert_allclose(leaf.grad.numpy(), expected[name], rtol=1e-10, atol=1e-13)
    net.step(input_grad=False)()  # parameter gradients only: same numbers again
    for name, leaf in zip(present, net.parameters, strict=True):
        np.testing.assert_allclose(leaf.grad.numpy(), expected[name], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("spec", fd_specs(smoke=True), ids=describe_spec)
def test_fd_checks_of_the_benchmark_agree_with_refbp(spec) -> None:
    data = Case(spec, batch=4, seed=2).materialize()
    assert fd_full_check(spec, data)
    assert fd_directional_check(spec, data)


def _counting_fd_gradients(monkeypatch) -> list[list]:
    """Record the targets the benchmark's directional check differences entry by entry."""
    asked: list[list] = []
    real = bench_fd.fd_gradients

    def fd_gradients(spec, params, X, T, targets=None):
        asked.append(list(targets))
        return real(spec, params, X, T, targets=targets)

    monkeypatch.setattr(bench_fd, "fd_gradients", fd_gradients)
    return asked


@pytest.mark.parametrize("directions", [1, DIRECTIONS])
@pytest.mark.parametrize("spec", fd_specs(smoke=True), ids=describe_spec)
def test_directional_check_finds_a_wrong_gradient_and_locates_its_layer(spec, directions, monkeypatch) -> None:
    """Every parameter tensor and the input: one wrong entry is found, and differencing that tensor entry by
    entry (only that one) names it; right gradients are differenced nowhere."""
    data = Case(spec, batch=4, seed=2).materialize()
    _, grads = backprop(spec, data.params, data.X, data.T)
    right = quantity_map(None, grads)
    asked = _counting_fd_gradients(monkeypatch)
    assert directional_disagreements(spec, data, directions=directions, gradients=right) == []
    assert asked == []
    keys = directional_keys(spec)
    assert len(keys) == len(spec.parameter_shapes()) + 1 and keys[-1] == (0, "dL/dx")
    scale = max(float(np.abs(right[key]).max()) for key in keys)
    for key in keys:
        wrong = dict(right)
        wrong[key] = right[key].copy()
        wrong[key].flat[-1] += 1e-2 * scale  # one entry off, as a wrong index or a missing term would be
        asked.clear()
        assert directional_disagreements(spec, data, directions=directions, gradients=wrong) == [key]
        assert asked == [[key]]


def test_directional_check_locates_a_wrong_layer_of_a_ten_thousand_parameter_network(monkeypatch) -> None:
    spec = fd_specs()[0]
    data = Case(spec, batch=16, seed=0).materialize()
    _, grads = backprop(spec, data.params, data.X, data.T)
    right = quantity_map(None, grads)
    asked = _counting_fd_gradients(monkeypatch)
    assert fd_directional_check(spec, data, directions=1) and asked == []
    wrong = {**right, (2, "dL/dW"): right[(2, "dL/dW")] * 1.001}  # the whole tensor 0.1 % off
    assert directional_disagreements(spec, data, directions=1, gradients=wrong) == [(2, "dL/dW")]
    assert asked == [[(2, "dL/dW")]]


def test_samples_are_interleaved_and_counted() -> None:
    order: list[str] = []
    samples = time_interleaved(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, sample_seconds=0.0
    )
    assert order == ["a", "b"] + ["a", "b"] * 3  # one warm-up each, then a b a b a b
    assert [len(v) for v in samples.values()] == [3, 3]
    assert all(s >= 0 for v in samples.values() for s in v)


def _synthetic_result(ratio_refbp: float, share: float, speedups: tuple[float, float], sweep_seconds: float) -> dict:
    matmul = 10.0
    gemm_ratio = 1.1  # NumPy's GEMMs 10 % slower than torch's: the GEMM-bound target is 1.05 × 1.1 = 1.155×
    grid_row = {
        "batch": 512,
        "width": 2048,
        "depth": 3,
        "ratio": ratio_refbp,
        "gemm": {"ratio": gemm_ratio},
        "regime": "GEMM-bound",
        "target": 1.05 * gemm_ratio,
        "met": ratio_refbp <= 1.05 * gemm_ratio,
        "seconds": {"refbp": 1.2, "torch": 1.2 / ratio_refbp},
        "gflops": {"refbp": share * matmul, "matmul": matmul, "torch": 9.0},
        "matmul_share": share,
        "tanh_seconds": {"numpy": 1.3e-3, "torch": 0.6e-3},
    }
    fd_row = {"parameters": 13_130, "speedup_full": speedups[0], "speedup_directional": speedups[1]}
    sweep = {"cases": 500, "seconds_per_1000": sweep_seconds}
    return {"grid": [grid_row], "fd": [fd_row], "sweep": sweep}


def test_verdicts_say_by_how_much_a_target_is_missed() -> None:
    rows = verdicts(_synthetic_result(1.25, 0.7, (10.0, 4.5), 30.0))
    by_goal = {row["goal"]: row for row in rows}
    assert [row["met"] for row in rows] == [False, False, False, True, False]
    grid = by_goal["≤ 1.05 × 1.10 = 1.16×"]
    assert grid["target"] == "fwd+bwd (512, 2048, 3) vs torch, GEMM-bound"
    assert grid["measured"] == "1.25× (NumPy/torch GEMM 1.10×)"
    assert grid["missed_by"] == "8.2% slower"  # 1.25 / 1.155
    assert "forward tanh alone takes 1.3 ms (NumPy) where torch.tanh takes 0.6 ms" in grid["why"]
    assert by_goal["≥ 80%"]["missed_by"] == "10% points"
    assert by_goal["≥ 20× faster"]["missed_by"] == "50% short"
    assert by_goal["≤ 20 s"]["missed_by"] == "10.0 s"
    assert "scaled from 500 cases" in by_goal["≤ 20 s"]["measured"]
    met = verdicts(_synthetic_result(1.15, 0.95, (25.0, 3.5), 12.0))  # slower than torch, but within 1.155×
    assert all(row["met"] and row["missed_by"] == "" for row in met)


def test_directional_verdict_compares_equal_work_and_reports_the_oracles_directions() -> None:
    result = _synthetic_result(0.9, 0.95, (25.0, 3.5), 12.0)
    result["fd"][0]["speedup_directional_oracle"] = 2.4
    result["fd"][0]["hotspots_directional_oracle"] = [{"function": "_affine_into", "share": 0.2}]
    row = next(r for r in verdicts(result) if r["target"].startswith("FD directional"))
    assert row["met"] and row["measured"] == f"3.5× (1/tensor as gradcheck; {DIRECTIONS}/tensor: 2.4×)"
    note = "".join(directional_note(result["fd"]))
    assert f"With {DIRECTIONS} per tensor, 13,130 parameters: 2.4×, 20% short of 3× (profile: _affine_into 20%)" in note
    result["fd"][0]["phases_directional_oracle"] = {"refbp's fwd+bwd": 0.1, "stacked forward pass": 0.5}
    note = "".join(directional_note(result["fd"]))
    assert "short of 3× (time: stacked forward pass 50%, refbp's fwd+bwd 10%; profile: _affine_into 20%)." in note
    result["fd"][0]["speedup_directional"] = 2.7
    missed = next(r for r in verdicts(result) if r["target"].startswith("FD directional"))
    assert not missed["met"] and missed["missed_by"] == "10% short"


def test_phase_shares_say_where_a_directional_check_spends_its_time() -> None:
    spec = fd_specs(smoke=True)[0]
    data = Case(spec, batch=4, seed=2).materialize()
    shares = phase_shares(lambda: fd_directional_check(spec, data), DIRECTIONAL_PHASES, seconds=0.0)
    assert list(shares) == list(DIRECTIONAL_PHASES)
    assert all(0.0 < share < 1.0 for share in shares.values()), shares
    assert sum(shares.values()) < 1.0 + 1e-9  # disjoint parts of one call


def test_tanh_seconds_times_both_libraries() -> None:
    seconds = tanh_seconds(4, 8, 2, repeats=2, sample_seconds=0.0)
    assert set(seconds) == {"numpy", "torch"} and all(value > 0 for value in seconds.values())


def test_smoke_run_covers_every_measurement(smoke_result: dict) -> None:
    assert [(r["batch"], r["width"], r["depth"]) for r in smoke_result["grid"]] == list(SMOKE_GRID)
    for row in smoke_result["grid"]:
        assert set(row["seconds"]) == {"refbp", "textbook", "torch", "torch_params_only", "gemm_numpy", "gemm_torch"}
        assert all(len(samples) == 2 for samples in row["samples"].values())
        assert row["ratio"] == pytest.approx(row["seconds"]["refbp"] / row["seconds"]["torch"])
        assert row["gflop"] == pytest.approx(flops(grid_spec(row["width"], row["depth"]), row["batch"]) / 1e9)
    assert "matmul" in smoke_result["grid"][-1]["gflops"]
    for row in smoke_result["fd"]:
        assert row["passed"] == dict.fromkeys(
            ("fd_full", "gradcheck_slow", "fd_directional", "fd_directional_oracle", "gradcheck_fast"), True
        )
    sweep = smoke_result["sweep"]
    assert sweep["serial"]["checked"] == sweep["parallel"]["checked"] == 6
    assert sweep["serial"]["passed"] == sweep["parallel"]["passed"] == 6
    assert sweep["parallel"]["workers"] == 2
    assert smoke_result["meta"]["threads"] == 1


def test_memory_probe_sees_at_least_the_returned_arrays(smoke_result: dict) -> None:
    memory = smoke_result["memory"]
    batch, width, depth = SMOKE_GRID[-1]
    assert (memory["batch"], memory["width"], memory["depth"]) == (batch, width, depth)
    spec = grid_spec(width, depth)
    data = Case(spec, batch=batch, seed=0).materialize()
    returned = sum(array.nbytes for array in quantity_map(*backprop(spec, data.params, data.X, data.T)).values())
    assert memory["refbp"]["tracemalloc_peak"] >= returned
    for framework in ("refbp", "torch"):
        probe = memory[framework]
        assert probe["rss_peak"] >= probe["rss_before"] > 0
        assert probe["rss_growth"] == probe["rss_peak"] - probe["rss_before"]


def test_report_files_are_written_and_well_formed(smoke_result: dict, tmp_path) -> None:
    paths = write_report(tmp_path, smoke_result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["benchmarks.json", "benchmarks.md", "benchmarks.svg"]
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == json.loads(json.dumps(smoke_result))
    markdown = paths["md"].read_text(encoding="utf-8")
    assert markdown == render_markdown(smoke_result)
    for heading in (
        "## Targets",
        "## refbp fwd+bwd vs torch",
        "## Finite differences",
        "## Three-way sweep",
        "## Recurrent layers",
        "## Peak memory",
        "## How this was measured",
    ):
        assert heading in markdown
    for row in smoke_result["grid"]:
        assert f"| ({row['batch']}, {row['width']}, {row['depth']}) |" in markdown
        assert f"{row['ratio']:.2f}×" in markdown
    # grid sizes, GFLOP/s share, FD both modes, sweep, conv2d, LSTM, RNN
    assert len(smoke_result["targets"]) == len(SMOKE_GRID) + 1 + 2 * len(smoke_result["fd"]) + 1 + 1 + 2
    assert smoke_result["conv"]["agree"] is True
    for target in smoke_result["targets"]:
        assert target["target"] in markdown
    svg = ET.fromstring(paths["svg"].read_text(encoding="utf-8"))
    namespace = "{http://www.w3.org/2000/svg}"
    bars = [rect for rect in svg.iter(f"{namespace}rect") if rect.find(f"{namespace}title") is not None]
    assert len(bars) == 2 * len(SMOKE_GRID)
    texts = [text.text for text in svg.iter(f"{namespace}text")]
    for row in smoke_result["grid"]:
        assert f"{row['ratio']:.2f}×" in texts


def test_svg_of_the_full_grid_is_well_formed() -> None:
    rows = [
        {
            "batch": b,
            "width": w,
            "depth": d,
            "ratio": 0.5 + i / 4,
            "met": i < 3,
            "seconds": {"refbp": 10.0**i * 1e-4, "torch": 2e-4},
        }
        for i, (b, w, d) in enumerate(GRID)
    ]
    svg = ET.fromstring(render_svg({"grid": rows}))
    assert svg.get("width") == "640"
    labels = [text.text for text in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "(512, 2048, 3)" in labels and "1.50×" in labels


def test_bench_command_writes_the_reports(tmp_path, capsys) -> None:
    status = main(
        ["bench", "--smoke", "--out", str(tmp_path), "--no-memory", "--sweep-cases", "2", "--workers", "1", "--quiet"]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "refbp/torch" in out and "reports:" in out
    assert {p.name for p in tmp_path.iterdir()} == {"benchmarks.json", "benchmarks.md", "benchmarks.svg"}
    assert "memory" not in json.loads((tmp_path / "benchmarks.json").read_text(encoding="utf-8"))


def test_bench_command_rejects_bad_numbers(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--repeats", "0"])
    assert exit_info.value.code == 2
    assert "positive integer" in capsys.readouterr().err
