"""How ``refbp bench`` measures: threads, interleaved timing, profiles of a slow call, and the target rows.

Timing: each candidate runs once to warm up and to calibrate how many calls make one
sample last at least ``sample_seconds``; then ``repeats`` samples of every candidate are
taken in turn (A B C A B C …) so that a busy spell of the machine hits all of them alike,
with the garbage collector paused as :mod:`timeit` does. Reported times are medians per
call. NumPy's BLAS and torch use the same number of threads (:func:`thread_limit`, set with
``threadpoolctl`` and ``torch.set_num_threads``). The default is one thread: with more, on
a machine whose cores are also busy with other work, OpenBLAS worker threads that keep
spinning after a call starve torch's OpenMP workers, and torch's times of small networks
came out up to 100× too long in trials; one thread gives stable ratios.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import math
import os
import pstats
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """NumPy's BLAS (and OpenMP) and torch's intra-op pool limited to ``threads``; restored afterwards."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def time_interleaved(
    candidates: Mapping[str, Callable[[], Any]], *, repeats: int, sample_seconds: float
) -> dict[str, list[float]]:
    """Seconds per call of each candidate, ``repeats`` samples each (see the module docstring)."""
    loops: dict[str, int] = {}
    for name, call in candidates.items():
        started = time.perf_counter()
        call()  # warm-up, and how long one call takes
        once = time.perf_counter() - started
        loops[name] = max(1, math.ceil(sample_seconds / max(once, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, call in candidates.items():
                count = loops[name]
                started = time.perf_counter()
                for _ in range(count):
                    call()
                samples[name].append((time.perf_counter() - started) / count)
    finally:
        if collecting:
            gc.enable()
    return samples


def _profile(call: Callable[[], Any], seconds: float) -> tuple[dict, int]:
    """cProfile's stats of ``call`` repeated for about ``seconds``, and how many calls that was.

    The stats map ``(file, line, name)`` to ``(cc, nc, tottime, cumtime, callers)``.
    """
    started = time.perf_counter()
    call()
    count = max(1, math.ceil(seconds / max(time.perf_counter() - started, 1e-9)))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        call()
    profiler.disable()
    return pstats.Stats(profiler).stats, count


def hotspots(call: Callable[[], Any], *, top: int = 4, seconds: float = 0.3) -> list[dict]:
    """The functions ``call`` spends its own time in (cProfile, repeated for about ``seconds``)."""
    stats, count = _profile(call, seconds)
    total = sum(entry[2] for entry in stats.values()) or 1.0
    ranked = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return [
        {"function": _frame_name(key), "share": entry[2] / total, "seconds_per_call": entry[2] / count}
        for key, entry in ranked
    ]


def phase_shares(call: Callable[[], Any], phases: Mapping[str, str], *, seconds: float = 0.3) -> dict[str, float]:
    """Share of ``call``'s time spent inside each function of ``phases`` (cProfile cumulative time, ``label → name``).

    cProfile's own overhead weighs on Python-heavy parts more than on NumPy-heavy ones, so
    the shares are a rough picture.
    """
    stats, _ = _profile(call, seconds)
    total = sum(entry[2] for entry in stats.values()) or 1.0
    cumulative: dict[str, float] = {}
    for (_, _, name), entry in stats.items():
        cumulative[name] = cumulative.get(name, 0.0) + entry[3]
    return {label: cumulative.get(name, 0.0) / total for label, name in phases.items()}


def _frame_name(key: tuple[str, int, str]) -> str:
    file, line, name = key
    if file == "~":
        return name  # a builtin, e.g. "<method 'reduce' of 'numpy.ufunc' objects>"
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else file
    return f"{name} ({short}:{line})"


def median(values: list[float]) -> float:
    """The median as a plain float."""
    return float(statistics.median(values))


def profile_summary(spots: list[dict] | None) -> str:
    """``"profile: f 40%; g 20%; h 10%"`` from :func:`hotspots` ("" without them)."""
    if not spots:
        return ""
    return "profile: " + "; ".join(f"{s['function']} {s['share']:.0%}" for s in spots[:3])


def verdict_row(name: str, goal: str, measured: str, met: bool, missed_by: str, why: str) -> dict:
    """One target's row of the report: ``missed_by`` and ``why`` are kept only when it is missed."""
    return {
        "target": name,
        "goal": goal,
        "measured": measured,
        "met": met,
        "missed_by": "" if met else missed_by,
        "why": "" if met else why,
    }
