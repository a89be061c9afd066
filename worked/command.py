"""``refbp examples``: check the numbers printed in worked examples, claim by claim.

Every file is read and validated before anything is computed, so a malformed file stops
the run with one line on stderr and exit status 2. With no files, the bundled examples
are checked (they transcribe the lecture notes faithfully, wrong numbers included, so
that run exits 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from refbp import interrupts
from refbp.cli import EXIT_FOUND, EXIT_OK, output_path
from refbp.interrupts import EXIT_INTERRUPTED
from refbp.output_paths import output_file, output_folder

HELP = "check the numbers printed in worked examples (TOML), claim by claim, three ways"
BUNDLED_DIR = Path(__file__).parent / "examples"


def bundled_examples() -> list[Path]:
    """The worked examples shipped with the package, sorted by name."""
    return sorted(BUNDLED_DIR.glob("*.toml"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", type=Path, help="worked-example files (default: the bundled examples)")
    parser.add_argument("--out", type=output_path, default=Path("reports"), help="report folder (default reports/)")
    parser.add_argument("--json", type=output_path, default=None, help="also write the JSON report to this path")
    parser.add_argument("--device", default=None, help="torch device for the twin: cpu (default) or cuda")
    parser.add_argument("--quiet", action="store_true", help="print only the verdict and the wrong claims")


def run(args: argparse.Namespace) -> int:
    from worked.evaluate import check_example
    from worked.example_file import load_example, parse_example
    from worked.report import STEM, render_text, summarise, write_reports

    if args.files:
        examples = [load_example(path) for path in args.files]
    else:
        examples = [
            parse_example(path.read_text(encoding="utf-8"), f"worked/examples/{path.name}")
            for path in bundled_examples()
        ]
    names = [f"{STEM}.{kind}" for kind in ("json", "md", "html")]
    output_folder(args.out, "--out", files=names, inputs=args.files)
    if args.json is not None:
        output_file(args.json, "--json", inputs=args.files)
    checked, interrupted = [], False
    try:
        for example in examples:
            interrupts.raise_if_requested()
            checked.append((example, check_example(example, device=args.device)))
    except KeyboardInterrupt:
        if not checked:
            raise
        interrupted = True  # Ctrl-C: report the examples checked so far
    meta = {
        "title": "refbp examples",
        "files": [example.source for example, _ in checked],
        "bundled": not args.files,
    }
    if interrupted:
        meta["interrupted"] = True
    summary = summarise(checked, meta)
    paths = write_reports(args.out, summary, args.json)
    if interrupted:
        reports = ", ".join(str(p) for p in paths)
        sys.stderr.write(
            f"refbp: interrupted after {len(checked)} of {len(examples)} examples; partial reports: {reports}\n"
        )
        return EXIT_INTERRUPTED
    if args.quiet:
        lines = [render_text(summary).splitlines()[-1]]
        for w in summary["wrong"]:
            where = ", ".join(p for p in (w["file"], w["where"]) if p)
            lines.append(f"  {w['status']}: {where}: {w['claim']} = {w['printed']}, should read {w['should_read']}")
        print("\n".join(lines))
    else:
        print(render_text(summary))
    print("reports: " + ", ".join(str(p) for p in paths))
    return EXIT_FOUND if summary["verdict"] == "fail" else EXIT_OK
