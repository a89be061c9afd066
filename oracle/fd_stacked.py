"""The stacked fast path of the directional finite differences: every target's ``±h`` copies in one forward pass.

The textbook path (:func:`oracle.fd_directions.directional_textbook`) runs each target by
itself, forward from the layer it moves. This path runs the ``±h`` copies of every target's
directions through *one* forward pass, with the same formulas. A copy joins the stack at the
first pre-activation it changes, ``z_m = z⁰_m ± h·s`` with ``s`` the change per unit step
(``z_m`` is linear in ``W_m``, ``b_m`` and ``a_{m-1}``): ``s = a_{m-1} v̂`` for ``W_m``, ``v̂`` for
``b_m`` and ``z_m``, ``v̂ W_m`` for ``a_{m-1}`` (``dL/da_{m-1}``, or ``dL/dx`` when ``m = 1``; the
textbook path multiplies ``(a ± h·v̂) W_m``, equal up to rounding). Layer by layer, the copies
that joined below are carried on by the affine map into the first rows of the layer's buffer
and the copies joining there are written after them, so the stack only grows. Work arrays
are kept per thread for the next call (:data:`SCRATCH`) and written with ``out=``. The
output's ``a_L`` (a loss form of its own) and targets too large for
:data:`oracle.fd_dense.MEMORY_BUDGET` take the textbook path; tests/test_finite_diff.py checks
the two paths against each other.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from oracle import fd_dense
from oracle.fd_dense import LIVE_COPIES, DenseNet
from oracle.fd_directions import Directions, directional_textbook, quotients
from oracle.fd_functions import activate, logit_terms, output_terms
from refbp.spec import KINKED_ACTIVATIONS, LOSS_OUTPUT_ACTIVATION, LayerSpec

SCRATCH_BYTES = 32 * 2**20
"""Per thread, work arrays of the fast directional path up to this many bytes in all are kept for the next call."""


class _Scratch(threading.local):
    """Work arrays of the fast directional path, by name, kept for the next call of the same thread.

    A fresh array of a few hundred kB costs page faults on first touch, and as the memory of
    a busy process goes back and forth between the allocator and the system, that cost came
    back on every call: on the 10,585-parameter network of ``refbp bench`` (3 directions per
    tensor) :func:`fd_directional_many` took 1.4–2.1 ms with fresh work arrays and 0.65 ms
    with these. No array of the scratch is ever part of a result.
    """

    def __init__(self) -> None:
        self.arrays: dict[tuple, np.ndarray] = {}
        self.nbytes = 0  # of the arrays kept

    def get(self, name: tuple, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        array = self.arrays.get(name)
        if array is not None and array.shape == shape and array.dtype == dtype:
            return array
        if array is not None:
            self.nbytes -= self.arrays.pop(name).nbytes
        array = np.empty(shape, dtype)
        if self.nbytes + array.nbytes <= SCRATCH_BYTES:
            self.arrays[name] = array
            self.nbytes += array.nbytes
        return array


SCRATCH = _Scratch()


def release_work_arrays() -> None:
    """Drop the work arrays this thread keeps for the fast directional path (at most ``SCRATCH_BYTES``)."""
    SCRATCH.arrays.clear()
    SCRATCH.nbytes = 0


def _joins_at(net: DenseNet, d: Directions) -> int | None:
    """The layer whose ``z`` a copy of ``d`` first differs in, or ``None`` for the output's ``a_L``."""
    if d.entry == "z":
        return d.start
    return d.start + 1 if d.start < net.spec.depth else None


