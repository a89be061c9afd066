"""Assignments as data: which functions of a style are graded, for how many points, and how strictly.

An assignment is a TOML file::

    name = "my-course-hw3"            # how reports and `refbp assignments` call it
    description = "one line"
    style = "layers"                  # layers | deep | rnn | dlai-rnn | nhwc | cnn | spec: the calling conventions
    support = ["helpers.py"]          # course helper files, relative to this file, put beside the submission
    allow_imports = []                # blocked packages (torch, refbp, …) the submission may import anyway
    load = "defs"                     # defs | all: what of the file runs (default: defs for notebooks, all for .py)

    [advisory]                        # fail | warn | off for the checks that are not about the math
    inplace = "warn"                  # an input array modified in place
    large_inputs = "warn"             # wrong (overflow, NaN) only for inputs of magnitude ~1000

    [tolerance]                       # optional: accept entries within atol·scale + rtol·|expected|
    rtol = 1e-6
    atol = 1e-9

    [conventions]
    grads_keys = "either"             # deep style only: "dA{l}", "dA{l+1}" or "either" (named in the feedback)
    dropout_p = "keep"                # cnn style only: dropout_param["p"] keeps ("keep") or drops ("drop") a unit
    size1_scalars = "numpy"           # any style; "legacy": float(b) / int(b) of an input array of one entry and
                                      # any shape work, as in NumPy before 1.25 (a course's float(b), b (1, 1, 1))

    [functions.dense_backward]        # the course's name for the function ...
    role = "affine_backward"          # ... and the style's function it plays (default: the same name)
    points = 4                        # shared by the function's check rows (default: one point per row)
    scenarios = 2                     # random scenarios, each with its own inputs (default 1)
    optional = true                   # may be left out (default false): its rows are then "skipped", 0 of 0
                                      # points; so are they when every call raised or returned no numbers

Functions the file does not list are not graded, whatever else a submission defines. The
built-in assignments ship in ``grading/assignments/``; ``--interface layers|deep|spec`` is
an alias of the built-in ``layers-all``, ``deep-all``, ``spec-all`` (``rnn`` of ``cs231n-a3-rnn``,
``cnn`` of ``cs231n-a2``).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from grading.interfaces import INTERFACES
from refbp.errors import InputError

SEVERITIES = ("fail", "warn", "off")
#: The advisory checks and their default severity.
ADVISORIES = {"inplace": "warn", "large_inputs": "warn"}
GRADS_KEYS = ("dA{l}", "dA{l+1}", "either")
DROPOUT_P = ("keep", "drop")
#: How float()/int() treat an array of one entry with dimensions: as the NumPy installed, or as NumPy < 1.25.
SIZE1_SCALARS = ("numpy", "legacy")
#: ``--interface`` names and the built-in assignment each stands for.
ALIASES = {
    "layers": "layers-all",
    "deep": "deep-all",
    "spec": "spec-all",
    "rnn": "cs231n-a3-rnn",
    "nhwc": "dlai-c4w1",
    "dlai-rnn": "dlai-c5w1",
    "cnn": "cs231n-a2",
}
_TOP_KEYS = {
    "name", "description", "style", "support", "allow_imports", "load", "advisory", "tolerance", "conventions",
    "functions",
}  # fmt: skip
_FUNCTION_KEYS = {"role", "points", "scenarios", "optional"}
MAX_SCENARIOS = 20


@dataclass(frozen=True)
class GradedFunction:
    """One graded function: the course's ``name``, the style function it plays (``role``), its points and scenarios.

    ``points`` ``None`` means one point per check row; an ``optional`` function may be missing
    from a submission without failing it.
    """

    name: str
    role: str
    points: float | None = None
    scenarios: int = 1
    optional: bool = False


@dataclass(frozen=True, eq=False)
class Assignment:
    """A parsed assignment file (see the module docstring); ``source`` is where it came from.

    Compared and hashed by identity: the checks built for it are cached per object.
    """

    name: str
    style: str
    functions: tuple[GradedFunction, ...]
    description: str = ""
    advisory: dict[str, str] = field(default_factory=lambda: dict(ADVISORIES))
    rtol: float | None = None
    atol: float | None = None
    grads_keys: str = "dA{l}"
    dropout_p: str = "keep"
    size1_scalars: str = "numpy"
    support: tuple[Path, ...] = ()
    allow_imports: tuple[str, ...] = ()
    load: str | None = None
    source: str = ""

    @property
    def renamed(self) -> dict[str, str]:
        """Style function → the course's name, for every function whose name differs."""
        return {f.role: f.name for f in self.functions if f.role != f.name}

    def severity(self, advisory: str) -> str:
        return self.advisory.get(advisory, ADVISORIES.get(advisory, "fail"))


def builtin_names() -> list[str]:
    """The built-in assignments, by name, sorted."""
    folder = resources.files("grading") / "assignments"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def resolve(name_or_file: str | Path) -> Assignment:
    """A built-in assignment by name, an ``--interface`` alias, or an assignment file by path."""
    text = str(name_or_file)
    name = ALIASES.get(text, text)
    if name in builtin_names():
        resource = resources.files("grading") / "assignments" / f"{name}.toml"
        with resources.as_file(resource) as path:
            return dataclasses.replace(load(path), source=f"built-in {name}")
    path = Path(text)
    if not path.is_file():
        raise InputError(
            "--assignment",
            "a built-in assignment (" + ", ".join(builtin_names()) + ") or an existing .toml file",
            text,
            source="command line",
        )
    return load(path)


