"""``refbp check``: grade one submission against an interface and write the requested outputs."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from grading.interfaces import INTERFACES
from grading.isolation import CHOICES
from grading.report_text import printable
from refbp.cli import EXIT_FOUND, EXIT_OK, non_negative_int, positive_int
from refbp.errors import InputError

if TYPE_CHECKING:
    from grading.grader import SubmissionResult
    from grading.sandbox import SandboxLimits

HELP = "grade one homework submission (layers, deep or spec interface) in a sandbox against the oracle"


def positive_seconds(text: str) -> float:
    """argparse type: a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``check`` and ``grade``: interface, seed, limits."""
    parser.add_argument(
        "--interface",
        required=True,
        choices=list(INTERFACES),
        help="the functions to grade: " + "; ".join(f"{i.name}: {i.description}" for i in INTERFACES.values()),
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the test inputs (default 0)")
    parser.add_argument("--timeout", type=positive_seconds, default=10.0, help="seconds per check (default 10)")
    parser.add_argument(
        "--submission-timeout", type=positive_seconds, default=120.0, help="seconds per submission (default 120)"
    )
    parser.add_argument("--memory", type=positive_int, default=1024, help="address-space limit in MiB (default 1024)")
    parser.add_argument(
        "--isolation",
        choices=CHOICES,
        default="auto",
        help="how student code is isolated: namespaces (bubblewrap), user (an unprivileged uid, as root), "
        "process (no OS boundary, only when asked for); auto (default) = the strongest this machine offers",
    )
    parser.add_argument(
        "--allow-import",
        action="append",
        default=[],
        metavar="PACKAGE",
        help="let submissions import PACKAGE although it is blocked by default (torch, refbp, oracle, grading)",
    )


def limits_from(args: argparse.Namespace) -> SandboxLimits:
    """The :class:`~grading.sandbox.SandboxLimits` the options ask for, with the isolation level settled.

    A level this machine does not offer is refused here, before any grading; the weakest
    level prints a warning on stderr.
    """
    from grading.isolation import WEAK_WARNING, WEAKEST, choose_level
    from grading.sandbox import BLOCKED_IMPORTS, SandboxLimits

    level = choose_level(args.isolation)
    if level == WEAKEST:
        print(WEAK_WARNING, file=sys.stderr)
    return SandboxLimits(
        function_seconds=args.timeout,
        submission_seconds=args.submission_timeout,
        memory_bytes=args.memory << 20,
        blocked_imports=tuple(name for name in BLOCKED_IMPORTS if name not in args.allow_import),
        isolation=level,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submission", type=Path, help="the student's .py file")
    add_sandbox_arguments(parser)
    parser.add_argument("--json", type=Path, help="write the JSON result here")
    parser.add_argument("--gradescope", type=Path, help="write Gradescope's results.json here")
    parser.add_argument("--junit", type=Path, help="write JUnit XML here")
    parser.add_argument("--markdown", type=Path, help="write Markdown feedback for the student here")


def existing_file(path: Path, what: str) -> Path:
    """``path`` if it is an existing file, else an :class:`InputError` naming ``what``."""
    if not path.is_file():
        raise InputError(what, "an existing .py file", str(path), source="command line")
    return path


def writable_file(path: Path, option: str) -> Path:
    """``path`` once its folder exists (created if needed), or an :class:`InputError` naming ``option``.

    Checked before anything is graded, so that a typo in an output path costs no grading time.
    """
    if path.is_dir():
        raise InputError(option, "a file path, not a folder", str(path), source="command line")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(
            option, f"a path in a folder that can be created ({err.strerror})", str(path), source="command line"
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(option, "a path in a writable folder", str(path), source="command line")
    return path


def written(write: Callable[[], None], what: str) -> None:
    """Run ``write`` (which writes output files); an ``OSError`` becomes an :class:`InputError` (exit 2)."""
    try:
        write()
    except OSError as err:
        raise InputError(what, "writable output paths", f"{err.filename}: {err.strerror}", source="output") from None


def run(args: argparse.Namespace) -> int:
    from grading.grader import grade_submission
    from grading.outputs import FORMATS, write_outputs

    path = existing_file(args.submission, "submission")
    requested = {kind: getattr(args, kind) for kind in FORMATS if getattr(args, kind) is not None}
    targets = {kind: writable_file(p, f"--{kind}") for kind, p in requested.items()}
    if len({p.resolve() for p in targets.values()}) < len(targets):
        raise InputError(
            "outputs", "a different path for each format", " ".join(map(str, targets.values())), source="command line"
        )
    result = grade_submission(path, args.interface, args.seed, limits_from(args))
    written(lambda: write_outputs(result, targets), "outputs")
    print(summary_text(result))
    return EXIT_OK if result.passed else EXIT_FOUND


def summary_text(result: SubmissionResult) -> str:
    """The terminal report: the verdict and score, then what fails, one line per check where all its rows agree."""
    from grading.outputs import isolation_words

    verdict = "PASS" if result.passed else "FAIL"
    lines = [
        f"{verdict}: {result.submission}: {result.score:g}/{result.max_score:g} "
        f"({result.interface}, seed {result.seed}, {isolation_words(result)})"
    ]
    for check, group in itertools.groupby(result.rows, key=lambda row: row.check):
        failing = [row for row in group if not row.passed]
        if len(failing) > 1 and len({(row.status, row.message, row.diagnosis) for row in failing}) == 1:
            row = failing[0]
            lines.append(f"  {check}: {row.status}" + (f" — {row.message}" if row.message else ""))
            lines += [f"    hint: {row.diagnosis}"] if row.diagnosis else []
            continue
        for row in failing:
            lines.append(f"  {check}: {row.quantity}: {row.status}" + (f" — {row.message}" if row.message else ""))
            if row.diagnosis:
                lines.append(f"    hint: {row.diagnosis}")
    return printable("\n".join(lines))
