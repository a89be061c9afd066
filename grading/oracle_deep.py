"""The ``deep`` interface: column-major deep-network functions (examples in columns, ``m`` of them).

Conventions, exactly as the common course notebook states them:

* ``linear_forward(A, W, b) -> (Z, cache)``: ``Z = W @ A + b``, ``A (n_prev, m)``,
  ``W (n, n_prev)``, ``b (n, 1)``, ``cache = (A, W, b)``;
* ``linear_activation_forward(A_prev, W, b, activation) -> (A, cache)`` with activation
  ``"relu"`` or ``"sigmoid"``; ``cache = (linear_cache, Z)``;
* ``L_model_forward(X, parameters) -> (AL, caches)``: ReLU hidden layers, a sigmoid output,
  ``parameters`` keyed ``W1, b1, …``;
* ``compute_cost(AL, Y) = −(1/m) Σ [Y log AL + (1 − Y) log(1 − AL)]``, a scalar;
* ``relu_backward(dA, Z)``, ``sigmoid_backward(dA, Z) -> dZ`` (the cache holds ``Z``);
* ``linear_backward(dZ, cache) -> (dA_prev, dW, db)``: ``dW = dZ @ A_prevᵀ / m``,
  ``db = Σ_columns dZ / m`` (shape ``(n, 1)``), ``dA_prev = Wᵀ @ dZ`` — **no** ``1/m``;
* ``L_model_backward(AL, Y, caches) -> grads``: starts from
  ``dAL = −(Y/AL − (1 − Y)/(1 − AL))`` (the derivative of the *unaveraged* loss), so every
  ``dA{l}`` is ``m`` times ``∂cost/∂A_l`` while every ``dW{l}``, ``db{l}`` is exactly
  ``∂cost/∂W_l``, ``∂cost/∂b_l``; keys ``dA0 … dA{L−1}``, ``dW1 … dWL``, ``db1 … dbL``;
* ``update_parameters(parameters, grads, learning_rate)``: ``W ← W − α dW``, ``b ← b − α db``.
"""

from __future__ import annotations

import numpy as np

from grading.oracle_layers import sigmoid
from grading.plan import Expect, FunctionCheck, Hints, arg, arrays_dict, literal, returned
from grading.sandbox import Call

FUNCTIONS = (
    "linear_forward",
    "linear_activation_forward",
    "L_model_forward",
    "compute_cost",
    "relu_backward",
    "sigmoid_backward",
    "linear_backward",
    "linear_activation_backward",
    "L_model_backward",
    "update_parameters",
)
LEARNING_RATE = 0.1


def linear_backward(dZ: np.ndarray, A_prev: np.ndarray, W: np.ndarray) -> dict[str, np.ndarray]:
    m = A_prev.shape[1]
    return {"dA_prev": W.T @ dZ, "dW": dZ @ A_prev.T / m, "db": dZ.sum(axis=1, keepdims=True) / m}


def activation_derivative(activation: str, Z: np.ndarray) -> np.ndarray:
    if activation == "relu":
        return (Z > 0).astype(float)
    s = sigmoid(Z)
    return s * (1.0 - s)


def activate(activation: str, Z: np.ndarray) -> np.ndarray:
    return np.maximum(Z, 0.0) if activation == "relu" else sigmoid(Z)


