"""What ``run_autograder`` runs inside Gradescope: grade the submission, write ``results/results.json``.

``python -m grading.autograder_run ROOT [--seed S]``, ``ROOT`` being Gradescope's
``/autograder`` (or a folder laid out like it): the assignment is ``ROOT/source/assignment.toml``,
the student's files are under ``ROOT/submission``, the result goes to
``ROOT/results/results.json``. The graded file is the ``.py`` or ``.ipynb`` that defines the
most graded functions; a submission without one gets a score of 0 and a message saying so.
Gradescope shows the result whatever happens, so every failure ends in a ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grading.assignment import load
from grading.grader import grade_submission, pick_submission
from grading.outputs import render_gradescope
from refbp.errors import InputError


def _no_result(message: str) -> str:
    return json.dumps({"score": 0.0, "output": message, "visibility": "visible", "tests": []}, indent=2) + "\n"


def run(root: Path, seed: int = 0) -> Path:
    """Grade ``root/submission`` against ``root/source/assignment.toml``; the path of the results written."""
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    try:
        assignment = load(root / "source" / "assignment.toml")
        chosen = pick_submission(root / "submission", assignment, [p.name for p in assignment.support])
        if chosen is None:
            text = _no_result("No .py or .ipynb file was found in the submission: upload your code file.")
        else:
            result = grade_submission(chosen, assignment, seed)
            text = render_gradescope(result)
    except (InputError, OSError) as err:
        text = _no_result(f"The autograder could not grade this submission: {err}")
    results.write_text(text, encoding="utf-8")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.autograder_run", description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="Gradescope's /autograder folder (or one laid out like it)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = run(args.root, args.seed)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
