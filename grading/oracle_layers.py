"""The ``layers`` interface: row-major layer functions, each returning ``(out, cache)``.

Conventions (examples in rows, ``N`` of them):

* ``affine_forward(x, w, b) -> (out, cache)``: ``x`` of shape ``(N, d1, …, dk)`` is
  reshaped to ``(N, D)``; ``out = x @ w + b`` with ``w (D, M)``, ``b (M,)``;
  ``affine_backward(dout, cache) -> (dx, dw, db)`` with ``dx`` in ``x``'s shape,
  ``dw = xᵀ @ dout``, ``db = Σ_n dout`` (a sum: no ``1/N`` anywhere but in the loss);
* ``relu_/sigmoid_/tanh_forward(x) -> (out, cache)`` and ``*_backward(dout, cache) -> dx``;
* ``softmax_loss(x, y) -> (loss, dx)``: ``y (N,)`` integer labels, ``loss`` the mean over
  ``N`` of ``−log softmax(x)[y]``, ``dx = (softmax(x) − onehot(y)) / N``;
* ``svm_loss(x, y) -> (loss, dx)``: the multiclass hinge loss with margin 1,
  ``loss = (1/N) Σ_n Σ_{j≠y_n} max(0, x_nj − x_ny_n + 1)``; ``dx`` is ``1/N`` where a margin
  is positive, ``−(count of positive margins)/N`` at the label, 0 elsewhere.

The reference values are written out here with NumPy; :mod:`grading.torch_confirm`
recomputes every gradient with torch autograd.
"""

from __future__ import annotations

import numpy as np

from grading.plan import Expect, FunctionCheck, Hints, arg, away_from_zero, returned
from grading.sandbox import Call

