"""The same expressions evaluated with torch, so that autograd can confirm :mod:`worked.expressions`.

Only the parse tree is shared; every operation here is torch's own (``torch.sigmoid``,
``torch.softmax``, ``torch.maximum``, ``torch.amax`` …) and every derivative is torch's
autograd, not the hand-written rules of the NumPy evaluator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worked.expressions import Expr

_FUNCTIONS = {
    "exp": "exp",
    "log": "log",
    "sqrt": "sqrt",
    "abs": "abs",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "relu": "relu",
    "sum": "sum",
    "mean": "mean",
}


def torch_forward(expr: Expr, env: Mapping[str, Any]) -> Any:
    """The value of ``expr`` as a float64 torch tensor, names read from ``env`` (tensors)."""
    import torch

    if expr.kind == "const":
        return torch.tensor(expr.value, dtype=torch.float64)
    if expr.kind == "name":
        return env[expr.name]
    args = [torch_forward(arg, env) for arg in expr.args]
    if expr.kind == "neg":
        return -args[0]
    if expr.kind == "transpose":
        return args[0].t() if args[0].dim() == 2 else args[0]
    if expr.kind == "index":
        return args[0][expr.index]
    if expr.kind == "binary":
        a, b = args
        return {
            "+": lambda: a + b,
            "-": lambda: a - b,
            "*": lambda: a * b,
            "/": lambda: a / b,
            "@": lambda: torch.matmul(a, b),
            "**": lambda: torch.pow(a, b),
        }[expr.op]()
    name = expr.name
    if len(args) == 2:
        return (torch.maximum if name == "max" else torch.minimum)(*torch.broadcast_tensors(*args))
    a = args[0]
    if name == "max":
        return torch.amax(a)
    if name == "min":
        return torch.amin(a)
    if name == "softmax":
        return torch.softmax(a, dim=-1) if a.dim() else torch.ones_like(a)
    return getattr(torch, _FUNCTIONS[name])(a)
