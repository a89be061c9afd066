"""``refbp grade``: grade a folder of submissions in parallel; per-submission outputs and a summary table.

A submission is a ``.py`` or ``.ipynb`` file directly in the folder, or a subfolder per
student (Gradescope's layout), graded as the file in it that defines the most graded
functions and named after the subfolder.

Always written, into ``--out``: ``<name>/result.json``, ``<name>/results.json`` (Gradescope),
``<name>/junit.xml`` and ``<name>/feedback.md`` for each submission ``<name>.py``, and
``summary.md`` / ``summary.csv`` for the folder. ``<name>`` is the submission's name made safe
(:func:`refbp.output_paths.output_names`): ``..py`` or ``summary.md.py`` cannot write into
``--out`` itself or over the summary. ``--json``, ``--junit`` and ``--markdown``
take a path like ``refbp check``'s: without ``{name}`` in it, one combined file for the
whole folder (see :data:`grading.outputs.FOLDER_RENDERERS`); with ``{name}``, one file per
submission, ``{name}`` replaced by the submission's name (its file name without the suffix,
or its folder's). A Gradescope ``results.json`` describes one submission, so ``--gradescope`` needs ``{name}``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from grading.check_command import (
    add_sandbox_arguments,
    assignment_from,
    limits_from,
    summary_text,
    written,
)
from refbp.cli import EXIT_FOUND, EXIT_OK, output_path, positive_int
from refbp.errors import InputError
from refbp.interrupts import EXIT_INTERRUPTED
from refbp.output_paths import distinct_outputs, output_file, output_folder, output_names

if TYPE_CHECKING:
    from grading.grader import SubmissionResult

HELP = "grade a folder of homework submissions in parallel sandboxes and write a summary table"
#: The field a per-submission output path names, filled with each submission's name.
NAME = "{name}"
#: The folder's own files in ``--out``; no submission's output folder may take these names.
SUMMARY_FILES = ("summary.md", "summary.csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder", type=Path, help="folder holding one .py or .ipynb file, or one subfolder, per submission"
    )
    add_sandbox_arguments(parser)
    parser.add_argument("--out", type=output_path, default=Path("grades"), help="output folder (default grades/)")
    parser.add_argument("--jobs", type=positive_int, default=2, help="submissions graded at once (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no line per submission")
    per = f"; with {NAME} in PATH, one file per submission ({NAME} = its file name without .py)"
    parser.add_argument("--json", metavar="PATH", help="write every result in one JSON file" + per)
    parser.add_argument(
        "--gradescope", metavar="PATH", help=f"write each submission's Gradescope results.json (PATH needs {NAME})"
    )
    parser.add_argument("--junit", metavar="PATH", help="write JUnit XML, one testsuite per submission" + per)
    parser.add_argument("--markdown", metavar="PATH", help="write the summary and every feedback in Markdown" + per)


def per_submission(template: str, stem: str) -> Path:
    """The output path of submission ``stem`` for a ``{name}`` template."""
    return Path(template.replace(NAME, stem))


def output_templates(
    args: argparse.Namespace, names: list[str], inputs: list[Path]
) -> tuple[dict[str, str], dict[str, Path]]:
    """``(per-submission templates, combined paths)`` of the requested formats, each checked writable.

    A template is checked for every submission (a folder in it may differ per name).
    """
    from grading.outputs import FORMATS

    templates, combined = {}, {}
    for kind in FORMATS:
        text = getattr(args, kind)
        if text is None:
            continue
        if NAME in text:
            for name in names:
                output_file(per_submission(text, name), f"--{kind}", inputs=inputs)
            templates[kind] = text
        elif kind == "gradescope":
            raise InputError(
                "--gradescope",
                f"a path with {NAME} in it (one results.json per submission)",
                text,
                source="command line",
            )
        else:
            combined[kind] = output_file(Path(text), f"--{kind}", inputs=inputs)
    return templates, combined


def planned_outputs(out: Path, names: dict[str, str], templates: dict[str, str], combined: dict[str, Path]) -> None:
    """Refuse two outputs on one path, or a file where a submission's output folder goes."""
    from grading.outputs import FOLDER_FILES

    files = [("--out", out / name) for name in SUMMARY_FILES] + [(f"--{k}", p) for k, p in combined.items()]
    for name in names.values():
        files += [("--out", out / name / file) for file in FOLDER_FILES.values()]
        files += [(f"--{kind}", per_submission(template, name)) for kind, template in templates.items()]
    distinct_outputs(files)
    folders = {os.path.normpath(os.path.abspath(out / name)) for name in names.values()}
    for option, path in files:
        if os.path.normpath(os.path.abspath(path)) in folders:
            raise InputError(
                option, "a path that is not a submission's output folder", str(path), source="command line"
            )


