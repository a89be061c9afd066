"""Grade one submission (sandboxed run, then comparison) or a folder of them in parallel.

A submission is a ``.py`` file or a ``.ipynb`` notebook (:mod:`grading.submission_source`
turns it into the source the child loads), graded against an assignment
(:mod:`grading.assignment`: a built-in name, an ``--interface`` alias, or a parsed file).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from grading.assignment import Assignment, resolve
from grading.assignment_plan import assignment_plan, called_functions
from grading.checks import CheckRow, evaluate
from grading.conventions import normalise_grads
from grading.isolation import choose_level
from grading.sandbox import CheckOutcome, SandboxLimits, SandboxOutcome, run_submission
from grading.submission_source import PreparedSource, prepare
from refbp.errors import InputError

#: The file kinds ``refbp grade`` takes from a folder.
SUFFIXES = (".py", ".ipynb")


@dataclass
class SubmissionResult:
    """Every row of one submission, the notes on how it was loaded, and its captured output.

    ``interface`` is the assignment's style, ``assignment`` its name; ``label`` names the
    submission in output paths (a student's folder name in a one-folder-per-student layout);
    ``isolation`` is the level the submission ran at (:mod:`grading.isolation`).
    """

    submission: str
    interface: str
    seed: int
    rows: list[CheckRow]
    output: str = ""
    functions: tuple[str, ...] = field(default_factory=tuple)
    assignment: str = ""
    notes: list[str] = field(default_factory=list)
    label: str = ""
    isolation: str = ""

    @property
    def stem(self) -> str:
        """The name of this submission's outputs: its label, else its file name without the suffix."""
        return self.label or Path(self.submission).stem

    @property
    def score(self) -> float:
        return round(sum(r.score for r in self.rows), 6)

    @property
    def max_score(self) -> float:
        return round(sum(r.max_score for r in self.rows), 6)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        """The JSON result: verdict, score, notes, one entry per check row (no timings: regrades are identical)."""
        return {
            "submission": self.submission,
            "assignment": self.assignment or self.interface,
            "interface": self.interface,
            "seed": self.seed,
            "isolation": self.isolation,
            "passed": self.passed,
            "score": self.score,
            "max_score": self.max_score,
            "notes": list(self.notes),
            "checks": [row.as_dict() for row in self.rows],
        }


def _assignment(assignment: str | Assignment) -> Assignment:
    return assignment if isinstance(assignment, Assignment) else resolve(assignment)


def _unreadable(error: InputError) -> SandboxOutcome:
    return SandboxOutcome(
        imported=False,
        import_error={"type": "UnreadableNotebook", "message": str(error), "where": ""},
        defined=frozenset(),
        checks={},
    )


def _where_in_source(run: SandboxOutcome, prepared: PreparedSource) -> None:
    """Error locations in the loaded source → in the submission (a notebook's cell and line)."""
    if run.import_error and run.import_error.get("where"):
        run.import_error["where"] = prepared.where(run.import_error["where"])
    for outcome in run.checks.values():
        if outcome.error and outcome.error.get("where"):
            outcome.error["where"] = prepared.where(outcome.error["where"])


def grade_submission(
    path: Path,
    assignment: str | Assignment,
    seed: int = 0,
    limits: SandboxLimits | None = None,
    *,
    support: Sequence[Path] = (),
    load: str | None = None,
    label: str = "",
) -> SubmissionResult:
    """Grade the submission at ``path`` against ``assignment`` in the sandbox (default limits unless given).

    ``support`` adds helper files to the assignment's own; ``load`` is ``defs`` or ``all``
    (default: the assignment's, else ``defs`` for a notebook and ``all`` for a ``.py``).
    """
    spec = _assignment(assignment)
    limits = limits or SandboxLimits()
    plan = assignment_plan(spec, seed)
    functions = called_functions(plan)
    helpers = [*spec.support, *support]
    notes: list[str] = []
    try:
        prepared = prepare(path, load or spec.load, [p.name for p in helpers])
    except InputError as err:
        prepared, run = None, _unreadable(err)
    if prepared is not None:
        notes += prepared.notes
        with tempfile.TemporaryDirectory(prefix="refbp-source-") as folder:
            source = Path(folder) / prepared.name
            source.write_text(prepared.text, encoding="utf-8")
            checks = [check.child_check() for check in plan]
            run = run_submission(source, functions, checks, limits, support=helpers)
        _where_in_source(run, prepared)
    rows = []
    for check in plan:
        outcome = run.checks.get(check.name)
        if outcome is not None and outcome.state == "done":
            note = normalise_grads(check, outcome.results)
            if note and note not in notes:
                notes.append(note)
        rows += evaluate(check, run)
    names = tuple(f.name for f in spec.functions)
    isolation = run.isolation or limits.isolation
    return SubmissionResult(path.name, spec.style, seed, rows, run.output, names, spec.name, notes, label, isolation)


def failed_grading(
    path: Path, assignment: str | Assignment, seed: int, error: Exception, isolation: str, label: str = ""
) -> SubmissionResult:
    """The result of a submission whose grading raised ``error`` in the grader: every check ``error``, with why."""
    spec = _assignment(assignment)
    plan = assignment_plan(spec, seed)
    message = f"the grader could not grade this submission ({type(error).__name__}: {error})"[:300]
    checks = {c.child_check().id: CheckOutcome(c.child_check().id, "error", message=message) for c in plan}
    run = SandboxOutcome(True, None, frozenset(called_functions(plan)), checks, isolation=isolation)
    rows = [row for check in plan for row in evaluate(check, run)]
    names = tuple(f.name for f in spec.functions)
    return SubmissionResult(path.name, spec.style, seed, rows, "", names, spec.name, [], label, isolation)


def _candidates(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SUFFIXES and not _hidden(p, folder))


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith((".", "__")) for part in path.relative_to(root).parts)


