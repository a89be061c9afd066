"""``refbp autograder``: write a Gradescope autograder zip for an assignment (see :mod:`grading.autograder_bundle`)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from grading.check_command import add_loading_arguments
from refbp.cli import EXIT_OK, non_negative_int

HELP = "write a Gradescope autograder zip (setup.sh, run_autograder, the assignment, refbp) for an assignment"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", metavar="ASSIGNMENT", help="a built-in assignment name or an assignment .toml")
    add_loading_arguments(parser)
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the test inputs (default 0)")
    parser.add_argument("--out", type=Path, default=Path("autograder.zip"), help="the zip to write")


def run(args: argparse.Namespace) -> int:
    from grading.assignment import resolve, support_files
    from grading.assignment_plan import assignment_plan
    from grading.autograder_bundle import write_bundle
    from grading.check_command import written
    from refbp.output_paths import output_file

    assignment = resolve(args.assignment)
    if args.load:
        assignment = dataclasses.replace(assignment, load=args.load)
    support = support_files(args.support)
    out = output_file(args.out, "--out", inputs=support)
    assignment_plan(assignment, args.seed)  # the oracle is confirmed here, not on the first student
    names: list[str] = []
    written(lambda: names.extend(write_bundle(assignment, support, out, args.seed)), "--out")
    graded = ", ".join(f.name for f in assignment.functions)
    print(f"wrote {out}: Gradescope autograder for {assignment.name} ({graded}); {len(names)} files")
    return EXIT_OK
