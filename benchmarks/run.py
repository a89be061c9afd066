"""refbp fwd+bwd beside torch eager autograd on the benchmark grid, printed side by side.

A quick look at the grid only, with the same library as ``refbp bench`` (which also runs
the finite-difference, sweep and memory benchmarks and writes the report)::

    python benchmarks/run.py                      # the whole grid
    python benchmarks/run.py --sizes 128x256x4    # one size: BATCHxWIDTHxDEPTH
    python benchmarks/run.py --threads 2 --repeats 11
"""

from __future__ import annotations

import argparse

from oracle.bench_blas import blas_info, blas_lines
from oracle.bench_grid import GRID, measure_grid_size, parse_size
from oracle.bench_measure import thread_limit
from oracle.bench_report import grid_table_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=parse_size, nargs="+", default=list(GRID), help="BATCHxWIDTHxDEPTH … (default: the grid)"
    )
    parser.add_argument("--repeats", type=int, default=7, help="interleaved samples per candidate (default 7)")
    parser.add_argument("--threads", type=int, default=1, help="threads for NumPy's BLAS and torch (default 1)")
    parser.add_argument("--sample-seconds", type=float, default=0.05, help="least duration of one sample")
    args = parser.parse_args()
    rows = []
    with thread_limit(args.threads):
        print("\n".join(blas_lines(blas_info())), flush=True)
        for grid_size in args.sizes:
            rows.append(measure_grid_size(grid_size, repeats=args.repeats, sample_seconds=args.sample_seconds))
            print(grid_table_text(rows).splitlines()[-1] if rows[1:] else grid_table_text(rows), flush=True)
    largest = rows[-1]
    print(
        f"NumPy's GEMM ceiling {largest['gflops']['matmul']:.1f} GFLOP/s at ({largest['batch']}, {largest['width']}): "
        f"refbp reaches {largest['matmul_share']:.0%} of it; threads {args.threads}"
    )


if __name__ == "__main__":
    main()