def load(path: Path) -> Assignment:
    """Parse and check one assignment file; every problem is one :class:`InputError` naming the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError("", "a readable UTF-8 TOML file", str(err), source=str(path)) from None
    except tomllib.TOMLDecodeError as err:
        raise InputError("", "valid TOML", str(err), source=str(path)) from None
    try:
        return parse(data, path.parent, str(path))
    except InputError as err:
        raise err.with_source(str(path)) from None


def _table(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InputError(key, "a table", value)
    return value


def _strings(data: dict, key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InputError(key, "a list of non-empty strings", value)
    return value


def _unknown(keys: set[str], known: set[str], where: str) -> None:
    extra = sorted(keys - known)
    if extra:
        raise InputError(f"{where}{extra[0]}", "one of " + ", ".join(sorted(known)), "an unknown key")


def parse(data: dict[str, Any], folder: Path, source: str = "assignment") -> Assignment:
    """An :class:`Assignment` from parsed TOML; ``support`` paths are relative to ``folder``."""
    _unknown(set(data), _TOP_KEYS, "")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InputError("name", "a non-empty string", name)
    style = data.get("style")
    if style not in INTERFACES:
        raise InputError("style", "one of " + ", ".join(INTERFACES), style)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise InputError("description", "a string", description)
    roles = INTERFACES[style].functions
    functions = []
    for fname, entry in _table(data, "functions").items():
        functions.append(_function(fname, entry, roles, style))
    if not functions:
        raise InputError("functions", "at least one [functions.NAME] table", "none")
    seen_roles = [f.role for f in functions]
    for role in seen_roles:
        if seen_roles.count(role) > 1:
            raise InputError("functions", f"each style function played once; {role!r} is played twice", role)
    advisory = dict(ADVISORIES)
    table = _table(data, "advisory")
    _unknown(set(table), set(ADVISORIES), "advisory.")
    for key, value in table.items():
        if value not in SEVERITIES:
            raise InputError(f"advisory.{key}", "one of " + ", ".join(SEVERITIES), value)
        advisory[key] = value
    tolerance = _table(data, "tolerance")
    _unknown(set(tolerance), {"rtol", "atol"}, "tolerance.")
    for key, value in tolerance.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value < 1):
            raise InputError(f"tolerance.{key}", "a number in [0, 1)", value)
    conventions = _table(data, "conventions")
    _unknown(set(conventions), {"grads_keys", "dropout_p", "size1_scalars"}, "conventions.")
    grads_keys = conventions.get("grads_keys", "dA{l}")
    if grads_keys not in GRADS_KEYS:
        raise InputError("conventions.grads_keys", "one of " + ", ".join(GRADS_KEYS), grads_keys)
    if "grads_keys" in conventions and style != "deep":
        raise InputError("conventions.grads_keys", 'only with style = "deep"', style)
    dropout_p = conventions.get("dropout_p", "keep")
    if dropout_p not in DROPOUT_P:
        raise InputError("conventions.dropout_p", "one of " + ", ".join(DROPOUT_P), dropout_p)
    if "dropout_p" in conventions and style != "cnn":
        raise InputError("conventions.dropout_p", 'only with style = "cnn"', style)
    size1_scalars = conventions.get("size1_scalars", "numpy")
    if size1_scalars not in SIZE1_SCALARS:
        raise InputError("conventions.size1_scalars", "one of " + ", ".join(SIZE1_SCALARS), size1_scalars)
    load = data.get("load")
    if load is not None and load not in ("defs", "all"):
        raise InputError("load", "defs or all", load)
    support = []
    for item in _strings(data, "support"):
        path = (folder / item).resolve()
        if not path.exists():
            raise InputError("support", "existing files or folders, relative to the assignment file", item)
        support.append(path)
    return Assignment(
        name=name.strip(),
        style=style,
        functions=tuple(functions),
        description=description,
        advisory=advisory,
        rtol=tolerance.get("rtol"),
        atol=tolerance.get("atol"),
        grads_keys=grads_keys,
        dropout_p=dropout_p,
        size1_scalars=size1_scalars,
        support=tuple(support),
        allow_imports=tuple(_strings(data, "allow_imports")),
        load=load,
        source=source,
    )


def _function(name: str, entry: Any, roles: tuple[str, ...], style: str) -> GradedFunction:
    where = f"functions.{name}"
    if not name.isidentifier():
        raise InputError(where, "a Python function name", name)
    if not isinstance(entry, dict):
        raise InputError(where, "a table", entry)
    _unknown(set(entry), _FUNCTION_KEYS, where + ".")
    role = entry.get("role", name)
    if role not in roles:
        raise InputError(where + ".role", f"a function of the {style} style (" + ", ".join(roles) + ")", role)
    points = entry.get("points")
    if points is not None and (
        isinstance(points, bool) or not isinstance(points, int | float) or not math.isfinite(points) or points <= 0
    ):
        raise InputError(where + ".points", "a positive number", points)
    scenarios = entry.get("scenarios", 1)
    if isinstance(scenarios, bool) or not isinstance(scenarios, int) or not 1 <= scenarios <= MAX_SCENARIOS:
        raise InputError(where + ".scenarios", f"an integer from 1 to {MAX_SCENARIOS}", scenarios)
    optional = entry.get("optional", False)
    if not isinstance(optional, bool):
        raise InputError(where + ".optional", "true or false", optional)
    return GradedFunction(name, role, None if points is None else float(points), scenarios, optional)


def support_files(paths: list[Path] | tuple[Path, ...]) -> list[Path]:
    """Every file given: a file as is, the files directly in a folder; bad paths are an InputError."""
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError("--support", "an existing file or folder", str(path), source="command line")
    names = [p.name for p in files]
    for name in names:
        if names.count(name) > 1:
            raise InputError("--support", "support files with different names", name, source="command line")
    return files
