"""``refbp grade``: grade every ``*.py`` in a folder in parallel; per-submission outputs and a summary table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grading.check_command import add_sandbox_arguments, limits_from, summary_text
from refbp.cli import EXIT_FOUND, EXIT_OK, positive_int
from refbp.errors import InputError

HELP = "grade a folder of homework submissions in parallel sandboxes and write a summary table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="folder holding one .py file per submission")
    add_sandbox_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("grades"), help="output folder (default grades/)")
    parser.add_argument("--jobs", type=positive_int, default=2, help="submissions graded at once (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no line per submission")


def run(args: argparse.Namespace) -> int:
    from grading.grader import grade_folder, submissions_in
    from grading.outputs import FOLDER_FILES, write_outputs, write_summary

    if not args.folder.is_dir():
        raise InputError("folder", "an existing folder of .py submissions", str(args.folder), source="command line")
    paths = submissions_in(args.folder)
    if not paths:
        raise InputError("folder", "at least one .py submission", "none", source="command line")

    def report(result) -> None:
        folder = args.out / Path(result.submission).stem
        write_outputs(result, {kind: folder / name for kind, name in FOLDER_FILES.items()})
        if not args.quiet:
            sys.stdout.write(summary_text(result).splitlines()[0] + "\n")
            sys.stdout.flush()

    results = grade_folder(paths, args.interface, args.seed, limits_from(args), jobs=args.jobs, on_result=report)
    summary = write_summary(results, args.out)
    passed = sum(1 for r in results if r.passed)
    print(f"{passed}/{len(results)} submissions pass every check; summary: {summary['md']}, {summary['csv']}")
    return EXIT_OK if passed == len(results) else EXIT_FOUND
