"""A submission (``.py`` or ``.ipynb``) turned into the plain Python source the sandboxed child loads.

Done here, on the grader's side, before the sandbox starts; the child only ever sees ``.py``.

* A notebook is read with ``nbformat``; its code cells are used in order. A cell magic
  (``%%…`` on the first line) drops its cell; a line magic or shell escape (``%…``, ``!…``)
  becomes ``pass``; ``from __future__`` lines are dropped (they are only legal at the top
  of a file, and Python 3 needs none). A cell that is not valid Python is skipped.
* ``load="defs"`` keeps only top-level ``import``, ``def``, ``class``, assignments of literal
  constants and ``try`` blocks of imports, so that training loops, plots and data loading do
  not run; ``load="all"`` keeps everything.
* An import of a module that is not installed (and is not a support file) is dropped: a
  function that needs it then fails in its own check with a ``NameError``.

Every change is a note for the feedback. Dropped lines are blanked, not removed, so a
``.py`` keeps its line numbers; a notebook's lines map back to ``cell N, line L``.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import re
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from refbp.errors import InputError

LOADS = ("defs", "all")
# CPython 3.11's ast.parse keeps its recursion depth in interpreter-wide state: two threads
# parsing at once (``refbp grade --jobs``) can fail with "AST constructor recursion depth
# mismatch". One parse at a time.
_PARSE_LOCK = threading.Lock()


def parse_python(text: str) -> ast.Module:
    """``ast.parse(text)``, one thread at a time (raises :class:`SyntaxError` as ``ast.parse`` does)."""
    with _PARSE_LOCK:
        return ast.parse(text)


_WHERE = re.compile(r"^line (\d+)(.*)$", re.S)


@dataclass
class PreparedSource:
    """The source to load (``text``, to be saved as ``name``), the notes, and a notebook's line origins.

    ``origins[i]`` is ``(cell, line in cell)`` of line ``i + 1`` of ``text`` (``None`` for a ``.py``).
    """

    text: str
    name: str
    notes: list[str] = field(default_factory=list)
    origins: list[tuple[int, int]] | None = None

    def where(self, where: str) -> str:
        """``"line 12: dx = …"`` in the loaded source → ``"cell 4, line 3: dx = …"`` for a notebook."""
        match = _WHERE.match(where or "")
        if self.origins is None or not match or not 0 < int(match.group(1)) <= len(self.origins):
            return where
        cell, line = self.origins[int(match.group(1)) - 1]
        return f"cell {cell}, line {line}{match.group(2)}"

    def defines(self) -> set[str]:
        """Names of the top-level functions (empty when the source does not parse)."""
        try:
            tree = parse_python(self.text)
        except SyntaxError:
            return set()
        return {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def module_available(name: str, local: Iterable[str] = ()) -> bool:
    """Whether ``import name`` can find its top-level package: a ``local`` module, the standard library, installed."""
    top = name.split(".")[0]
    if top in set(local) or top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    with contextlib.suppress(ImportError, ValueError):
        return importlib.util.find_spec(top) is not None
    return False


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def is_definition(node: ast.stmt) -> bool:
    """A top-level statement that ``load="defs"`` keeps (see the module docstring)."""
    if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Pass):
        return True
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) for t in node.targets) and _is_literal(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.value is not None and _is_literal(node.value)
    if isinstance(node, ast.Try):
        return all(isinstance(n, ast.Import | ast.ImportFrom | ast.Pass) for n in node.body)
    return False


def _places(places: Iterable[str]) -> str:
    """``["line 7", "line 8", "cell 2"]`` → ``"lines 7, 8, cell 2"`` (first appearance order, no repeats)."""
    groups: dict[str, list[str]] = {}
    for place in dict.fromkeys(places):
        kind, _, number = place.partition(" ")
        groups.setdefault(kind, []).append(number)
    return ", ".join(
        f"{kind}{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}" for kind, numbers in groups.items()
    )


class _Notes:
    """Notes gathered per kind, with the cells (or lines) they concern, rendered once each."""

    def __init__(self) -> None:
        self.magics: list[tuple[str, str]] = []
        self.skipped: list[str] = []
        self.missing: dict[str, list[str]] = {}
        self.invalid: list[str] = []

    def render(self, load: str) -> list[str]:
        notes = []
        if self.magics:
            places = _places(p for p, _ in self.magics)
            shown = ", ".join(dict.fromkeys(text for _, text in self.magics[:3]))
            more = ", …" if len(self.magics) > 3 else ""
            notes.append(f"IPython magics and shell escapes are not run: dropped {shown}{more} ({places}).")
        notes += self.invalid
        for module, places in self.missing.items():
            notes.append(
                f"module {module} is not installed here: its import is skipped ({_places(places)}); "
                f"a function that uses it fails with a NameError (supply it with --support if it is a course file)."
            )
        if self.skipped and load == "defs":
            places = _places(self.skipped)
            count = len(self.skipped)
            notes.append(
                f"only definitions were loaded (--load defs): {count} other top-level statement"
                f"{'s' if count != 1 else ''} ({places}) did not run; --load all runs them."
            )
        return notes


def _filter(
    lines: list[str], tree: ast.Module, load: str, available: Callable[[str], bool], place: str, notes: _Notes
) -> None:
    """Blank the statements of ``tree`` that are not loaded, in ``lines`` (the source's lines, changed in place)."""
    for node in tree.body:
        where = f"line {node.lineno}" if place == "line" else place
        blank = False
        if load == "defs" and not is_definition(node):
            notes.skipped.append(where)
            blank = True
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__" and place.startswith("cell"):
                blank = True
            else:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level:
                    names = []
                missing = [n for n in names if not available(n)]
                for name in missing:
                    notes.missing.setdefault(name.split(".")[0], []).append(where)
                if missing:
                    kept = [a for a in getattr(node, "names", []) if isinstance(node, ast.Import) and available(a.name)]
                    if kept and node.lineno == node.end_lineno:
                        indent = lines[node.lineno - 1][: node.col_offset]
                        lines[node.lineno - 1] = indent + ast.unparse(ast.Import(names=kept))
                    else:
                        blank = True
        if blank:
            for index in range(node.lineno - 1, (node.end_lineno or node.lineno)):
                lines[index] = ""


def _drop_magics(lines: list[str], place: str, notes: _Notes) -> None:
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            notes.magics.append((place, stripped.split()[0] if stripped.split() else stripped))
            lines[index] = line[: len(line) - len(stripped)] + "pass"


def _parse(text: str, place: str, notes: _Notes) -> ast.Module | None:
    try:
        return parse_python(text)
    except SyntaxError as err:
        detail = f"{err.msg}, line {err.lineno}" if err.lineno else err.msg
        notes.invalid.append(f"{place} is not valid Python ({detail}) and was skipped.")
        return None


def _available_with(support: Iterable[str]) -> Callable[[str], bool]:
    local = {Path(name).stem for name in support} | {name for name in support if "." not in name}
    return lambda name: module_available(name, local)


def prepare(path: Path, load: str | None = None, support: Iterable[str] = ()) -> PreparedSource:
    """The loaded source of the submission at ``path``; ``load`` defaults to ``defs`` for notebooks, ``all`` for .py.

    ``support`` holds the file names put beside the submission (they count as installed
    modules). A notebook that ``nbformat`` cannot read is an :class:`InputError`.
    """
    available = _available_with(support)
    notes = _Notes()
    if path.suffix == ".ipynb":
        load = load or "defs"
        return _prepare_notebook(path, load, available, notes)
    load = load or "all"
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    try:
        tree = parse_python(text)
    except SyntaxError:
        return PreparedSource(text, path.name)  # the child reports the SyntaxError with its line
    _filter(lines, tree, load, available, "line", notes)
    return PreparedSource("\n".join(lines), path.name, notes.render(load))


def _prepare_notebook(path: Path, load: str, available: Callable[[str], bool], notes: _Notes) -> PreparedSource:
    import nbformat

    try:
        notebook = nbformat.read(str(path), as_version=4)
    except Exception as err:  # nbformat raises JSON, validation and version errors of several types
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError("", "a Jupyter notebook that nbformat can read", message[:200], source=path.name) from None
    out: list[str] = []
    origins: list[tuple[int, int]] = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        place = f"cell {number}"
        source = cell.get("source", "")
        if source.lstrip().startswith("%%"):
            notes.magics.append((place, source.lstrip().split()[0]))
            continue
        lines = source.split("\n")
        _drop_magics(lines, place, notes)
        tree = _parse("\n".join(lines), place, notes)
        if tree is None:
            continue
        _filter(lines, tree, load, available, place, notes)
        out += lines
        origins += [(number, line) for line in range(1, len(lines) + 1)]
    return PreparedSource("\n".join(out) + "\n", path.stem + ".py", notes.render(load), origins)