FUNCTIONS = (
    "affine_forward",
    "affine_backward",
    "relu_forward",
    "relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "tanh_forward",
    "tanh_backward",
    "softmax_loss",
    "svm_loss",
)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^{−x})`` without overflow for large ``|x|``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax_rows(x: np.ndarray, axis: int = 1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def affine_backward(x: np.ndarray, w: np.ndarray, dout: np.ndarray) -> dict[str, np.ndarray]:
    """``dx`` (x's shape), ``dw``, ``db`` of ``out = x.reshape(N, D) @ w + b`` for the upstream ``dout``."""
    flat = x.reshape(x.shape[0], -1)
    return {"dx": (dout @ w.T).reshape(x.shape), "dw": flat.T @ dout, "db": dout.sum(axis=0)}


def softmax_loss(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Mean cross-entropy of softmax rows and its gradient ``(p − onehot) / N``."""
    n = x.shape[0]
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    dx = np.exp(log_p)
    dx[np.arange(n), y] -= 1.0
    return {"loss": np.asarray(-log_p[np.arange(n), y].mean()), "dx": dx / n}


def svm_loss(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Mean multiclass hinge loss (margin 1) and its gradient (see the module docstring)."""
    n = x.shape[0]
    margins = np.maximum(0.0, x - x[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0.0
    dx = (margins > 0).astype(float)
    dx[np.arange(n), y] = -dx.sum(axis=1)
    return {"loss": np.asarray(margins.sum() / n), "dx": dx / n}


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 5, index])


def _affine_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 0)
    n, d1, d2, m = int(rng.integers(3, 6)), 2, int(rng.integers(2, 4)), int(rng.integers(4, 7))
    x = rng.standard_normal((n, d1, d2))
    w = rng.standard_normal((d1 * d2, m)) / np.sqrt(d1 * d2)
    b = rng.standard_normal(m) * 0.5
    dout = rng.standard_normal((n, m))
    inputs = {"x": x, "w": w, "b": b}
    forward = Call("affine_forward", (arg("x"), arg("w"), arg("b")))
    out = x.reshape(n, -1) @ w + b
    grads = affine_backward(x, w, dout)
    flat = x.reshape(n, -1)
    batched = Hints(batch=n, batch_axis=0)
    per_example_dw = np.einsum("ni,nj->nij", flat, dout)
    return [
        FunctionCheck(
            "affine_forward",
            "affine_forward",
            (forward,),
            inputs,
            (Expect("out", 0, (0,), out, batched),),
            ("x", "w", "b"),
        ),
        FunctionCheck(
            "affine_backward",
            "affine_backward",
            (forward, Call("affine_backward", (arg("dout"), returned(0, 1)))),
            {**inputs, "dout": dout},
            (
                Expect("dx", 1, (0,), grads["dx"], batched),
                Expect("dw", 1, (1,), grads["dw"], Hints(batch=n, per_example=per_example_dw)),
                Expect(
                    "db",
                    1,
                    (2,),
                    grads["db"],
                    Hints(batch=n, bias_sum=True, per_example=dout, alternatives={"wrong_axis": (dout.sum(axis=1),)}),
                ),
            ),
            ("x", "w", "b", "dout"),
            twin="affine_backward",
        ),
    ]


_ELEMENTWISE = {
    # name: (forward, derivative from (x, out), bug-name → wrong dx from (dout, x, out))
    "relu": (
        lambda x: np.maximum(x, 0.0),
        lambda x, out: (x > 0).astype(float),
        {"derivative_skipped": lambda dout, x, out: dout},
    ),
    "sigmoid": (
        sigmoid,
        lambda x, out: out * (1.0 - out),
        {"missing_one_minus_s": lambda dout, x, out: dout * out, "derivative_skipped": lambda dout, x, out: dout},
    ),
    "tanh": (
        np.tanh,
        lambda x, out: 1.0 - out**2,
        {"derivative_skipped": lambda dout, x, out: dout, "missing_square": lambda dout, x, out: dout * (1.0 - out)},
    ),
}


def _elementwise_checks(seed: int) -> list[FunctionCheck]:
    checks = []
    for index, (name, (forward, derivative, bugs)) in enumerate(_ELEMENTWISE.items(), start=1):
        rng = _rng(seed, index)
        n, k = int(rng.integers(3, 6)), int(rng.integers(3, 6))
        x = away_from_zero(rng, (n, k))
        dout = rng.standard_normal((n, k))
        out = forward(x)
        call = Call(f"{name}_forward", (arg("x"),))
        batched = Hints(batch=n, batch_axis=0)
        checks.append(
            FunctionCheck(
                f"{name}_forward", f"{name}_forward", (call,), {"x": x}, (Expect("out", 0, (0,), out, batched),), ("x",)
            )
        )
        if name != "relu":
            big = x * 1000.0
            checks.append(
                FunctionCheck(
                    f"{name}_forward: large inputs",
                    f"{name}_forward",
                    (call,),
                    {"x": big},
                    (
                        Expect(
                            "out", 0, (0,), forward(big), Hints(batch=n, batch_axis=0, large_inputs=True, formula=name)
                        ),
                    ),
                    ("x",),
                )
            )
        alternatives = {bug: (wrong(dout, x, out),) for bug, wrong in bugs.items()}
        checks.append(
            FunctionCheck(
                f"{name}_backward",
                f"{name}_backward",
                (call, Call(f"{name}_backward", (arg("dout"), returned(0, 1)))),
                {"x": x, "dout": dout},
                (
                    Expect(
                        "dx", 1, (), dout * derivative(x, out), Hints(batch=n, batch_axis=0, alternatives=alternatives)
                    ),
                ),
                ("x", "dout"),
                twin=f"{name}_backward",
            )
        )
    return checks


def _softmax_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 9)
    n, c = int(rng.integers(3, 7)), int(rng.integers(3, 6))
    x = rng.standard_normal((n, c))
    y = rng.integers(0, c, size=n)
    checks = []
    for name, logits in (("softmax_loss", x), ("softmax_loss: large logits", x * 1000.0)):
        large = logits is not x
        ref = softmax_loss(logits, y)
        onehot = np.eye(c)[y]
        wrong_axis = (softmax_rows(logits, axis=0) - onehot) / n
        checks.append(
            FunctionCheck(
                name,
                "softmax_loss",
                (Call("softmax_loss", (arg("x"), arg("y"))),),
                {"x": logits, "y": y},
                (
                    Expect(
                        "loss", 0, (0,), ref["loss"], Hints(batch=n, large_inputs=large, formula="softmax"), scalar=True
                    ),
                    Expect(
                        "dx",
                        0,
                        (1,),
                        ref["dx"],
                        Hints(
                            batch=n,
                            batch_axis=0,
                            alternatives={"wrong_axis": (wrong_axis,)},
                            large_inputs=large,
                            formula="softmax",
                        ),
                    ),
                ),
                ("x", "y"),
                twin="softmax_loss",
            )
        )
    return checks


def _svm_checks(seed: int) -> list[FunctionCheck]:
    """Scores drawn so that no margin ``x_j − x_y + 1`` lies within 0.1 of 0 (the hinge's kink)."""
    rng = _rng(seed, 10)
    n, c = int(rng.integers(3, 7)), int(rng.integers(3, 6))
    y = rng.integers(0, c, size=n)
    x = rng.standard_normal((n, c))
    for _ in range(1000):
        margins = x - x[np.arange(n), y][:, None] + 1.0
        near = np.abs(margins) < 0.1
        near[np.arange(n), y] = False
        if not near.any():
            break
        x[near] += 0.3
    ref = svm_loss(x, y)
    return [
        FunctionCheck(
            "svm_loss",
            "svm_loss",
            (Call("svm_loss", (arg("x"), arg("y"))),),
            {"x": x, "y": y},
            (
                Expect("loss", 0, (0,), ref["loss"], Hints(batch=n), scalar=True),
                Expect("dx", 0, (1,), ref["dx"], Hints(batch=n, batch_axis=0)),
            ),
            ("x", "y"),
            twin="svm_loss",
        )
    ]


def build(seed: int) -> list[FunctionCheck]:
    """Every check of the ``layers`` interface for ``seed`` (shapes and values depend on it)."""
    return [*_affine_checks(seed), *_elementwise_checks(seed), *_softmax_checks(seed), *_svm_checks(seed)]
