"""refbp fwd+bwd on one benchmark grid network in a loop: the call to put under a profiler.

    python -m pyinstrument benchmarks/profile_backprop.py 128x256x4
    py-spy record -o profile.svg -- python benchmarks/profile_backprop.py 128x256x4 --calls 2000
    python benchmarks/profile_backprop.py 128x256x4 --textbook   # the textbook path instead
"""

from __future__ import annotations

import argparse
import time

from oracle.bench_grid import grid_spec, parse_size
from oracle.cases import Case
from refbp.network import backprop, textbook_backprop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", type=parse_size, help="BATCHxWIDTHxDEPTH, e.g. 128x256x4")
    parser.add_argument("--calls", type=int, default=300, help="fwd+bwd calls (default 300)")
    parser.add_argument("--textbook", action="store_true", help="profile textbook_backprop instead")
    args = parser.parse_args()
    batch, width, depth = args.size
    spec = grid_spec(width, depth)
    data = Case(spec, batch=batch, seed=0).materialize()
    step = textbook_backprop if args.textbook else backprop
    started = time.perf_counter()
    for _ in range(args.calls):
        step(spec, data.params, data.X, data.T)
    elapsed = time.perf_counter() - started
    print(f"{step.__name__}: {elapsed / args.calls * 1e3:.3f} ms per call over {args.calls} calls")


if __name__ == "__main__":
    main()
