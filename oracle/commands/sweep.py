"""``refbp sweep``: random networks checked three ways, reports written to ``--out``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from refbp.cli import EXIT_FOUND, EXIT_OK, load_implementation, non_negative_int, positive_int

HELP = "check random networks three ways (refbp, torch autograd, finite differences) and write reports"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", type=positive_int, default=500, help="number of random cases (default 500)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="hypothesis seed (default 0)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="report folder (default reports/)")
    parser.add_argument("--fd", choices=("full", "directional", "off"), default="full", help="finite differences")
    parser.add_argument("--impl", help="check MODULE:FUNCTION (or FILE.py:FUNCTION) instead of refbp")
    parser.add_argument("--device", default=None, help="torch device for the twin: cpu (default) or cuda")
    parser.add_argument("--max-depth", type=positive_int, default=4, help="layers per network (default up to 4)")
    parser.add_argument("--max-width", type=positive_int, default=6, help="units per layer (default up to 6)")
    parser.add_argument(
        "--families", type=_families, default=None, help="network families to draw: mlp,cnn,rnn (default every family)"
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
    from oracle.families import parse_families
    from oracle.report import write_reports
    from oracle.sweep import run_sweep
    from oracle.torch_twin import resolve_device

    device = str(resolve_device(args.device))
    if args.device not in (None, "cpu") and device == "cpu":
        note = f"refbp sweep: --device {args.device}: CUDA is not available, the torch twin runs on the CPU"
        print(note, file=sys.stderr)
    kwargs: dict[str, Any] = {}
    if args.impl:
        kwargs = {"impl": load_implementation(args.impl), "impl_name": "impl", "impl_ref": args.impl}
    result = run_sweep(
        args.cases,
        args.seed,
        dtype=args.dtype,
        fd=args.fd,
        device=device,
        shrink=not args.no_shrink,
        progress=False if args.quiet else None,
        max_depth=args.max_depth,
        max_width=args.max_width,
        families=args.families or parse_families(None),
        **kwargs,
    )
    rows = result.rows
    meta = {
        "title": "refbp sweep",
        "command": "refbp " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["sweep"] else "refbp sweep",
        "seed": args.seed,
        "cases": len([c for c in result.cases if not c.startswith("shrunk")]),
        "dtype": args.dtype,
        "families": ",".join(args.families or parse_families(None)),
        "fd_mode": args.fd,
        "implementation": args.impl or "refbp",
        "torch device": device,
        "wall_seconds": round(result.wall_seconds, 3),
        "interrupted": result.interrupted,
        "shrunk": result.shrunk,
        "depth_by_case": {r.case: r.depth for r in result.results},
        "cases_json": {cid: case.to_dict() for cid, case in result.cases.items()},
    }
    paths = write_reports(args.out, rows, meta)
    print(summary_text(result, rows, paths))
    return EXIT_OK if result.passed and not result.interrupted else EXIT_FOUND


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
