"""Expressions over named arrays, read safely and differentiated by a small reverse-mode evaluator.

An expression is the text of one node of a worked example (``"q * z"``, ``"sigmoid(W @ x + b)"``,
``"0.05 * dE/dW2[0,0]"`` after its derivative names are replaced). It is parsed with
Python's :mod:`ast` against a whitelist, never evaluated as Python:

* numbers (``2``, ``-0.5``, ``1e-3``), names of earlier values;
* ``+ - * / @ **`` (NumPy broadcasting; ``@`` on vectors and matrices), unary ``-`` and ``+``;
* ``exp log sqrt abs tanh sigmoid relu`` (elementwise), ``sum mean`` (of every entry),
  ``softmax`` (over the last axis), ``max min`` of one array (its largest / smallest entry)
  or of two (elementwise, the max gate of a circuit);
* indexing ``a[0]``, ``W[1, 0]``, ``W[:, 0]`` (integers, negative ones counted from the end,
  and a bare ``:``), and ``.T`` (the transpose; a vector or a number is its own).

:func:`forward` computes the value (arrays are float64; a number is a 0-d array) and
:func:`backward` the vector-Jacobian product of one expression: given ``g = ∂N/∂value``
it adds ``∂N/∂name`` to ``adjoints[name]`` for every name the expression reads, each
rule written next to the forward rule it differentiates (``d exp(a) = exp(a)·da`` …).
At a kink the one-sided choice is the one torch makes: ``relu'(0) = abs'(0) = 0``, and a
tie of ``max``/``min`` shares the gradient equally. :func:`forward` can record, for each
kink operation, which side of the kink every entry is on (``signs``), so that a finite
difference that crosses a kink can be told apart.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

UNARY_FUNCTIONS = ("exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "sum", "mean", "softmax")
FUNCTIONS = (*UNARY_FUNCTIONS, "max", "min")
BINARY_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.MatMult: "@", ast.Pow: "**"}
MAX_LENGTH = 2000
Index = tuple[int | slice, ...]


class ExpressionError(ValueError):
    """An expression that is not in the whitelist; the message says what was expected."""


@dataclass(frozen=True)
class Expr:
    """One node of a parsed expression.

    ``kind`` is ``const`` (``value``), ``name`` (``name``), ``neg``, ``binary`` (``op``),
    ``call`` (``name`` is the function), ``index`` (``index``) or ``transpose``; ``args``
    are the operands.
    """

    kind: str
    args: tuple[Expr, ...] = ()
    name: str = ""
    op: str = ""
    value: float = 0.0
    index: Index = ()

    def names(self) -> Iterator[str]:
        """Every name the expression reads, in order, with repeats."""
        if self.kind == "name":
            yield self.name
        for arg in self.args:
            yield from arg.names()


def _index_part(node: ast.expr) -> int | slice:
    if isinstance(node, ast.Slice):
        if node.lower is None and node.upper is None and node.step is None:
            return slice(None)
        raise ExpressionError("an index of integers or a bare ':' (no ranges)")
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sign * node.value
    raise ExpressionError("an index of integers or a bare ':'")


def _convert(node: ast.expr, known: Callable[[str], bool], depth: int) -> Expr:
    if depth > 100:
        raise ExpressionError("an expression nested at most 100 deep")
    deeper = depth + 1
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            raise ExpressionError(f"a number (not {node.value!r})")
        try:
            value = float(node.value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise ExpressionError(f"a finite number (not {node.value!r})")
        return Expr("const", value=value)
    if isinstance(node, ast.Name):
        if not known(node.id):
            raise ExpressionError(f"a name defined earlier (not {node.id!r})")
        return Expr("name", name=node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _convert(node.operand, known, deeper)
        if isinstance(node.op, ast.UAdd):
            return inner
        if inner.kind == "const":
            return Expr("const", value=-inner.value)
        return Expr("neg", (inner,))
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY_OPERATORS:
        args = (_convert(node.left, known, deeper), _convert(node.right, known, deeper))
        return Expr("binary", args, op=BINARY_OPERATORS[type(node.op)])
    if isinstance(node, ast.Call):
        func = node.func.id if isinstance(node.func, ast.Name) else None
        if func not in FUNCTIONS:
            shown = func or ast.unparse(node.func)
            close = difflib.get_close_matches(shown, FUNCTIONS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ExpressionError(f"one of the functions {', '.join(FUNCTIONS)} (not {shown!r}){hint}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError(f"plain arguments to {func}()")
        allowed = (1, 2) if func in ("max", "min") else (1,)
        if len(node.args) not in allowed:
            raise ExpressionError(f"{' or '.join(map(str, allowed))} argument(s) to {func}()")
        return Expr("call", tuple(_convert(a, known, deeper) for a in node.args), name=func)
    if isinstance(node, ast.Subscript):
        inner = node.slice
        parts = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        return Expr("index", (_convert(node.value, known, deeper),), index=tuple(_index_part(p) for p in parts))
    if isinstance(node, ast.Attribute) and node.attr == "T":
        return Expr("transpose", (_convert(node.value, known, deeper),))
    shown = ast.unparse(node) if isinstance(node, ast.AST) else repr(node)
    raise ExpressionError(f"numbers, names, + - * / @ **, functions, indexing and .T only (not {shown!r})")


def parse_expression(text: str, known: Callable[[str], bool]) -> Expr:
    """Parse ``text``; ``known(name)`` says whether a name may be read. :class:`ExpressionError` if not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("an expression written as a non-empty string")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"an expression of at most {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip().replace("\u2212", "-"), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        reason = getattr(err, "msg", None) or type(err).__name__
        raise ExpressionError(f"an expression in the whitelist, not Python that fails to parse ({reason})") from None
    try:
        return _convert(tree.body, known, 0)
    except RecursionError:
        raise ExpressionError("an expression nested at most 100 deep") from None


