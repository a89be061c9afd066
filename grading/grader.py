"""Grade one submission (sandboxed run, then comparison) or a folder of them in parallel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grading.checks import CheckRow, evaluate
from grading.interfaces import INTERFACES, build_plan
from grading.sandbox import SandboxLimits, run_submission


@dataclass
class SubmissionResult:
    """Every row of one submission, and the student's captured output (kept apart from the graded rows)."""

    submission: str
    interface: str
    seed: int
    rows: list[CheckRow]
    output: str = ""
    functions: tuple[str, ...] = field(default_factory=tuple)

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
        """The JSON result: verdict, score, one entry per check row (no timings: regrades are identical)."""
        return {
            "submission": self.submission,
            "interface": self.interface,
            "seed": self.seed,
            "passed": self.passed,
            "score": self.score,
            "max_score": self.max_score,
            "checks": [row.as_dict() for row in self.rows],
        }


def grade_submission(
    path: Path, interface: str, seed: int = 0, limits: SandboxLimits | None = None
) -> SubmissionResult:
    """Run the submission at ``path`` in the sandbox (default limits unless given) and compare against the oracle."""
    plan = build_plan(interface, seed)
    functions = INTERFACES[interface].functions
    run = run_submission(path, functions, [check.child_check() for check in plan], limits or SandboxLimits())
    rows = [row for check in plan for row in evaluate(check, run)]
    return SubmissionResult(path.name, interface, seed, rows, run.output, functions)


def submissions_in(folder: Path) -> list[Path]:
    """The ``*.py`` files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".py")


def grade_folder(
    paths: Sequence[Path],
    interface: str,
    seed: int = 0,
    limits: SandboxLimits | None = None,
    jobs: int = 2,
    on_result: Callable[[SubmissionResult], None] | None = None,
) -> list[SubmissionResult]:
    """Grade ``paths`` with up to ``jobs`` sandboxes at a time; results in the order of ``paths``.

    The checks are built once. Threads suffice: each sandbox is a separate process, and
    the grader only waits on pipes and compares small arrays. ``on_result`` is called as
    each submission finishes (in completion order).
    """
    build_plan(interface, seed)

    def one(path: Path) -> SubmissionResult:
        result = grade_submission(path, interface, seed, limits)
        if on_result is not None:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        try:
            return list(pool.map(one, paths))
        except KeyboardInterrupt:
            # Ctrl-C: start nothing more; the sandboxes already running finish (within their limits).
            pool.shutdown(wait=False, cancel_futures=True)
            raise
