"""``refbp sweep``: random networks checked three ways, reports written to ``--out``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from refbp.cli import EXIT_FOUND, EXIT_OK, int_between, load_implementation, non_negative_int, output_path, positive_int
from refbp.errors import InputError
from refbp.interrupts import EXIT_INTERRUPTED
from refbp.output_paths import output_folder

#: Bounds of --max-depth and --max-width: a sweep checks many small networks, each entry by finite differences.
MAX_DEPTH, MAX_WIDTH = 32, 256

HELP = "check random networks three ways (refbp, torch autograd, finite differences) and write reports"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", type=positive_int, default=500, help="number of random cases (default 500)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="hypothesis seed (default 0)")
    parser.add_argument(
        "--dtype", choices=("float64", "float32"), default=None, help="default float64 (or the declared dtype)"
    )
    parser.add_argument("--out", type=output_path, default=Path("reports"), help="report folder (default reports/)")
    parser.add_argument("--fd", choices=("full", "directional", "off"), default="full", help="finite differences")
    parser.add_argument("--impl", help="check MODULE:FUNCTION (or FILE.py:FUNCTION) instead of refbp")
    parser.add_argument("--device", default=None, help="torch device for the twin: cpu (default) or cuda")
    parser.add_argument(
        "--supports",
        type=Path,
        default=None,
        metavar="FILE.toml",
        help="what the implementation supports (default: REFBP_SUPPORTS beside --impl, else everything)",
    )
    depth, width = int_between(1, MAX_DEPTH, "a depth"), int_between(1, MAX_WIDTH, "a width")
    parser.add_argument(
        "--max-depth", type=depth, default=None, help=f"layers per network (default up to 4, at most {MAX_DEPTH})"
    )
    parser.add_argument(
        "--max-width", type=width, default=None, help=f"units per layer (default up to 6, at most {MAX_WIDTH})"
    )
    parser.add_argument(
        "--families",
        type=_families,
        default=None,
        help="network families to draw: mlp,cnn,rnn (default every family; only mlp with --impl or --supports)",
    )
    parser.add_argument("--no-shrink", action="store_true", help="do not shrink failing cases")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _families(text: str) -> tuple[str, ...]:
    from oracle.families import parse_families

    try:
        return parse_families(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run(args: argparse.Namespace) -> int:
    from oracle.families import family_cases, parse_families
    from oracle.report import REPORT_KINDS, write_reports
    from oracle.supports import DEFAULT_MAX_UNSUPPORTED, unsupported_verdict
    from oracle.sweep import run_sweep
    from oracle.torch_twin import resolve_device

    impl_file = args.impl.rpartition(":")[0] if args.impl else ""
    inputs = [impl_file] if impl_file.endswith(".py") else []
    output_folder(args.out, "--out", files=[f"sweep.{kind}" for kind in REPORT_KINDS], inputs=inputs)
    device = str(resolve_device(args.device))
    if args.device not in (None, "cpu") and device == "cpu":
        note = f"refbp sweep: --device {args.device}: CUDA is not available, the torch twin runs on the CPU"
        print(note, file=sys.stderr)
    from oracle.gate import gate_strategy
    from oracle.supports import Supports, resolve

    impl: Any = None
    kwargs: dict[str, Any] = {}
    if args.impl:
        impl = load_implementation(args.impl)
        kwargs = {"impl": impl, "impl_name": "impl", "impl_ref": args.impl}
    supports = Supports.load(args.supports) if args.supports is not None else None
    bounds = {k: v for k, v in (("max_depth", args.max_depth), ("max_width", args.max_width)) if v is not None}
    if args.impl or supports is not None:
        # an implementation follows refbp's dense protocol, which its support declaration describes
        families = ("mlp",)
        if args.families not in (None, families):
            expected = "mlp alone when an --impl or --supports is given"
            raise InputError("--families", expected, ",".join(args.families), source="command line")
        strategy, declared = gate_strategy(impl, None, None, supports, args.dtype, bounds, where="command line")
    else:
        families, declared = args.families or parse_families(None), None
        resolve(None, bounds, where="command line")  # a bad bound is named as the option it came from
        strategy = family_cases(families, dtype=args.dtype or "float64", **bounds)
    result = run_sweep(
        args.cases,
        args.seed,
        fd=args.fd,
        device=device,
        shrink=not args.no_shrink,
        progress=False if args.quiet else None,
        strategy=strategy,
        **kwargs,
    )
    rows = result.rows
    n_cases = len([c for c in result.cases if not c.startswith("shrunk")])
    unsupported = [r for r in result.results if any(row.status == "unsupported" for row in r.rows)]
    verdict = unsupported_verdict(len(unsupported), n_cases, DEFAULT_MAX_UNSUPPORTED)
    meta = {
        "title": "refbp sweep",
        "command": "refbp " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["sweep"] else "refbp sweep",
        "seed": args.seed,
        "cases": n_cases,
        "dtype": ", ".join(sorted({c.spec.dtype for c in result.cases.values()})) or args.dtype or "float64",
        "families": ",".join(families),
        "supports": declared.describe() if declared is not None else "not declared",
        "unsupported cases": f"{len(unsupported)} of {n_cases}" if unsupported else "0",
        "fd_mode": args.fd,
        "implementation": args.impl or "refbp",
        "torch device": device,
        "wall_seconds": round(result.wall_seconds, 3),
        "interrupted": result.interrupted,
        "shrunk": result.shrunk,
        "depth_by_case": {r.case: r.depth for r in result.results},
        "cases_json": {cid: case.to_dict() for cid, case in result.cases.items()},
    }
    if result.interrupted and not result.results:
        raise KeyboardInterrupt
    paths = write_reports(args.out, rows, meta)
    if result.interrupted:
        reports = ", ".join(str(p) for p in paths.values())
        sys.stderr.write(f"refbp: interrupted after {n_cases} of {args.cases} cases; partial reports: {reports}\n")
        return EXIT_INTERRUPTED
    print(summary_text(result, rows, paths))
    if verdict:
        print(verdict)
    return EXIT_OK if result.passed and not result.interrupted and not verdict else EXIT_FOUND


def summary_text(result, rows, paths) -> str:
    """What the terminal shows: the verdict, where failing cases diverge, the shrunk cases, the report paths."""
    from oracle.check import describe

    counts = rows["status"].value_counts().to_dict() if len(rows) else {}
    n_cases = len(result.results) - len(result.shrunk)
    verdict = "PASS" if result.passed else "FAIL"
    if result.interrupted:
        verdict += " (interrupted)"
    counts_text = ", ".join(f"{counts[s]} {s}" for s in sorted(counts))
    lines = [f"{verdict}: {n_cases} cases, {len(rows)} comparisons ({counts_text}) in {result.wall_seconds:.1f} s"]
    failures = result.failures
    lines += [f"  {failed.case}: {describe(failed)}" for failed in failures[:10]]
    if len(failures) > 10:
        lines.append(f"  … and {len(failures) - 10} more failing cases")
    for item in result.shrunk:
        lines.append(f"smallest failing case ({item['signature']}): {item['depth']} layer(s), batch {item['batch']}")
        lines.append(f"  {item['description']}")
        lines.append(f"  replay: {item['replay']}")
    lines.append("reports: " + ", ".join(str(p) for p in paths.values()))
    return "\n".join(lines)
