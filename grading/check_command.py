"""``refbp check``: grade one submission against an interface and write the requested outputs."""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from grading.assignment import ALIASES
from grading.interfaces import INTERFACES
from grading.isolation import CHOICES
from grading.report_text import printable
from refbp.cli import EXIT_FOUND, EXIT_OK, non_negative_int, output_path, positive_int
from refbp.errors import InputError
from refbp.output_paths import distinct_outputs, output_file

if TYPE_CHECKING:
    from grading.assignment import Assignment
    from grading.grader import SubmissionResult
    from grading.sandbox import SandboxLimits

HELP = "grade one homework submission (.py or .ipynb) against an assignment in a sandbox"


def positive_seconds(text: str) -> float:
    """argparse type: a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def add_loading_arguments(parser: argparse.ArgumentParser) -> None:
    """``--support`` and ``--load``: what goes beside a submission and what of it runs (check, grade, autograder)."""
    parser.add_argument(
        "--support",
        action="append",
        default=[],
        type=Path,
        metavar="FILE|DIR",
        help="a course helper file (or a folder of them) put beside the submission; repeatable",
    )
    parser.add_argument(
        "--load",
        choices=["defs", "all"],
        help="defs: run only top-level imports, definitions and literal constants; all: run everything "
        "(default: the assignment's, else defs for notebooks and all for .py files)",
    )


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``check`` and ``grade``: assignment, support files, loading, seed, limits."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--assignment",
        metavar="NAME|FILE",
        help="what to grade: a built-in assignment (see refbp assignments) or an assignment .toml file",
    )
    which.add_argument(
        "--interface",
        choices=list(INTERFACES),
        help="every function of a style (alias of the built-in "
        + ", ".join(ALIASES.values())
        + "): "
        + "; ".join(f"{i.name}: {i.description}" for i in INTERFACES.values()),
    )
    add_loading_arguments(parser)
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


def assignment_from(args: argparse.Namespace) -> Assignment:
    """The assignment ``--assignment`` or ``--interface`` names (an :class:`InputError` if there is none such)."""
    from grading.assignment import resolve, support_files

    support_files(args.support)  # a bad --support path is refused before any grading
    return resolve(args.assignment or args.interface)


def limits_from(args: argparse.Namespace, allowed: tuple[str, ...] = ()) -> SandboxLimits:
    """The :class:`~grading.sandbox.SandboxLimits` the options ask for, with the isolation level settled.

    ``allowed``: the assignment's imports. A level this machine does not offer is refused
    here, before any grading; the weakest level prints a warning on stderr.
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
        blocked_imports=tuple(name for name in BLOCKED_IMPORTS if name not in (*args.allow_import, *allowed)),
        isolation=level,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submission", type=Path, help="the student's .py file or .ipynb notebook")
    add_sandbox_arguments(parser)
    parser.add_argument("--json", type=output_path, help="write the JSON result here")
    parser.add_argument("--gradescope", type=output_path, help="write Gradescope's results.json here")
    parser.add_argument("--junit", type=output_path, help="write JUnit XML here")
    parser.add_argument("--markdown", type=output_path, help="write Markdown feedback for the student here")


def existing_file(path: Path, what: str) -> Path:
    """``path`` if it is an existing file, else an :class:`InputError` naming ``what``."""
    if not path.is_file():
        raise InputError(what, "an existing .py or .ipynb file", str(path), source="command line")
    return path


def written(write: Callable[[], None], what: str) -> None:
    """Run ``write`` (which writes output files); an ``OSError`` becomes an :class:`InputError` (exit 2)."""
    try:
        write()
    except OSError as err:
        raise InputError(what, "writable output paths", f"{err.filename}: {err.strerror}", source="output") from None


def run(args: argparse.Namespace) -> int:
    from grading.assignment import support_files
    from grading.grader import grade_submission
    from grading.outputs import FORMATS, write_outputs

    path = existing_file(args.submission, "submission")
    requested = {kind: getattr(args, kind) for kind in FORMATS if getattr(args, kind) is not None}
    assignment = assignment_from(args)
    support = support_files(args.support)
    targets = {kind: output_file(p, f"--{kind}", inputs=[path, *support]) for kind, p in requested.items()}
    distinct_outputs((f"--{kind}", p) for kind, p in targets.items())
    limits = limits_from(args, assignment.allow_imports)
    result = grade_submission(path, assignment, args.seed, limits, support=support, load=args.load)
    written(lambda: write_outputs(result, targets), "outputs")
    print(summary_text(result))
    return EXIT_OK if result.passed else EXIT_FOUND


def summary_text(result: SubmissionResult) -> str:
    """The terminal report: verdict and score, the notes, then each distinct failure once (with its count), warnings.

    Rows of one check that fail alike make one line; a line that recurs across checks (one
    import error behind every check, say) is printed once with the number of checks.
    """
    from grading.outputs import isolation_words

    verdict = "PASS" if result.passed else "FAIL"
    lines = [
        f"{verdict}: {result.submission}: {result.score:g}/{result.max_score:g} "
        f"({result.assignment or result.interface}, seed {result.seed}, {isolation_words(result)})"
    ]
    lines += [f"  note: {note}" for note in result.notes]
    seen: dict[tuple[str, str, str], list[str]] = {}
    for check, group in itertools.groupby(result.rows, key=lambda row: row.check):
        rows = [row for row in group if row.status != "ok"]
        if len(rows) > 1 and len({(row.status, row.message, row.diagnosis) for row in rows}) == 1:
            rows = rows[:1]
            labels = [check]
        else:
            labels = [f"{check}: {row.quantity}" for row in rows]
        for label, row in zip(labels, rows, strict=True):
            seen.setdefault((row.status, row.message, row.diagnosis), []).append(label)
    for (status, message, diagnosis), labels in sorted(seen.items(), key=lambda item: item[0][0] == "warn"):
        count = f" (and {len(labels) - 1} more check{'s' if len(labels) > 2 else ''} alike)" if len(labels) > 1 else ""
        lines.append(f"  {labels[0]}: {status}" + (f" — {message}" if message else "") + count)
        lines += [f"    hint: {diagnosis}"] if diagnosis else []
    return printable("\n".join(lines))
