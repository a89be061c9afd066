"""``refbp bench``: refbp against PyTorch and gradcheck, side by side; writes ``benchmarks.md/.svg/.json``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from refbp.cli import EXIT_FOUND, EXIT_OK, int_between, output_path, positive_int
from refbp.output_paths import output_folder

HELP = "benchmark refbp against PyTorch autograd and gradcheck and write reports/benchmarks.md (+ .svg, .json)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 2 repeats: a few seconds (what CI runs)")
    parser.add_argument("--out", type=output_path, default=Path("reports"), help="report folder (default reports/)")
    parser.add_argument("--repeats", type=positive_int, help="timed samples per candidate (default 7; smoke 2)")
    parser.add_argument("--threads", type=positive_int, help="threads for NumPy's BLAS and torch (default 1)")
    parser.add_argument("--sweep-cases", type=positive_int, help="cases of the sweep benchmark (default 1000)")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parser.add_argument(
        "--workers",
        type=int_between(1, cores, "a number of processes up to the cores of this machine"),
        help=f"processes of the parallel sweep (default: all {cores} cores)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from oracle.bench import BenchConfig, run_benchmarks
    from oracle.bench_report import REPORT_KINDS, write_report

    output_folder(args.out, "--out", files=[f"benchmarks.{kind}" for kind in REPORT_KINDS])
    config = BenchConfig.smoke_test() if args.smoke else BenchConfig()
    changes = {
        "repeats": args.repeats,
        "threads": args.threads,
        "sweep_cases": args.sweep_cases,
        "workers": args.workers,
        "memory": False if args.no_memory else None,
    }
    config = replace(config, **{key: value for key, value in changes.items() if value is not None})

    def log(message: str) -> None:
        if not args.quiet:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

    result = run_benchmarks(config, log=log)
    paths = write_report(args.out, result)
    print(summary_text(result, paths))
    missed = [t for t in result["targets"] if not t["met"]]
    return EXIT_FOUND if args.strict and missed else EXIT_OK


def summary_text(result: dict, paths: dict[str, Path]) -> str:
    """The machine and both BLAS, the grid table (ratios and GEMM ceilings side by side), every verdict, the paths."""
    from oracle.bench_blas import blas_lines
    from oracle.bench_report import grid_table_text

    meta = result["meta"]
    lines = [*blas_lines(meta["blas"]), grid_table_text(result["grid"])]
    load = ", ".join(f"{value:g}" for value in meta.get("load_average_before", []))
    lines.append(f"threads: {meta['threads']}; load average before: {load or '?'}; wall {meta['wall_seconds']:.0f} s")
    for target in result["targets"]:
        verdict = "met" if target["met"] else f"MISSED by {target['missed_by']}"
        lines.append(f"  [{verdict}] {target['target']}: {target['measured']} (goal {target['goal']})")
    lines.append("reports: " + ", ".join(str(p) for p in paths.values()))
    return "\n".join(lines)
