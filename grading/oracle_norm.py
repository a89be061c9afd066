"""The normalisation functions of CS231n's second assignment (``layers.py``), checks for the ``cnn`` interface.

Conventions (CS231n's names; statistics biased, ``np.var``):

* ``batchnorm_forward(x, gamma, beta, bn_param) -> (out, cache)``, ``x (N, D)``, ``gamma, beta (D,)``;
  ``bn_param`` holds ``mode`` (``train``/``test``), ``eps``, ``momentum``, ``running_mean``,
  ``running_var``. Train mode normalises with the batch's mean and variance and stores back, in
  ``bn_param``, ``running = momentum · running + (1 − momentum) · batch statistic``; test mode
  normalises with the running statistics. ``batchnorm_backward(dout, cache)`` and
  ``batchnorm_backward_alt(dout, cache)`` return ``(dx, dgamma, dbeta)``;
* ``layernorm_forward(x, gamma, beta, ln_param) -> (out, cache)``: each example (row) normalised over
  its ``D`` features, ``ln_param`` holding ``eps``; ``layernorm_backward(dout, cache) -> (dx, dgamma, dbeta)``;
* ``spatial_batchnorm_forward(x, gamma, beta, bn_param)``: ``x (N, C, H, W)``, statistics per channel
  over ``N, H, W``, ``gamma, beta (C,)``; the backward returns ``dgamma, dbeta (C,)``;
* ``spatial_groupnorm_forward(x, gamma, beta, G, gn_param)``: the ``C`` channels in ``G`` contiguous
  groups, each example's group normalised over its channels and pixels, ``gamma, beta (1, C, 1, 1)``
  and ``dgamma, dbeta`` in that shape.

The references use refbp's standardisation (:mod:`refbp.layers.standardize`, itself checked against
torch and finite differences); :mod:`grading.torch_cnn` recomputes every gradient with autograd.
Each backward check carries what dropping the two mean terms (the paths through μ and σ²) returns.
"""

from __future__ import annotations

import numpy as np

from grading.plan import ARGUMENTS, Expect, FunctionCheck, Hints, arg, argument, literal, returned
from grading.sandbox import Call
from refbp.layers.standardize import standardize, standardize_backward

EPS, MOMENTUM = 1e-5, 0.9


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 13, 20 + index])