def run(args: argparse.Namespace) -> int:
    from grading.assignment import support_files
    from grading.grader import grade_folder, submissions_in
    from grading.outputs import FOLDER_FILES, write_folder_outputs, write_outputs, write_summary

    if not args.folder.is_dir():
        raise InputError("folder", "an existing folder of submissions", str(args.folder), source="command line")
    assignment = assignment_from(args)
    support = support_files(args.support)
    paths = submissions_in(args.folder, assignment)
    if not paths:
        raise InputError(
            "folder", "at least one .py or .ipynb submission, or a subfolder with one", "none", source="command line"
        )
    inputs = [*(p.path for p in paths), *support]
    output_folder(args.out, "--out", files=SUMMARY_FILES, inputs=inputs)
    reserved = [*SUMMARY_FILES, *(Path(getattr(args, kind) or "").name for kind in ("json", "junit", "markdown"))]
    labels = [p.label for p in paths]
    names = dict(zip(labels, output_names(labels, reserved=reserved), strict=True))
    templates, combined = output_templates(args, list(names.values()), inputs)
    planned_outputs(args.out, names, templates, combined)
    for name in names.values():
        output_folder(args.out / name, "--out", files=FOLDER_FILES.values(), inputs=inputs)

    def report(result: SubmissionResult) -> None:
        name = names[result.stem]
        targets = {kind: args.out / name / file for kind, file in FOLDER_FILES.items()}
        extra = {kind: per_submission(template, name) for kind, template in templates.items()}
        written(lambda: write_outputs(result, targets), "outputs")
        written(lambda: write_outputs(result, extra), "outputs")
        if not args.quiet:
            sys.stdout.write(summary_text(result).splitlines()[0] + "\n")
            sys.stdout.flush()
        done.append(result)

    limits = limits_from(args, assignment.allow_imports)
    done: list[SubmissionResult] = []
    summary: dict[str, Path] = {}
    try:
        results = grade_folder(
            paths, assignment, args.seed, limits, jobs=args.jobs, on_result=report, support=support, load=args.load
        )
    except KeyboardInterrupt:
        if not done:
            raise
        order = {label: number for number, label in enumerate(labels)}
        graded = sorted(done, key=lambda result: order[result.stem])
        written(lambda: summary.update(write_summary(graded, args.out, total=len(paths))), "outputs")
        written(lambda: write_folder_outputs(graded, combined), "outputs")
        sys.stderr.write(
            f"refbp: interrupted after {len(graded)} of {len(paths)} submissions; "
            f"summary of those: {summary['md']}, {summary['csv']}\n"
        )
        return EXIT_INTERRUPTED
    written(lambda: summary.update(write_summary(results, args.out)), "outputs")
    written(lambda: write_folder_outputs(results, combined), "outputs")
    passed = sum(1 for r in results if r.passed)
    print(f"{passed}/{len(results)} submissions pass every check; summary: {summary['md']}, {summary['csv']}")
    return EXIT_OK if passed == len(results) else EXIT_FOUND
