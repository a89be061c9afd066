"""The ``refbp`` command: one subcommand per module listed in :data:`COMMANDS`.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; it keeps heavy imports (torch, pandas) inside ``run`` so that
``refbp --help`` stays fast. Exit status: 0 when everything agrees, 1 when a discrepancy
is found, 2 on bad usage or bad input (one line on stderr, no traceback), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, NoReturn

from refbp import interrupts, limits
from refbp.errors import InputError
from refbp.limits import DEFAULTS

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2

COMMANDS: dict[str, str] = {
    "sweep": "oracle.commands.sweep",
    "replay": "oracle.commands.replay",
    "bench": "oracle.commands.bench",
    "check": "grading.check_command",
    "grade": "grading.grade_command",
    "assignments": "grading.assignments_command",
    "autograder": "grading.autograder_command",
    "examples": "worked.command",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _int_at_least(minimum: int, wording: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text) if len(text) <= 40 else minimum - 1
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {text!r}")
        return value

    return parse


def int_between(minimum: int, maximum: int, wording: str) -> Callable[[str], int]:
    """argparse type: an integer in ``minimum..maximum``, worded as ``wording``."""

    def parse(text: str) -> int:
        try:
            value = int(text) if len(text) <= 20 else minimum - 1
        except ValueError:
            value = minimum - 1
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected {wording} ({minimum}..{maximum}), got {text!r}")
        return value

    return parse


def output_path(text: str) -> Path:
    """argparse type of an output path: any non-empty path (``""`` would silently mean the current folder).

    The path itself is checked by :mod:`refbp.output_paths` once the command knows what it writes there.
    """
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got ''")
    return Path(text)


positive_int = _int_at_least(1, "a positive integer")
"""argparse type: an integer >= 1."""
non_negative_int = _int_at_least(0, "an integer >= 0")
"""argparse type: an integer >= 0."""


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
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except InputError:
        raise
    except (Exception, SystemExit) as err:  # a module that exits while being imported is not importable either
        reason = f"an importable module ({type(err).__name__}: {err})".splitlines()[0]
        raise InputError("--impl", reason, module_name, source="command line") from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise InputError("--impl", f"a function {attr!r} in {module_name}", "not found", source="command line")
    return func


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="refbp", description="A backpropagation reference checked against PyTorch and finite differences."
    )
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=N",
        help="raise a size limit for this run: " + ", ".join(f"{k} (default {v:,})" for k, v in DEFAULTS.items()),
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None, *, early_interrupts: Collection[int] = ()) -> int:
    """Run one command; Ctrl-C at any moment gives one line on stderr and exit status 130.

    A command that has checked something when it is interrupted writes its partial report
    first (see ``refbp sweep``).
    """
    with interrupts.handling():
        try:
            if early_interrupts:  # Ctrl-C while the command was starting (see refbp.entry_point)
                raise KeyboardInterrupt
            args = build_parser().parse_args(argv)
            with limits.raised(**dict(limits.parse(text) for text in args.limit)):
                return args.run(args)
        except InputError as err:
            sys.stderr.write(f"refbp: error: {err}\n")
            return EXIT_USAGE
        except BaseException as err:
            if isinstance(err, SystemExit) or not interrupts.stopped_by_user(err):
                raise
            sys.stderr.write("refbp: interrupted\n")
            return interrupts.EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