# ---------------------------------------------------------------------------- forward


def sigmoid(a: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^{−a})``, computed without overflow for large ``|a|``."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(a: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (the whole vector for a vector)."""
    if a.ndim == 0:
        return np.ones_like(a)
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_ELEMENTWISE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "relu": lambda a: np.maximum(a, 0.0),
    "sum": lambda a: np.asarray(a.sum()),
    "mean": lambda a: np.asarray(a.mean()),
    "softmax": softmax,
}


_ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power}


def _binary(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if op == "@":
        if a.ndim not in (1, 2) or b.ndim not in (1, 2):
            raise ExpressionError(f"@ between vectors and matrices (not shapes {a.shape} and {b.shape})")
        if a.shape[-1] != b.shape[0]:
            raise ExpressionError(f"shapes that @ can multiply (not {a.shape} and {b.shape})")
        return np.asarray(a @ b)
    try:
        return np.asarray(_ARITHMETIC[op](a, b))
    except ValueError:
        raise ExpressionError(f"shapes that broadcast for {op} (not {a.shape} and {b.shape})") from None


Signs = list[np.ndarray]


def forward(expr: Expr, env: Mapping[str, np.ndarray], memo: dict[int, np.ndarray] | None = None,
            signs: Signs | None = None) -> np.ndarray:  # fmt: skip
    """The value of ``expr`` with names read from ``env``.

    ``memo`` (if given) receives every sub-expression's value by ``id``, for :func:`backward`;
    ``signs`` (if given) receives, for each kink operation, the side of the kink of every entry.
    """
    with np.errstate(all="ignore"):
        return _forward(expr, env, memo, signs)


def _forward(expr: Expr, env: Mapping[str, np.ndarray], memo: dict[int, np.ndarray] | None,
             signs: Signs | None) -> np.ndarray:  # fmt: skip
    kind = expr.kind
    if kind == "const":
        out = np.asarray(expr.value)
    elif kind == "name":
        out = np.asarray(env[expr.name], dtype=np.float64)
    else:
        out = apply_rule(expr, [_forward(arg, env, memo, signs) for arg in expr.args], signs)
    if memo is not None:
        memo[id(expr)] = out
    return out


def apply_rule(expr: Expr, args: list[np.ndarray], signs: Signs | None) -> np.ndarray:
    """The value of a compound ``expr`` from its operands' values ``args`` (``signs``: see :func:`forward`)."""
    if expr.kind == "neg":
        return -args[0]
    if expr.kind == "binary":
        return _binary(expr.op, args[0], args[1])
    if expr.kind == "transpose":
        return args[0].T
    if expr.kind == "index":
        try:
            return np.asarray(args[0][expr.index])
        except IndexError:
            raise ExpressionError(f"an index into shape {args[0].shape} (not {list(expr.index)})") from None
    name = expr.name
    if signs is not None and name in ("relu", "abs"):
        signs.append(np.sign(args[0]))
    if len(args) == 2:
        if signs is not None:
            signs.append(np.sign(args[0] - args[1]))
        try:
            return np.asarray((np.maximum if name == "max" else np.minimum)(*args))
        except ValueError:
            raise ExpressionError(
                f"shapes that broadcast for {name}(), got {args[0].shape} and {args[1].shape}"
            ) from None
    if name in ("max", "min"):
        if args[0].size == 0:
            raise ExpressionError(f"{name}() of a non-empty array")
        extreme = args[0].max() if name == "max" else args[0].min()
        if signs is not None:
            signs.append(args[0] == extreme)
        return np.asarray(extreme)
    return _ELEMENTWISE[name](args[0])


# ---------------------------------------------------------------------------- backward


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``grad`` summed back to ``shape`` over the axes that broadcasting added or stretched."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def _matmul_vjp(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``∂/∂a`` and ``∂/∂b`` of ``a @ b`` for vectors (1-d) and matrices (2-d)."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g.reshape(a2.shape[0], b2.shape[1])
    da, db = g2 @ b2.T, a2.T @ g2  # (m, k) and (k, n): the two matrix rules
    return da.reshape(a.shape), db.reshape(b.shape)


def input_grads(expr: Expr, g: np.ndarray, args: list[np.ndarray], out: np.ndarray) -> list[np.ndarray | None]:
    """``g`` pulled back through ``expr`` to each operand (``None``: a constant needs none)."""
    if expr.kind == "neg":
        return [-g]
    if expr.kind == "transpose":
        return [g.T]
    if expr.kind == "index":
        full = np.zeros_like(args[0])
        np.add.at(full, expr.index, g)
        return [full]
    if expr.kind == "binary":
        a, b = args
        op = expr.op
        if op == "@":
            return list(_matmul_vjp(g, a, b))
        if op == "+":
            da, db = g, g
        elif op == "-":
            da, db = g, -g
        elif op == "*":
            da, db = g * b, g * a
        elif op == "/":
            da, db = g / b, -g * a / (b * b)
        else:  # a ** b: b·a^(b−1), and a^b·log a only where the exponent is not a number
            da = g * b * np.power(a, b - 1)
            db = None if expr.args[1].kind == "const" else g * out * np.log(a)
        return [unbroadcast(da, a.shape), None if db is None else unbroadcast(db, b.shape)]
    name, a = expr.name, args[0]
    if len(args) == 2:
        b = args[1]
        first = (a > b) if name == "max" else (a < b)
        share = np.where(a == b, 0.5, first.astype(np.float64))  # a tie splits the gradient, as torch does
        return [unbroadcast(g * share, a.shape), unbroadcast(g * (1.0 - share), b.shape)]
    if name in ("max", "min"):
        hit = (a == out).astype(np.float64)
        return [g * hit / hit.sum()]
    return [_UNARY_RULES[name](g, a, out)]


_UNARY_RULES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    # g = ∂N/∂out, a the argument, out = f(a): each returns ∂N/∂a
    "exp": lambda g, a, out: g * out,
    "log": lambda g, a, out: g / a,
    "sqrt": lambda g, a, out: g / (2.0 * out),
    "abs": lambda g, a, out: g * np.sign(a),
    "tanh": lambda g, a, out: g * (1.0 - out * out),
    "sigmoid": lambda g, a, out: g * out * (1.0 - out),
    "relu": lambda g, a, out: g * (a > 0),
    "sum": lambda g, a, out: np.broadcast_to(g, a.shape).copy(),
    "mean": lambda g, a, out: np.broadcast_to(g / a.size, a.shape).copy(),
    "softmax": lambda g, a, out: out * (g - (g * out).sum(axis=-1, keepdims=True)) if a.ndim else np.zeros_like(a),
}


