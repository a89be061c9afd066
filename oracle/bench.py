"""Benchmarks: refbp beside PyTorch eager autograd and ``torch.autograd.gradcheck``, in one run.

Everything is measured side by side in the same process and reported as ratios, so the
numbers say how refbp compares on *this* machine rather than in absolute terms; the machine,
both sides' BLAS and their GEMM ceilings are measured in the same run and reported with them.
:func:`run_benchmarks` runs, in turn:

* the dense fwd+bwd grid with both GEMM ceilings and the per-size target
  (:mod:`oracle.bench_grid`; the torch network is :mod:`oracle.bench_torch`);
* finite differences against gradcheck, both modes (:mod:`oracle.bench_fd`);
* conv2d (:mod:`oracle.bench_conv`), LSTM and RNN (:mod:`oracle.bench_recurrent`) fwd+bwd;
* the three-way sweep's throughput (:mod:`oracle.bench_sweep`);
* peak memory at the largest grid size, each framework in a fresh process (:mod:`oracle.bench_memory`).

How it times, profiles and limits threads is :mod:`oracle.bench_measure`; the machine and
BLAS description :mod:`oracle.bench_blas`; the report :mod:`oracle.bench_report`.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from oracle.bench_blas import blas_info
from oracle.bench_conv import conv_verdict, measure_conv
from oracle.bench_fd import describe_spec, fd_specs, fd_verdicts, measure_fd
from oracle.bench_grid import GRID, SMOKE_GRID, Size, grid_verdicts, measure_grid_size
from oracle.bench_measure import available_cores, thread_limit
from oracle.bench_memory import measure_memory
from oracle.bench_recurrent import KINDS, measure_recurrent, recurrent_verdict
from oracle.bench_sweep import SWEEP_TARGET_CASES, measure_sweep, sweep_verdict


@dataclass(frozen=True)
class BenchConfig:
    """What :func:`run_benchmarks` measures and how long it samples."""

    grid: tuple[Size, ...] = GRID
    repeats: int = 7
    sample_seconds: float = 0.05
    threads: int = 1
    fd_repeats: int = 3
    sweep_cases: int = SWEEP_TARGET_CASES
    workers: int = field(default_factory=available_cores)
    memory: bool = True
    smoke: bool = False

    @classmethod
    def smoke_test(cls, **changes: Any) -> BenchConfig:
        """A few seconds in all: tiny sizes and networks, 2 repeats, 20 sweep cases."""
        base = cls(grid=SMOKE_GRID, repeats=2, sample_seconds=0.002, fd_repeats=1, sweep_cases=20, smoke=True)
        return replace(base, **changes)


def run_benchmarks(config: BenchConfig, *, log: Callable[[str], None] = lambda _: None) -> dict:
    """Every measurement of the module docstring; returns the JSON-ready result with target verdicts."""
    started = time.perf_counter()
    result: dict[str, Any] = {"meta": _meta(config)}
    timing = {"repeats": config.repeats, "sample_seconds": config.sample_seconds}
    with thread_limit(config.threads):
        result["meta"]["blas"] = blas_info()
        result["grid"] = []
        for size in config.grid:
            log(f"fwd+bwd {size} …")
            row = measure_grid_size(size, **timing)
            log(f"  refbp {row['seconds']['refbp'] * 1e3:.3f} ms, torch {row['seconds']['torch'] * 1e3:.3f} ms")
            result["grid"].append(row)
        result["fd"] = []
        for spec in fd_specs(config.smoke):
            log(f"finite differences vs gradcheck: {describe_spec(spec)} …")
            result["fd"].append(
                measure_fd(
                    spec, repeats=config.fd_repeats, fast_repeats=config.repeats, sample_seconds=config.sample_seconds
                )
            )
        log("conv2d fwd+bwd …")
        result["conv"] = measure_conv(smoke=config.smoke, **timing)
        result["recurrent"] = []
        for kind in KINDS:
            log(f"{kind} fwd+bwd …")
            result["recurrent"].append(measure_recurrent(kind, smoke=config.smoke, **timing))
    log(f"sweep of {config.sweep_cases} cases, serial and on {config.workers} processes …")
    result["sweep"] = measure_sweep(config.sweep_cases, config.workers)
    if config.memory:
        log(f"peak memory at {config.grid[-1]} …")
        result["memory"] = measure_memory(config.grid[-1])
    result["targets"] = verdicts(result)
    result["meta"]["wall_seconds"] = time.perf_counter() - started
    result["meta"]["load_average_after"] = _load_average()
    return result


def _meta(config: BenchConfig) -> dict:
    return {
        "title": "refbp benchmarks" + (" (smoke)" if config.smoke else ""),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "config": dict(asdict(config).items()),
        "threads": config.threads,
        "python": platform.python_version(),
        "load_average_before": _load_average(),
    }


def _load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (busy cores, other processes included); ``[]`` where unknown."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def verdicts(result: Mapping) -> list[dict]:
    """One row per target: goal, measured value, met or missed by how much and why."""
    rows = grid_verdicts(result["grid"]) + fd_verdicts(result["fd"])
    rows.append(sweep_verdict(result["sweep"]))
    if "conv" in result:
        rows.append(conv_verdict(result["conv"]))
    rows += [recurrent_verdict(entry) for entry in result.get("recurrent", [])]
    return rows
