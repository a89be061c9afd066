"""The fields ``refbp bench`` adds beside each ratio: the machine, both BLAS, GEMM ceilings, regimes, LSTM/RNN.

Structure and arithmetic only, never timings: what is reported must come from the libraries
actually loaded (checked here against threadpoolctl and torch directly), the GEMM candidates
must compute the products they claim, the regime rule must split the grid where the FLOP
count says, and the recurrent entries must time networks that give the twin's numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from oracle.bench_blas import blas_info, blas_lines, cpu_model
from oracle.bench_grid import (
    GEMM_BOUND_FLOP,
    GEMM_SLACK,
    GRID,
    RATIO_TARGET,
    flops,
    gemm_calls,
    gemm_shapes,
    grid_spec,
    grid_target,
    grid_verdicts,
    measure_grid_size,
)
from oracle.bench_measure import thread_limit
from oracle.bench_recurrent import RECURRENT_TARGET, measure_recurrent, recurrent_verdict
from oracle.bench_report import grid_table_text


def test_blas_info_names_the_libraries_actually_loaded_with_the_run_threads() -> None:
    with thread_limit(1):
        info = blas_info()
    numpy_blas = next(entry for entry in threadpool_info() if entry["user_api"] == "blas")
    assert info["numpy"]["library"] == numpy_blas["internal_api"]
    assert info["numpy"]["version"] == numpy_blas["version"]
    assert info["numpy"]["architecture"] == numpy_blas["architecture"]
    assert info["numpy"]["threads"] == 1  # inside the limit, not the machine's default
    config = torch.__config__.show()
    expected_torch = "mkl" if "BLAS_INFO=mkl" in config else "openblas" if "BLAS_INFO=open" in config else None
    if expected_torch:
        assert info["torch"]["library"] == expected_torch
    if expected_torch == "mkl":
        assert info["torch"]["version"] in config and info["torch"]["version"][:4].isdigit()
    assert info["torch"]["threads"] == info["torch"]["blas_threads"] == 1
    assert info["torch"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert info["same_threads"] is True
    assert info["machine"]["cpu"] == cpu_model() and info["machine"]["cores"] >= 1


def test_blas_lines_name_machine_and_both_libraries_and_flag_unequal_threads() -> None:
    with thread_limit(1):
        info = blas_info()
    machine, numpy_line, torch_line = blas_lines(info)
    assert machine.startswith(f"machine: {info['machine']['cpu']}")
    assert f"BLAS: {info['numpy']['library']} {info['numpy']['version']}" in numpy_line
    assert f"kernel {info['numpy']['architecture']}, 1 thread(s)" in numpy_line
    assert f"BLAS: {info['torch']['library']} {info['torch']['version']}" in torch_line
    assert "NOT the same" not in torch_line
    uneven = {**info, "same_threads": False}
    assert blas_lines(uneven)[2].endswith("NOT the same thread counts as NumPy")


def test_gemm_candidates_compute_a_layers_three_products_with_each_blas() -> None:
    calls = gemm_calls(6, 5)
    assert set(calls) == {"gemm_numpy", "gemm_torch"}
    rng = np.random.default_rng(0)
    a, delta, W = rng.standard_normal((6, 5)), rng.standard_normal((6, 5)), rng.standard_normal((5, 5))
    expected = [np.einsum("ni,ij->nj", a, W), np.einsum("ni,nj->ij", a, delta), np.einsum("nj,ij->ni", delta, W)]
    numpy_products = calls["gemm_numpy"]()
    torch_products = calls["gemm_torch"]()
    for mine, theirs, want in zip(numpy_products, torch_products, expected, strict=True):
        assert theirs.dtype == torch.float64
        np.testing.assert_allclose(mine, want, rtol=1e-12)
        np.testing.assert_allclose(theirs.numpy(), want, rtol=1e-12)
    assert gemm_shapes(6, 5) == ["(6, 5) @ (5, 5)", "(5, 6) @ (6, 5)", "(6, 5) @ (5, 5)ᵀ"]


def test_regime_rule_splits_the_grid_by_matmul_flops() -> None:
    regimes = {size: grid_target(flops(grid_spec(size[1], size[2]), size[0]) / 1e9, 1.2)[0] for size in GRID}
    # (128, 256, 4): 6·128·(256·256·3 + 256·10) ≈ 1.5e8 FLOP, over the 1e8 line; (32, 64, 3) ≈ 1.7e6.
    assert flops(grid_spec(256, 4), 128) == 6 * 128 * (3 * 256 * 256 + 256 * 10) > GEMM_BOUND_FLOP
    assert flops(grid_spec(64, 3), 32) < GEMM_BOUND_FLOP
    assert [regimes[size] for size in GRID] == ["overhead-dominated"] * 2 + ["GEMM-bound"] * 3
    assert grid_target(0.5, 1.2) == ("GEMM-bound", pytest.approx(GEMM_SLACK * 1.2))
    assert grid_target(0.5, 0.8) == ("GEMM-bound", pytest.approx(0.84))  # a faster NumPy BLAS tightens it
    assert grid_target(0.01, 1.2) == ("overhead-dominated", RATIO_TARGET)


def test_a_measured_grid_row_carries_ceilings_ratio_regime_and_verdict() -> None:
    with thread_limit(1):
        row = measure_grid_size((4, 8, 2), repeats=1, sample_seconds=0.0)
    seconds, gemm = row["seconds"], row["gemm"]
    assert gemm["ratio"] == pytest.approx(seconds["gemm_numpy"] / seconds["gemm_torch"])
    assert gemm["gflop"] == pytest.approx(6 * 4 * 8 * 8 / 1e9)
    for side in ("numpy", "torch"):
        assert gemm["gflops"][side] == pytest.approx(gemm["gflop"] / seconds[f"gemm_{side}"])
    assert (row["regime"], row["target"]) == grid_target(row["gflop"], gemm["ratio"])
    assert row["met"] == (row["ratio"] <= row["target"])
    assert row["matmul_share"] == pytest.approx(row["gflops"]["refbp"] / gemm["gflops"]["numpy"])
    table = grid_table_text([row]).splitlines()
    assert "NumPy/torch" in table[0] and "regime" in table[0]
    assert f"{gemm['ratio']:.2f}×" in table[1] and row["regime"] in table[1]
    verdict = grid_verdicts([row])[0]
    assert verdict["met"] == row["met"] and verdict["goal"] == "≤ 1.0×"


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_recurrent_entry_times_networks_that_agree_with_the_twin_and_torch_nn(kind) -> None:
    with thread_limit(1):
        entry = measure_recurrent(kind, smoke=True, repeats=1, sample_seconds=0.0)
    assert entry["kind"] == kind and entry["agree"] is True
    assert set(entry["seconds"]) == {"refbp", "twin", "torch_fused"}
    assert entry["ratio"] == pytest.approx(entry["seconds"]["refbp"] / entry["seconds"]["twin"])
    assert entry["shape"] == {"N": 4, "T": 5, "D": 8, "H": 8}
    verdict = recurrent_verdict(entry)
    assert verdict["goal"] == f"≤ {RECURRENT_TARGET:.0f}×"
    assert verdict["target"].startswith(f"{kind.upper()} fwd+bwd / torch twin at N=4, T=5")
    slow = recurrent_verdict({**entry, "ratio": 3.0})
    assert not slow["met"] and slow["missed_by"] == "50%"
    wrong = recurrent_verdict({**entry, "agree": False})
    assert not wrong["met"] and wrong["missed_by"] == "results differ"