def backward(expr: Expr, grad: np.ndarray, memo: Mapping[int, np.ndarray], adjoints: dict[str, np.ndarray]) -> None:
    """Add ``grad`` pulled back through ``expr`` to ``adjoints[name]`` for every name it reads.

    ``grad`` has the shape of ``expr``'s value; ``memo`` is what :func:`forward` recorded.
    """
    with np.errstate(all="ignore"):
        _backward(expr, grad, memo, adjoints)


def _backward(expr: Expr, grad: np.ndarray, memo: Mapping[int, np.ndarray], adjoints: dict[str, np.ndarray]) -> None:
    kind = expr.kind
    if kind == "const":
        return
    if kind == "name":
        previous = adjoints.get(expr.name)
        adjoints[expr.name] = grad if previous is None else previous + grad
        return
    args = [memo[id(arg)] for arg in expr.args]
    grads = input_grads(expr, np.asarray(grad, dtype=np.float64), args, memo[id(expr)])
    for arg, g in zip(expr.args, grads, strict=True):
        if g is not None:
            _backward(arg, np.asarray(g), memo, adjoints)


def as_array(value: Any) -> np.ndarray:
    """A float64 array of a number or a nested list; ``ValueError`` if it is not a finite, rectangular one."""
    if isinstance(value, bool) or (not isinstance(value, int | float | list)):
        raise ValueError("a number or an array of numbers")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise ValueError("a rectangular array of numbers") from None
    if array.ndim > 2 or not np.isfinite(array).all() or array.size == 0:
        raise ValueError("a finite number, vector or matrix")
    return array
