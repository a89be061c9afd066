"""``refbp replay``: re-run one case printed by a sweep and show where it diverges."""

from __future__ import annotations

import argparse
from typing import Any

from refbp.cli import EXIT_FOUND, EXIT_OK, load_implementation
from refbp.text_input import read_input_text

HELP = "re-run one case printed by a sweep (the case as JSON, or a .json file)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", help="the case as JSON, or a path to a JSON file")
    parser.add_argument("--fd", choices=("full", "directional", "off"), default="full", help="finite differences")
    parser.add_argument("--impl", help="check MODULE:FUNCTION (or FILE.py:FUNCTION) instead of refbp")
    parser.add_argument("--device", default=None, help="torch device for the twin: cpu (default) or cuda")


def run(args: argparse.Namespace) -> int:
    from oracle.cases import Case
    from oracle.check import check_arrays, describe
    from oracle.report_format import quantity_label

    text, source = args.case, "case"
    if not text.lstrip().startswith(("{", "[")):
        text, source = read_input_text(text, "a JSON case or a readable .json file"), text
    case = Case.from_json(text, source=source)
    kwargs: dict[str, Any] = {}
    if args.impl:
        kwargs = {"impl": load_implementation(args.impl), "impl_name": "impl"}
    data = case.materialize()
    result = check_arrays("replay", case.spec, data, fd=args.fd, device=args.device, seed=case.seed, **kwargs)
    print(f"{case.spec.depth} layer(s), batch {case.batch}, seed {case.seed}: {describe(result)}")
    for row in [r for r in result.rows if r.status not in ("ok", "kink")][:40]:
        where = "input" if row.layer == 0 else f"layer {row.layer}"
        line = (
            f"  {where:8} {quantity_label(row.quantity, row.step):6} {row.pair:12} {row.status:8} "
            f"max rel err {row.max_rel_err:.2e}"
            f"  worst {row.worst_index}: {row.worst_left:.6g} vs {row.worst_right:.6g}"
        )
        print(line + (f"  — {row.diagnosis}" if row.diagnosis else ""))
    return EXIT_OK if result.passed else EXIT_FOUND