def model_forward(X: np.ndarray, params: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """``AL`` and the pre-activations ``[Z1, …, ZL]`` (ReLU hidden layers, sigmoid output)."""
    depth = len(params) // 2
    A, zs = X, []
    for layer in range(1, depth + 1):
        Z = params[f"W{layer}"] @ A + params[f"b{layer}"]
        zs.append(Z)
        A = activate("relu" if layer < depth else "sigmoid", Z)
    return A, zs


def model_backward(X: np.ndarray, Y: np.ndarray, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``grads`` as ``L_model_backward`` returns them (see the module docstring)."""
    depth = len(params) // 2
    AL, zs = model_forward(X, params)
    activations = [X] + [activate("relu", z) for z in zs[:-1]]
    grads: dict[str, np.ndarray] = {}
    dA = -(Y / AL - (1.0 - Y) / (1.0 - AL))
    for layer in range(depth, 0, -1):
        activation = "relu" if layer < depth else "sigmoid"
        dZ = dA * activation_derivative(activation, zs[layer - 1])
        step = linear_backward(dZ, activations[layer - 1], params[f"W{layer}"])
        grads[f"dA{layer - 1}"], grads[f"dW{layer}"], grads[f"db{layer}"] = step["dA_prev"], step["dW"], step["db"]
        dA = step["dA_prev"]
    return grads


def cost(AL: np.ndarray, Y: np.ndarray) -> np.ndarray:
    m = Y.shape[1]
    return np.asarray(-(Y * np.log(AL) + (1.0 - Y) * np.log(1.0 - AL)).sum() / m)


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 7, index])


def _layer(rng: np.random.Generator, n_prev: int, n: int, m: int):
    A = rng.standard_normal((n_prev, m))
    W = rng.standard_normal((n, n_prev)) / np.sqrt(n_prev)
    b = rng.standard_normal((n, 1)) * 0.3
    return A, W, b


def _kink_safe_bias(WA: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bias ``(n, 1)`` chosen so that no entry of ``WA + b`` lies within 0.1 of 0 (the ReLU kink)."""
    biases = []
    for row in WA:
        for _ in range(200):
            b = rng.uniform(-1.0, 1.0)
            if np.abs(row + b).min() >= 0.1:
                break
        biases.append(b)
    return np.array(biases).reshape(-1, 1)


def _per_example(dZ: np.ndarray, A_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's contribution to ``dW`` and ``db`` (``1/m`` included)."""
    m = A_prev.shape[1]
    return np.einsum("im,jm->mij", dZ, A_prev) / m, (dZ.T / m)[:, :, None]


def _backward_expects(call: int, ref: dict, dZ: np.ndarray, A_prev: np.ndarray, wrong: dict[str, dict]) -> tuple:
    """Expects ``dA_prev, dW, db`` (tuple items 0, 1, 2 of call ``call``), with bug alternatives per pattern."""
    m = A_prev.shape[1]
    per_dw, per_db = _per_example(dZ, A_prev)
    alt = {name: {k: (v,) for k, v in values.items()} for name, values in wrong.items()}

    def pick(key: str) -> dict[str, tuple[np.ndarray, ...]]:
        return {name: values[key] for name, values in alt.items()}

    db_axis = {"wrong_axis": (dZ.sum(axis=0, keepdims=True) / m,)}
    return (
        Expect(
            "dA_prev",
            call,
            (0,),
            ref["dA_prev"],
            Hints(batch=m, batch_name="m", batch_axis=1, alternatives=pick("dA_prev")),
        ),
        Expect(
            "dW", call, (1,), ref["dW"], Hints(batch=m, batch_name="m", alternatives=pick("dW"), per_example=per_dw)
        ),
        Expect(
            "db",
            call,
            (2,),
            ref["db"],
            Hints(batch=m, batch_name="m", alternatives=pick("db") | db_axis, per_example=per_db),
        ),
    )


def _linear_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 0)
    n_prev, n, m = int(rng.integers(3, 6)), int(rng.integers(4, 7)), int(rng.integers(3, 5))
    A, W, b = _layer(rng, n_prev, n, m)
    dZ = rng.standard_normal((n, m))
    inputs = {"A": A, "W": W, "b": b}
    forward = Call("linear_forward", (arg("A"), arg("W"), arg("b")))
    hints = Hints(batch=m, batch_name="m", batch_axis=1)
    return [
        FunctionCheck(
            "linear_forward",
            "linear_forward",
            (forward,),
            inputs,
            (Expect("Z", 0, (0,), W @ A + b, hints),),
            ("A", "W", "b"),
        ),
        FunctionCheck(
            "linear_backward",
            "linear_backward",
            (forward, Call("linear_backward", (arg("dZ"), returned(0, 1)))),
            {**inputs, "dZ": dZ},
            _backward_expects(1, linear_backward(dZ, A, W), dZ, A, {}),
            ("A", "W", "b", "dZ"),
            twin="linear_backward",
        ),
    ]


def _activation_checks(seed: int) -> list[FunctionCheck]:
    checks = []
    for index, activation in enumerate(("relu", "sigmoid"), start=1):
        rng = _rng(seed, index)
        n_prev, n, m = int(rng.integers(3, 6)), int(rng.integers(4, 7)), int(rng.integers(3, 5))
        A, W, _ = _layer(rng, n_prev, n, m)
        b = _kink_safe_bias(W @ A, rng)
        Z = W @ A + b
        dA = rng.standard_normal((n, m))
        inputs = {"A_prev": A, "W": W, "b": b}
        forward = Call("linear_activation_forward", (arg("A_prev"), arg("W"), arg("b"), literal(activation)))
        hints = Hints(batch=m, batch_name="m", batch_axis=1)
        checks.append(
            FunctionCheck(
                f"linear_activation_forward ({activation})",
                "linear_activation_forward",
                (forward,),
                inputs,
                (Expect("A", 0, (0,), activate(activation, Z), hints),),
                ("A_prev", "W", "b"),
            )
        )
        dZ = dA * activation_derivative(activation, Z)
        wrong = {"derivative_skipped": linear_backward(dA, A, W)}
        if activation == "sigmoid":
            wrong["missing_one_minus_s"] = linear_backward(dA * sigmoid(Z), A, W)
        checks.append(
            FunctionCheck(
                f"linear_activation_backward ({activation})",
                "linear_activation_backward",
                (forward, Call("linear_activation_backward", (arg("dA"), returned(0, 1), literal(activation)))),
                {**inputs, "dA": dA},
                _backward_expects(1, linear_backward(dZ, A, W), dZ, A, wrong),
                ("A_prev", "W", "b", "dA"),
                twin=f"linear_activation_backward_{activation}",
            )
        )
        alternatives = {"derivative_skipped": (dA,)}
        if activation == "sigmoid":
            alternatives["missing_one_minus_s"] = (dA * sigmoid(Z),)
        checks.append(
            FunctionCheck(
                f"{activation}_backward",
                f"{activation}_backward",
                (Call(f"{activation}_backward", (arg("dA"), arg("Z"))),),
                {"dA": dA, "Z": Z},
                (Expect("dZ", 0, (), dZ, Hints(batch=m, batch_name="m", batch_axis=1, alternatives=alternatives)),),
                ("dA", "Z"),
                twin=f"deep_{activation}_backward",
            )
        )
    return checks


def model_case(seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``X``, ``Y`` (0/1 labels, shape ``(1, m)``) and parameters of a 4-layer network.

    Layers 2 and 3 have square weights of the same shape, so a gradient stored under
    the wrong layer's key has the right shape and only its values give it away. Hidden
    pre-activations are kept at least 0.05 away from the ReLU kink.
    """
    for attempt in range(100):
        rng = _rng(seed, 100 + attempt)
        n0, hidden, m = int(rng.integers(3, 6)), int(rng.integers(4, 6)), int(rng.integers(3, 5))
        dims = [n0, hidden, hidden, hidden, 1]
        X = rng.standard_normal((n0, m))
        params = {}
        for layer in range(1, len(dims)):
            params[f"W{layer}"] = rng.standard_normal((dims[layer], dims[layer - 1])) * np.sqrt(2.0 / dims[layer - 1])
            params[f"b{layer}"] = rng.standard_normal((dims[layer], 1)) * 0.1
        Y = rng.integers(0, 2, size=(1, m)).astype(float)
        _, zs = model_forward(X, params)
        if min(np.abs(z).min() for z in zs[:-1]) >= 0.05:
            return X, Y, params
    raise RuntimeError("no kink-safe network found")  # pragma: no cover - 100 draws always suffice in practice


def _model_checks(seed: int) -> list[FunctionCheck]:
    X, Y, params = model_case(seed)
    m = X.shape[1]
    AL, _ = model_forward(X, params)
    grads = model_backward(X, Y, params)
    param_arg = arrays_dict({k: k for k in params})
    forward = Call("L_model_forward", (arg("X"), param_arg))
    inputs = {"X": X, **params}
    column = Hints(batch=m, batch_name="m", batch_axis=1)

    def neighbours(key: str) -> dict[str, tuple[np.ndarray, ...]]:
        kind, layer = key[:2], int(key[2:])
        others = tuple(grads[f"{kind}{other}"] for other in (layer - 1, layer + 1) if f"{kind}{other}" in grads)
        return {"wrong_layer_order": others}

    grad_expects = tuple(
        Expect(
            f"grads['{key}']",
            1,
            (key,),
            grads[key],
            Hints(
                batch=m, batch_name="m", batch_axis=1 if key.startswith("dA") else None, alternatives=neighbours(key)
            ),
        )
        for key in sorted(grads, key=lambda k: (k[:2] != "dA", k[:2], int(k[2:])))
    )
    updated = {key: value - LEARNING_RATE * grads[f"d{key}"] for key, value in params.items()}
    wrong_sign = {key: value + LEARNING_RATE * grads[f"d{key}"] for key, value in params.items()}
    grad_inputs = {f"d{key}": grads[f"d{key}"] for key in params}
    return [
        FunctionCheck(
            "L_model_forward",
            "L_model_forward",
            (forward,),
            inputs,
            (Expect("AL", 0, (0,), AL, column),),
            tuple(inputs),
        ),
        FunctionCheck(
            "compute_cost",
            "compute_cost",
            (Call("compute_cost", (arg("AL"), arg("Y"))),),
            {"AL": AL, "Y": Y},
            (Expect("cost", 0, (), cost(AL, Y), Hints(batch=m, batch_name="m"), scalar=True),),
            ("AL", "Y"),
            twin="compute_cost",
        ),
        FunctionCheck(
            "L_model_backward",
            "L_model_backward",
            (forward, Call("L_model_backward", (arg("AL"), arg("Y"), returned(0, 1)))),
            {**inputs, "AL": AL, "Y": Y},
            grad_expects,
            (*inputs, "AL", "Y"),
            twin="L_model_backward",
        ),
        FunctionCheck(
            "update_parameters",
            "update_parameters",
            (Call("update_parameters", (param_arg, arrays_dict({k: k for k in grad_inputs}), literal(LEARNING_RATE))),),
            {**params, **grad_inputs},
            tuple(
                Expect(
                    f"parameters['{key}']",
                    0,
                    (key,),
                    updated[key],
                    Hints(alternatives={"sign_flipped": (wrong_sign[key],)}),
                )
                for key in params
            ),
            tuple(grad_inputs),
        ),
    ]


def build(seed: int) -> list[FunctionCheck]:
    """Every check of the ``deep`` interface for ``seed``."""
    return [*_linear_checks(seed), *_activation_checks(seed), *_model_checks(seed)]
