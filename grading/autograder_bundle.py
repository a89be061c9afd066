"""A Gradescope autograder for an assignment, as a zip: ``setup.sh``, ``run_autograder``, the assignment, refbp.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once to build the
image, then for each submission copies the student's files into ``/autograder/submission``
and runs ``/autograder/run_autograder``, which must write ``/autograder/results/results.json``.
Here ``run_autograder`` calls :mod:`grading.autograder_run`. The zip holds:

* ``setup.sh`` — installs NumPy, torch 2.13.0 (the version the README pins) and the bundled refbp;
* ``run_autograder`` — grades the submission; ``REFBP_AUTOGRADER_ROOT`` (a folder that holds
  ``autograder/``) and ``REFBP_PYTHON`` let it run outside Gradescope, for a trial;
* ``assignment.toml`` and ``support/`` — the assignment, its support files beside it;
* ``refbp/`` — this refbp's source, installable with pip.

The zip's entries carry a fixed timestamp: the same inputs give the same bytes.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
import zipfile
from pathlib import Path

import tomli_w

from grading.assignment import Assignment

PACKAGES = ("refbp", "oracle", "worked", "grading")
TORCH_PIN = "torch==2.13.0"
_STAMP = (2024, 1, 1, 0, 0, 0)
_DATA_SUFFIXES = (".py", ".toml", ".typed")

SETUP_SH = f"""#!/usr/bin/env bash
# Gradescope runs this once, in /autograder/source, when it builds the autograder image.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install --no-cache-dir "numpy>=1.26" "{TORCH_PIN}"
python3 -m pip install --no-cache-dir ./refbp
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade /autograder/submission/* into /autograder/results/results.json.
# REFBP_AUTOGRADER_ROOT: a folder holding autograder/ (default: the file system root); REFBP_PYTHON: the interpreter.
set -uo pipefail
ROOT="${REFBP_AUTOGRADER_ROOT:-}/autograder"
exec "${REFBP_PYTHON:-python3}" -m grading.autograder_run "$ROOT" --seed SEED
"""


def _assignment_toml(assignment: Assignment, support: list[Path]) -> str:
    """The assignment as TOML, its ``support`` list pointing into the bundle's ``support/`` folder."""
    data: dict = {"name": assignment.name, "style": assignment.style}
    if assignment.description:
        data["description"] = assignment.description
    if support:
        data["support"] = [f"support/{p.name}" for p in support]
    if assignment.allow_imports:
        data["allow_imports"] = list(assignment.allow_imports)
    if assignment.load:
        data["load"] = assignment.load
    data["advisory"] = dict(assignment.advisory)
    tolerance = {k: v for k, v in (("rtol", assignment.rtol), ("atol", assignment.atol)) if v is not None}
    if tolerance:
        data["tolerance"] = tolerance
    if assignment.style == "deep":
        data["conventions"] = {"grads_keys": assignment.grads_keys}
    if assignment.style == "cnn":
        data["conventions"] = {"dropout_p": assignment.dropout_p}
    if assignment.size1_scalars != "numpy":
        data.setdefault("conventions", {})["size1_scalars"] = assignment.size1_scalars
    functions = {}
    for graded in assignment.functions:
        entry: dict = {}
        if graded.role != graded.name:
            entry["role"] = graded.role
        if graded.points is not None:
            entry["points"] = graded.points
        if graded.scenarios != 1:
            entry["scenarios"] = graded.scenarios
        if graded.optional:
            entry["optional"] = True
        functions[graded.name] = entry
    data["functions"] = functions
    return tomli_w.dumps(data)


def _dependencies() -> tuple[str, list[str]]:
    """``(version, runtime dependencies)``: from the source tree's ``pyproject.toml``, else the installed metadata."""
    checkout = Path(importlib.import_module("grading").__file__).parents[1] / "pyproject.toml"
    if checkout.is_file():
        project = tomllib.loads(checkout.read_text(encoding="utf-8")).get("project", {})
        return str(project.get("version", "0")), list(project.get("dependencies", []))
    version = importlib.metadata.version("refbp")
    return version, [r for r in importlib.metadata.requires("refbp") or [] if "extra ==" not in r]


def _pyproject() -> str:
    """A ``pyproject.toml`` for the bundled source: this refbp's version and runtime dependencies."""
    version, dependencies = _dependencies()
    data = {
        "build-system": {"requires": ["setuptools>=68"], "build-backend": "setuptools.build_meta"},
        "project": {
            "name": "refbp",
            "version": version,
            "requires-python": ">=3.11",
            "dependencies": dependencies,
            "scripts": {"refbp": "refbp.cli:main"},
        },
        "tool": {
            "setuptools": {
                "packages": {"find": {"include": [f"{p}*" for p in PACKAGES]}},
                "package-data": {
                    "refbp": ["py.typed"],
                    "worked": ["examples/*.toml"],
                    "grading": ["assignments/*.toml"],
                },
            }
        },
    }
    return tomli_w.dumps(data)


def _source_files() -> list[tuple[str, Path]]:
    """``(name in the zip, file)`` for every source and data file of refbp's packages."""
    files = []
    for package in PACKAGES:
        folder = Path(importlib.import_module(package).__file__).parent
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in _DATA_SUFFIXES and "__pycache__" not in path.parts:
                files.append((f"refbp/{package}/{path.relative_to(folder).as_posix()}", path))
    return files


def _entry(name: str, executable: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_STAMP)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    return info


def write_bundle(assignment: Assignment, support: list[Path], out: Path, seed: int = 0) -> list[str]:
    """Write the autograder zip for ``assignment`` (plus ``support`` files) to ``out``; the names it holds."""
    helpers = list(dict.fromkeys([*assignment.support, *support]))
    texts: list[tuple[str, bytes, bool]] = [
        ("setup.sh", SETUP_SH.encode(), True),
        ("run_autograder", RUN_AUTOGRADER.replace("SEED", str(seed)).encode(), True),
        ("assignment.toml", _assignment_toml(assignment, helpers).encode(), False),
        ("refbp/pyproject.toml", _pyproject().encode(), False),
    ]
    texts += [(f"support/{p.name}", p.read_bytes(), False) for p in helpers]
    texts += [(name, path.read_bytes(), False) for name, path in _source_files()]
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w") as bundle:
        for name, data, executable in texts:
            bundle.writestr(_entry(name, executable), data)
    partial.replace(out)
    return [name for name, _, _ in texts]
