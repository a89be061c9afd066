"""The ``refbp`` command.

Exit status: 0 when everything agrees, 1 when a discrepancy is found, 2 on bad usage or
bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from refbp.errors import InputError

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def load_implementation(target: str) -> Callable[..., Any]:
    """``"package.module:function"`` or ``"path/to/file.py:function"`` → the callable.

    The callable follows refbp's protocol: ``(spec, params, X, T) -> (ForwardTrace, Gradients)``.
    """
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise InputError("--impl", "MODULE:FUNCTION or FILE.py:FUNCTION", target, source="command line")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise InputError("--impl", "an existing Python file", module_name, source="command line")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except InputError:
        raise
    except Exception as err:
        raise InputError(
            "--impl",
            f"an importable module ({type(err).__name__}: {err})".splitlines()[0],
            module_name,
            source="command line",
        ) from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise InputError("--impl", f"a function {attr!r} in {module_name}", "not found", source="command line")
    return func


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="refbp", description="A backpropagation reference checked against PyTorch and finite differences."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sweep = sub.add_parser("sweep", help="check random networks three ways (refbp, torch, finite differences)")
    sweep.add_argument("--cases", type=_positive, default=500, help="number of random cases (default 500)")
    sweep.add_argument("--seed", type=_non_negative, default=0, help="hypothesis seed (default 0)")
    sweep.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    sweep.add_argument("--out", type=Path, default=Path("reports"), help="report folder (default reports/)")
    sweep.add_argument("--fd", choices=("full", "directional", "off"), default="full", help="finite differences")
    sweep.add_argument("--impl", help="check MODULE:FUNCTION instead of refbp (same protocol as refbp.backprop)")
    sweep.add_argument("--device", default=None, help="torch device for the twin: cpu (default) or cuda")
    sweep.add_argument("--max-depth", type=_positive, default=4)
    sweep.add_argument("--max-width", type=_positive, default=6)
    sweep.add_argument("--no-shrink", action="store_true", help="do not shrink failing cases")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    replay = sub.add_parser("replay", help="re-run one case printed by a sweep (JSON text or a .json file)")
    replay.add_argument("case", help="the case as JSON, or a path to a JSON file")
    replay.add_argument("--fd", choices=("full", "directional", "off"), default="full")
    replay.add_argument("--impl", help="check MODULE:FUNCTION instead of refbp")
    replay.add_argument("--device", default=None)
    return parser


def _cmd_sweep(args: argparse.Namespace) -> int:
    from oracle.report import write_reports
    from oracle.sweep import run_sweep

    kwargs: dict[str, Any] = {}
    if args.impl:
        kwargs = {"impl": load_implementation(args.impl), "impl_name": "impl"}
    result = run_sweep(
        args.cases,
        args.seed,
        dtype=args.dtype,
        fd=args.fd,
        device=args.device,
        shrink=not args.no_shrink,
        progress=False if args.quiet else None,
        max_depth=args.max_depth,
        max_width=args.max_width,
        **kwargs,
    )
    rows = result.rows
    command = "refbp " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["sweep"] else "refbp sweep"
    meta = {
        "title": "refbp sweep",
        "command": command,
        "seed": args.seed,
        "cases": len([c for c in result.cases if not c.startswith("shrunk")]),
        "dtype": args.dtype,
        "fd_mode": args.fd,
        "implementation": args.impl or "refbp",
        "wall_seconds": round(result.wall_seconds, 3),
        "interrupted": result.interrupted,
        "shrunk": result.shrunk,
        "depth_by_case": {r.case: r.depth for r in result.results},
        "cases_json": {cid: case.to_dict() for cid, case in result.cases.items()},
    }
    paths = write_reports(args.out, rows, meta)
    _print_sweep_summary(result, rows, paths)
    return EXIT_OK if result.passed and not result.interrupted else EXIT_FOUND


def _print_sweep_summary(result, rows, paths) -> None:
    from oracle.check import describe

    counts = rows["status"].value_counts().to_dict() if len(rows) else {}
    n_cases = len(result.results) - len(result.shrunk)
    verdict = "PASS" if result.passed else "FAIL"
    if result.interrupted:
        verdict += " (interrupted)"
    counts_text = ", ".join(f"{counts[s]} {s}" for s in sorted(counts))
    print(f"{verdict}: {n_cases} cases, {len(rows)} comparisons ({counts_text}) in {result.wall_seconds:.1f} s")
    failures = result.failures
    for failed in failures[:10]:
        print(f"  {failed.case}: {describe(failed)}")
    if len(failures) > 10:
        print(f"  … and {len(failures) - 10} more failing cases")
    for item in result.shrunk:
        print(f"smallest failing case ({item['signature']}): {item['depth']} layer(s), batch {item['batch']}")
        print(f"  {item['description']}")
        print(f"  replay: {item['replay']}")
    print("reports: " + ", ".join(str(p) for p in paths.values()))


def _cmd_replay(args: argparse.Namespace) -> int:
    from oracle.cases import Case
    from oracle.check import check_arrays, describe

    text, source = args.case, "case"
    if not text.lstrip().startswith("{"):
        path = Path(text)
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as err:
            raise InputError("", "a JSON case or a readable .json file", err.strerror, source=str(path)) from None
    case = Case.from_json(text, source=source)
    kwargs: dict[str, Any] = {}
    if args.impl:
        kwargs = {"impl": load_implementation(args.impl), "impl_name": "impl"}
    result = check_arrays(
        "replay", case.spec, case.materialize(), fd=args.fd, device=args.device, seed=case.seed, **kwargs
    )
    failing = [r for r in result.rows if r.status not in ("ok", "kink")]
    print(f"{case.spec.depth} layer(s), batch {case.batch}, seed {case.seed}: {describe(result)}")
    for row in failing[:40]:
        where = "input" if row.layer == 0 else f"layer {row.layer}"
        print(
            f"  {where:8} {row.quantity:6} {row.pair:12} {row.status:8} max rel err {row.max_rel_err:.2e}"
            f"  worst {row.worst_index}: {row.worst_left:.6g} vs {row.worst_right:.6g}"
            + (f"  — {row.diagnosis}" if row.diagnosis else "")
        )
    return EXIT_OK if result.passed else EXIT_FOUND


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "sweep":
            return _cmd_sweep(args)
        return _cmd_replay(args)
    except InputError as err:
        sys.stderr.write(f"refbp: error: {err}\n")
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