def normalised_backward(
    x: np.ndarray, gamma: np.ndarray, dout: np.ndarray, axes: tuple[int, ...], groups: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dx without the mean terms, dx without the σ² term)`` of ``gamma · x̂ + beta``, x̂ over ``axes``.

    ``groups`` > 0: channel groups of ``(N, C, H, W)`` (``axes`` then index the grouped
    ``(N, G, C/G, H, W)`` array).
    """
    shape = x.shape
    if groups:
        x = x.reshape(shape[0], groups, -1, *shape[2:])
    xhat, _, var = standardize(x, axes, EPS)
    g = (gamma * dout).reshape(x.shape)
    dx = standardize_backward(g, xhat, var, EPS, axes)
    direct = g / np.sqrt(var + EPS)
    no_var = (g - g.mean(axis=axes, keepdims=True)) / np.sqrt(var + EPS)
    return dx.reshape(shape), direct.reshape(shape), no_var.reshape(shape)


def _backward_check(
    name: str,
    forward_call: Call,
    inputs: dict[str, np.ndarray],
    dx: np.ndarray,
    wrong: list[np.ndarray],
    dgamma: np.ndarray,
    dbeta: np.ndarray,
    n: int,
    twin: str,
) -> FunctionCheck:
    """The check of ``name(dout, cache) -> (dx, dgamma, dbeta)``; ``wrong`` holds dx without its mean terms."""
    direct, no_var = wrong
    hints = Hints(batch=n, batch_axis=0, alternatives={"norm_mean_terms_dropped": (direct, no_var)})
    return FunctionCheck(
        name, name, (forward_call, Call(name, (arg("dout"), returned(0, 1)))), inputs,
        (Expect("dx", 1, (0,), dx, hints), Expect("dgamma", 1, (1,), dgamma, Hints(batch=n)),
         Expect("dbeta", 1, (2,), dbeta, Hints(batch=n, bias_sum=True))),
        tuple(k for k in inputs if not k.startswith("running_")), twin=twin,
    )  # fmt: skip


def _bn_param(mode: str) -> dict:
    return {"dict": {"mode": literal(mode), "eps": literal(EPS), "momentum": literal(MOMENTUM),
                     "running_mean": arg("running_mean"), "running_var": arg("running_var")}}  # fmt: skip


def _batchnorm_checks(seed: int, spatial: bool) -> list[FunctionCheck]:
    prefix = "spatial_batchnorm" if spatial else "batchnorm"
    rng = _rng(seed, int(spatial))
    n, c = int(rng.integers(4, 7)), int(rng.integers(3, 5))
    shape = (n, c, int(rng.integers(2, 4)), int(rng.integers(2, 4))) if spatial else (n, c)
    axes = (0, 2, 3) if spatial else (0,)
    view = (1, c, 1, 1) if spatial else (1, c)
    x = rng.standard_normal(shape) * 2.0 + rng.standard_normal(view) * 3.0
    gamma, beta = rng.uniform(0.5, 2.0, c), rng.standard_normal(c)
    rm0, rv0 = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    dout = rng.standard_normal(shape)
    xhat, mean, var = standardize(x, axes, EPS)
    out = gamma.reshape(view) * xhat + beta.reshape(view)
    batch_mean, batch_var = mean.reshape(-1), var.reshape(-1)
    running_mean = MOMENTUM * rm0 + (1 - MOMENTUM) * batch_mean
    running_var = MOMENTUM * rv0 + (1 - MOMENTUM) * batch_var
    inputs = {"x": x, "gamma": gamma, "beta": beta, "running_mean": rm0, "running_var": rv0}
    train = Call(f"{prefix}_forward", (arg("x"), arg("gamma"), arg("beta"), _bn_param("train")))
    stored = Call(ARGUMENTS, (argument(0, 3, "running_mean"), argument(0, 3, "running_var")))

    def running_hints(initial: np.ndarray, batch: np.ndarray) -> Hints:
        swapped = (1 - MOMENTUM) * initial + MOMENTUM * batch
        return Hints(alternatives={"running_stats_not_stored": (initial,), "momentum_swapped": (swapped,)})

    test_out = gamma.reshape(view) * (x - rm0.reshape(view)) / np.sqrt(rv0.reshape(view) + EPS) + beta.reshape(view)
    batched = Hints(batch=n, batch_axis=0)
    test_hints = Hints(batch=n, batch_axis=0, alternatives={"test_mode_batch_stats": (out,)})
    dx, *wrong = normalised_backward(x, gamma.reshape(view), dout, axes)
    dgamma, dbeta = (dout * xhat).sum(axis=axes), dout.sum(axis=axes)
    checks = [
        FunctionCheck(f"{prefix}_forward", f"{prefix}_forward", (train, stored), inputs,
                      (Expect("out", 0, (0,), out, batched),
                       Expect("running_mean", 1, (0,), running_mean, running_hints(rm0, batch_mean)),
                       Expect("running_var", 1, (1,), running_var, running_hints(rv0, batch_var))),
                      ("x", "gamma", "beta")),
        FunctionCheck(f"{prefix}_forward: test mode", f"{prefix}_forward",
                      (Call(f"{prefix}_forward", (arg("x"), arg("gamma"), arg("beta"), _bn_param("test"))),),
                      inputs, (Expect("out", 0, (0,), test_out, test_hints),), ("x", "gamma", "beta")),
    ]  # fmt: skip
    backs = ("batchnorm_backward", "batchnorm_backward_alt") if not spatial else ("spatial_batchnorm_backward",)
    for name in backs:
        twin = "spatial_batchnorm_backward" if spatial else "batchnorm_backward"
        checks.append(_backward_check(name, train, {**inputs, "dout": dout}, dx, wrong, dgamma, dbeta, n, twin))
    return checks


def _layernorm_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 2)
    n, d = int(rng.integers(3, 6)), int(rng.integers(4, 7))
    x = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, (n, 1)) + rng.standard_normal((n, 1))
    gamma, beta, dout = rng.uniform(0.5, 2.0, d), rng.standard_normal(d), rng.standard_normal((n, d))
    xhat, _, _ = standardize(x, (1,), EPS)
    inputs = {"x": x, "gamma": gamma, "beta": beta}
    call = Call("layernorm_forward", (arg("x"), arg("gamma"), arg("beta"), {"dict": {"eps": literal(EPS)}}))
    dx, *wrong = normalised_backward(x, gamma, dout, (1,))
    return [
        FunctionCheck("layernorm_forward", "layernorm_forward", (call,), inputs,
                      (Expect("out", 0, (0,), gamma * xhat + beta, Hints(batch=n, batch_axis=0)),), tuple(inputs)),
        _backward_check("layernorm_backward", call, {**inputs, "dout": dout}, dx, wrong,
                        (dout * xhat).sum(axis=0), dout.sum(axis=0), n, "layernorm_backward"),
    ]  # fmt: skip


def _groupnorm_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 3)
    groups = int(rng.integers(2, 4))
    n, c, h, w = int(rng.integers(2, 4)), groups * int(rng.integers(2, 3)), int(rng.integers(2, 4)), 3
    x = rng.standard_normal((n, c, h, w)) * 2.0 + rng.standard_normal((n, c, 1, 1))
    gamma, beta = rng.uniform(0.5, 2.0, (1, c, 1, 1)), rng.standard_normal((1, c, 1, 1))
    dout = rng.standard_normal((n, c, h, w))
    grouped_axes = (2, 3, 4)
    xhat = standardize(x.reshape(n, groups, -1, h, w), grouped_axes, EPS)[0].reshape(x.shape)
    inputs = {"x": x, "gamma": gamma, "beta": beta}
    call = Call(
        "spatial_groupnorm_forward",
        (arg("x"), arg("gamma"), arg("beta"), literal(groups), {"dict": {"eps": literal(EPS)}}),
    )
    dx, *wrong = normalised_backward(x, gamma, dout, grouped_axes, groups)
    summed = (0, 2, 3)
    return [
        FunctionCheck("spatial_groupnorm_forward", "spatial_groupnorm_forward", (call,), inputs,
                      (Expect("out", 0, (0,), gamma * xhat + beta, Hints(batch=n, batch_axis=0)),), tuple(inputs)),
        _backward_check("spatial_groupnorm_backward", call, {**inputs, "dout": dout}, dx, wrong,
                        (dout * xhat).sum(axis=summed, keepdims=True), dout.sum(axis=summed, keepdims=True), n,
                        f"spatial_groupnorm_backward:{groups}"),
    ]  # fmt: skip


def build_norm(seed: int) -> list[FunctionCheck]:
    """The normalisation checks for ``seed``: batch, layer, spatial batch and spatial group norm."""
    return [
        *_batchnorm_checks(seed, False), *_layernorm_checks(seed), *_batchnorm_checks(seed, True),
        *_groupnorm_checks(seed),
    ]  # fmt: skip