def pick_submission(folder: Path, assignment: Assignment, exclude: Sequence[str] = ()) -> Path | None:
    """The file in ``folder`` (searched recursively) that defines the most graded functions; ties: the first by name.

    Files named like a support file are not candidates.
    """
    names = {f.name for f in assignment.functions}
    best, best_count = None, -1
    for path in _candidates(folder):
        if path.name in exclude:
            continue
        try:
            count = len(prepare(path, "all").defines() & names)
        except (InputError, OSError):
            count = 0
        if count > best_count:
            best, best_count = path, count
    return best


@dataclass(frozen=True)
class Submission:
    """One submission of a folder: the file graded and the name its outputs get."""

    path: Path
    label: str


def submissions_in(folder: Path, assignment: str | Assignment | None = None) -> list[Submission]:
    """The submissions of ``folder``: each ``.py``/``.ipynb`` directly in it, and each student's subfolder.

    A subfolder (Gradescope-style, one per student) counts as one submission named after
    it: its file that defines the most graded functions (:func:`pick_submission`). Names that
    would clash (``hw.py`` beside ``hw.ipynb``, a file beside a folder of its name) are kept apart.
    """
    spec = _assignment(assignment or "layers")
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in SUFFIXES]
    stems = [p.stem for p in files]
    # hw.py beside hw.ipynb: each keeps its suffix in its name, so that their outputs stay apart
    found = [Submission(p, p.stem if stems.count(p.stem) == 1 else p.name.replace(".", "_")) for p in files]
    taken = {s.label for s in found}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))):
        chosen = pick_submission(sub, spec, [p.name for p in spec.support])
        if chosen is not None:
            found.append(Submission(chosen, sub.name if sub.name not in taken else f"{sub.name}_folder"))
    return found


def grade_folder(
    paths: Sequence[Path | Submission],
    assignment: str | Assignment,
    seed: int = 0,
    limits: SandboxLimits | None = None,
    jobs: int = 2,
    on_result: Callable[[SubmissionResult], None] | None = None,
    *,
    support: Sequence[Path] = (),
    load: str | None = None,
) -> list[SubmissionResult]:
    """Grade ``paths`` with up to ``jobs`` sandboxes at a time; results in the order of ``paths``.

    The checks are built once. Threads suffice: each sandbox is a separate process, and
    the grader only waits on pipes and compares small arrays. ``on_result`` is called as
    each submission finishes (in completion order). An exception while grading one
    submission (other than bad input) fails that submission's checks only.
    """
    spec = _assignment(assignment)
    assignment_plan(spec, seed)
    limits = limits or SandboxLimits()
    limits = replace(limits, isolation=choose_level(limits.isolation))
    items = [p if isinstance(p, Submission) else Submission(Path(p), "") for p in paths]

    def one(item: Submission) -> SubmissionResult:
        try:
            result = grade_submission(item.path, spec, seed, limits, support=support, load=load, label=item.label)
        except InputError:
            raise
        except Exception as err:  # contained: the other submissions are still graded
            result = failed_grading(item.path, spec, seed, err, limits.isolation, item.label)
        if item.label and item.label != Path(item.path).stem:
            result = dataclasses.replace(result, submission=f"{item.label}/{item.path.name}")
        if on_result is not None:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        try:
            return list(pool.map(one, items))
        except KeyboardInterrupt:
            # Ctrl-C: start nothing more; the sandboxes already running finish (within their limits).
            pool.shutdown(wait=False, cancel_futures=True)
            raise