def directional_stacked(net: DenseNet, checked: list[Directions]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every target's directions as one stack.

    Split into groups only to stay under :data:`oracle.fd_dense.MEMORY_BUDGET`; a target over
    it on its own, and the output's ``a_L``, take the textbook path.
    """
    results: list[Any] = [None] * len(checked)
    group: list[tuple[int, Directions, int]] = []
    group_bytes = 0
    widths = net.spec.widths
    # fd_dense.copy_bytes of each joining layer
    copy_bytes = [8 * net.batch * sum(widths[max(join - 1, 0) :]) for join in range(len(widths))]
    for index, d in enumerate(checked):
        join = _joins_at(net, d)
        cost = 0 if join is None else 2 * len(d.h) * LIVE_COPIES * copy_bytes[join]
        if join is None or cost > fd_dense.MEMORY_BUDGET:
            results[index] = directional_textbook(net, d)
            continue
        if group and group_bytes + cost > fd_dense.MEMORY_BUDGET:
            run_stack(net, group, results)
            group, group_bytes = [], 0
        group.append((index, d, join))
        group_bytes += cost
    if group:
        run_stack(net, group, results)
    return results


def run_stack(net: DenseNet, group: list[tuple[int, Directions, int]], results: list[Any]) -> None:
    """One forward pass for the copies of ``group``; fills ``results[index]`` for each of its targets.

    Rows of the stack: layer by layer, the targets joining there (in the order of
    ``group``) add a block of rows, first the ``+h`` copies of all their directions, then
    the ``−h`` copies in the same order.
    """
    spec, widths = net.spec, net.spec.widths
    group = sorted(group, key=lambda item: item[2])  # stable: the order of the targets within a layer stays
    plus: list[np.ndarray] = []  # rows of the +h copies, direction by direction, targets in group order
    rows = 0  # copies in the stack so far
    kinks = np.zeros(2 * sum(len(d.h) for _, d, _ in group), dtype=bool)
    a: np.ndarray | None = None  # a_{l-1} of the copies carried into layer l
    for layer in range(group[0][2], spec.depth + 1):
        joining = [d for _, d, join in group if join == layer]
        half = sum(len(d.h) for d in joining)
        z = SCRATCH.get(("z", layer), (rows + 2 * half, net.batch, widths[layer]))
        if a is not None:  # carry the copies that joined below: z_l = a_{l-1} W_l + b_l
            _affine_into(z[:rows], a, net.Ws[layer - 1], net.bs[layer - 1])
        if joining:
            steps = z[rows : rows + half]  # the change of z_l per unit step along each v̂, then z⁰_l ± h·that
            begin = 0
            for d in joining:
                _z_step(net, d, layer, steps[begin : begin + len(d.h)])
                begin += len(d.h)
            hs = np.concatenate([d.h for d in joining])[:, None, None]
            _plus_minus(net.zs[layer - 1], steps, hs, z[rows : rows + 2 * half])
            plus.append(np.arange(rows, rows + half))
            rows += 2 * half
        layer_spec = spec.layers[layer - 1]
        if layer_spec.activation in KINKED_ACTIVATIONS:
            kinks[:rows] |= _sign_changes(z, net.zs[layer - 1], layer)
        if layer < spec.depth:
            a = activate_into(z, layer_spec, layer)
    kind = spec.loss.kind
    if kind in LOSS_OUTPUT_ACTIVATION:
        terms = logit_terms(kind, z, net.T[None])
    else:
        terms = output_terms(kind, activate(z, spec.layers[-1]), net.T[None])
    plus_rows = np.concatenate(plus)
    minus_rows = np.concatenate([block + len(block) for block in plus])
    with np.errstate(invalid="ignore"):
        diff = (terms[plus_rows] - terms[minus_rows]).sum(axis=1) / net.divisor
    derivatives = quotients(net, [d for _, d, _ in group], diff, kinks[plus_rows] | kinks[minus_rows])
    for (index, _, _), result in zip(group, derivatives, strict=True):
        results[index] = result


def _affine_into(out: np.ndarray, a: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> None:
    """:func:`affine` of a stack ``a (S, B, n)`` written into ``out (S, B, m)`` (contiguous), one GEMM."""
    S, B, n = a.shape
    np.matmul(a.reshape(S * B, n), W, out=out.reshape(S * B, W.shape[1]))
    if b is not None:
        out += b


def _z_step(net: DenseNet, d: Directions, layer: int, out: np.ndarray) -> None:
    """How ``z_layer`` of every copy changes per unit of step along ``v̂`` (``out``: ``(k, B, n_layer)``).

    ``z_l`` is linear in ``W_l``, ``b_l`` and ``a_{l-1}``: the change is ``a_{l-1} v̂``, ``v̂``
    (broadcast over the batch), ``v̂`` itself for ``z_l``, and ``v̂ W_l`` for ``a_{l-1}``
    (``dL/da`` and ``dL/dx``; the textbook path multiplies ``(a ± h·v̂) W_l`` instead, which
    differs only in rounding).
    """
    quantity = d.key[1]
    if d.entry == "a":
        np.matmul(d.unit, net.Ws[layer - 1], out=out)
    elif quantity == "dL/dW":
        np.matmul(net.acts[layer - 1], d.unit, out=out)
    elif quantity == "dL/db":
        out[...] = d.unit[:, None, :]
    else:
        out[...] = d.unit


def _plus_minus(base: np.ndarray, steps: np.ndarray, hs: np.ndarray, out: np.ndarray) -> None:
    """``out[:k] = base + hs·steps``, ``out[k:] = base − hs·steps``; ``steps`` may be ``out[:k]`` itself."""
    k = len(hs)
    np.multiply(steps, hs, out=out[:k])
    np.subtract(base, out[:k], out=out[k:])
    np.add(base, out[:k], out=out[:k])


def _sign_changes(z: np.ndarray, z_ref: np.ndarray, layer: int) -> np.ndarray:
    """``(S,)``: copies with a pre-activation of another sign (−1, 0, +1) than ``z_ref``'s, as :func:`loss_terms`."""
    signs = np.sign(z, out=SCRATCH.get(("sign", layer), z.shape))
    differs = np.not_equal(signs, np.sign(z_ref), out=SCRATCH.get(("differs", layer), z.shape, bool))
    return differs.any(axis=(1, 2))


def activate_into(z: np.ndarray, layer: LayerSpec, number: int) -> np.ndarray:
    """:func:`activate` into scratch arrays, without its ``np.where`` (a select on a mask of random signs is slow).

    The same numbers: sigmoid is ``max(e, [z ≥ 0]) / (1 + e)`` with ``e = exp(−|z|)``, whose
    numerator is exactly 1 or ``e`` as in the two branches of :func:`activate`; relu is
    ``max(z, 0)`` and leaky relu ``max(z, slope·z)`` (for ``0 ≤ slope ≤ 1``), which differ
    from the ``where`` forms only in the sign of a zero. Softmax and other slopes use
    :func:`activate` itself.
    """
    kind = layer.activation
    if kind == "identity":
        return z
    if kind == "softmax" or (kind == "leaky_relu" and not 0.0 <= layer.negative_slope <= 1.0):
        return activate(z, layer)
    out = SCRATCH.get(("a", number), z.shape)
    if kind == "tanh":
        return np.tanh(z, out=out)
    if kind == "relu":
        return np.maximum(z, 0.0, out=out)
    if kind == "leaky_relu":
        return np.maximum(z, np.multiply(z, layer.negative_slope, out=out), out=out)
    e = SCRATCH.get(("exp", number), z.shape)  # sigmoid
    np.negative(np.abs(z, out=e), out=e)
    np.exp(e, out=e)
    numerator = np.maximum(e, np.greater_equal(z, 0.0, out=out), out=out)  # 1 where z ≥ 0, else e
    return np.divide(numerator, np.add(1.0, e, out=e), out=out)
