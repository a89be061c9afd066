"""Three-way sweep throughput in ``refbp bench``: cases per second, serial and over fresh processes.

:func:`oracle.sweep.run_sweep` (refbp, torch and full finite differences on small random
networks; no shrinking), serial in this process and sharded over a pool of fresh processes,
one per core (their start-up, including ``import torch``, is part of the wall time).
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor

from oracle.bench_measure import hotspots, profile_summary, verdict_row

SWEEP_TARGET_SECONDS = 20.0
SWEEP_TARGET_CASES = 1000


def _sweep_shard(n_cases: int, seed: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """``(cases checked, cases passed)`` of one (shard of a) sweep, single-threaded."""
    import torch
    from threadpoolctl import threadpool_limits

    from oracle.sweep import run_sweep

    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        result = run_sweep(n_cases, seed, shrink=False, progress=False, shard=shard)
    return len(result.results), sum(r.passed for r in result.results)


def measure_sweep(n_cases: int, workers: int, *, seed: int = 0) -> dict:
    """Three-way sweep throughput, serial in this process and over ``workers`` fresh processes."""
    import multiprocessing

    started = time.perf_counter()
    checked, passed = _sweep_shard(n_cases, seed, None)
    serial = time.perf_counter() - started
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        shards = [(k, workers) for k in range(workers)]
        counts = list(pool.map(_sweep_shard, [n_cases] * workers, [seed] * workers, shards))
    parallel = time.perf_counter() - started
    row = {
        "cases": n_cases,
        "fd": "full",
        "serial": {"seconds": serial, "cases_per_second": checked / serial, "checked": checked, "passed": passed},
        "parallel": {
            "workers": workers,
            "seconds": parallel,
            "cases_per_second": sum(c for c, _ in counts) / parallel,
            "checked": sum(c for c, _ in counts),
            "passed": sum(p for _, p in counts),
        },
    }
    row["seconds_per_1000"] = min(serial, parallel) * SWEEP_TARGET_CASES / n_cases
    if row["seconds_per_1000"] > SWEEP_TARGET_SECONDS:
        row["hotspots"] = hotspots(lambda: _sweep_shard(max(1, n_cases // 20), seed, None), seconds=0.0)
    return row


def sweep_verdict(sweep: dict) -> dict:
    """The target row: :data:`SWEEP_TARGET_CASES` cases of the three-way sweep within :data:`SWEEP_TARGET_SECONDS`."""
    per_1000 = sweep["seconds_per_1000"]
    scaled = "" if sweep["cases"] == SWEEP_TARGET_CASES else f" (scaled from {sweep['cases']} cases)"
    return verdict_row(
        f"{SWEEP_TARGET_CASES:,}-case three-way sweep",
        f"≤ {SWEEP_TARGET_SECONDS:.0f} s",
        f"{per_1000:.1f} s{scaled}",
        per_1000 <= SWEEP_TARGET_SECONDS,
        f"{per_1000 - SWEEP_TARGET_SECONDS:.1f} s",
        profile_summary(sweep.get("hotspots")),
    )
