"""Directional finite differences: validated directions, the textbook path and random directions.

A whole quantity moves along a direction ``v̂ = v/‖v‖`` instead of one entry, as gradcheck's
fast mode and JAX's ``check_grads`` do; ``‖v‖·(L(θ + h·v̂) − L(θ − h·v̂)) / 2h`` is the
derivative along ``v``. :func:`check_directions` validates the directions of one target and
chooses its steps, :func:`directional_textbook` runs one target by itself forward from the
layer it moves, :func:`quotients` turns loss differences into derivatives; the stacked fast
path is :mod:`oracle.fd_stacked`, the public entry points are
:func:`oracle.finite_diff.fd_directional` and :func:`oracle.finite_diff.fd_directional_many`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracle.fd_dense import (
    EPS,
    STEP_SCALE,
    DenseNet,
    Key,
    chunks,
    copy_bytes,
    layout_swap,
    loss_terms,
    probability_domain,
)
from refbp.errors import InputError


def _quantity_base(net: DenseNet, key: Key) -> np.ndarray:
    """The unperturbed internal array a key perturbs."""
    layer, quantity = key
    if quantity == "dL/dW":
        return net.Ws[layer - 1]
    if quantity == "dL/db":
        b = net.bs[layer - 1]
        assert b is not None
        return b
    if quantity == "delta":
        return net.zs[layer - 1]
    return net.acts[layer]  # dL/da, and dL/dx as a_0


@dataclass
class Directions:
    """Validated directions of one target in the internal layout, and the step taken along each."""

    key: Key
    theta: np.ndarray  # the unperturbed internal array the target moves (W_l, b_l, z_l or a_l)
    unit: np.ndarray  # (k, *theta.shape): v̂ = v/‖v‖ (a zero direction stays zero)
    norms: np.ndarray  # (k,) ‖v‖
    h: np.ndarray  # (k,) step along v̂

    @property
    def start(self) -> int:
        """The layer whose ``z`` (``W``, ``b``, ``delta``) or ``a`` (``dL/da``; ``a_0 = x``) is moved."""
        return 0 if self.key[1] == "dL/dx" else self.key[0]

    @property
    def entry(self) -> str:
        return "a" if self.key[1] in ("dL/da", "dL/dx") else "z"


def check_directions(net: DenseNet, key: Key, directions: Any) -> Directions:
    """``directions`` for ``key`` validated, in the internal layout, with their norms and steps (both paths)."""
    spec = net.spec
    quantity = key[1]
    theta = _quantity_base(net, key)
    two_d = quantity != "dL/db"
    shape = layout_swap(theta, spec).shape if two_d else theta.shape
    try:
        V = np.asarray(directions, dtype=np.float64)  # never written (``unit`` may be V itself)
    except (TypeError, ValueError):
        raise InputError("directions", f"numbers of shape (k, {', '.join(map(str, shape))})", directions) from None
    if V.ndim != len(shape) + 1 or V.shape[1:] != shape:
        raise InputError("directions", f"shape (k, {', '.join(map(str, shape))})", f"shape {V.shape}")
    k = V.shape[0]
    flat = V.reshape(k, -1)
    norms = np.sqrt(np.einsum("ij,ij->i", flat, flat))
    # A finite norm means finite entries; only look at the entries when some norm is not.
    if not np.isfinite(norms).all() and not np.isfinite(V).all():
        raise InputError("directions", "finite numbers", "NaN or infinity")
    if two_d:
        V = layout_swap(V, spec)
    if abs(norms - 1.0).max() <= 4 * EPS:  # unit directions already (random_directions): v̂ = v to 4ε
        unit = V
    else:
        unit = V / np.where(norms > 0, norms, 1.0).reshape((-1,) + (1,) * (V.ndim - 1))
    step = STEP_SCALE * max(1.0, float(theta.max()), -float(theta.min()))
    d = Directions(key, theta, unit, norms, np.full(k, step))
    if probability_domain(net, d.start, d.entry):
        room = np.minimum(1.0, theta)
        if spec.loss.kind == "binary_cross_entropy":
            room = np.minimum(room, 1.0 - theta)
        moved = unit != 0
        ratio = np.where(moved, room[None] / np.where(moved, np.abs(unit), 1.0), np.inf)
        d.h = STEP_SCALE * np.minimum(1.0, ratio.reshape(V.shape[0], -1).min(axis=1))
    return d


def quotients(
    net: DenseNet, ds: list[Directions], diff: np.ndarray, kinks: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(d, kinks)`` per target from the data-loss differences ``ℓ(θ + h·v̂) − ℓ(θ − h·v̂)``.

    ``diff`` and ``kinks`` hold the directions of ``ds`` one target after another.
    """
    spec = net.spec
    sizes = [len(d.h) for d in ds]
    h, norms = (np.concatenate([getattr(d, name) for d in ds]) for name in ("h", "norms"))
    begin = 0
    for d, k in zip(ds, sizes, strict=True):
        quantity = d.key[1]
        if spec.l2.lam and (quantity == "dL/dW" or (quantity == "dL/db" and spec.l2.include_bias)):
            # λ/2·(‖θ + h·v̂‖² − ‖θ − h·v̂‖²) = 2λh·⟨v̂, θ⟩ exactly: the ‖θ‖² and h² terms cancel.
            diff[begin : begin + k] += 2.0 * spec.l2.lam * d.h * (d.unit.reshape(k, -1) @ d.theta.ravel())
        begin += k
    with np.errstate(divide="ignore", invalid="ignore"):  # h = 0: the boundary case of fd_directional
        out = norms * diff / (2.0 * h)
    zero = norms == 0
    out[zero] = 0.0
    kinks = kinks & ~zero
    out[kinks] = np.nan
    ends = np.cumsum(sizes).tolist()
    return [(out[end - k : end], kinks[end - k : end]) for k, end in zip(sizes, ends, strict=True)]


def directional_textbook(net: DenseNet, d: Directions) -> tuple[np.ndarray, np.ndarray]:
    """The textbook path: one target, its directions in chunks, each chunk forward from the moved layer."""
    spec = net.spec
    layer, quantity = d.key
    start, entry = d.start, d.entry
    z_ref = [z[None] for z in net.zs]
    first_layer = start if entry == "z" else start + 1
    k = len(d.h)
    diff = np.empty(k)
    kinks = np.zeros(k, dtype=bool)
    for idx in chunks(k, copy_bytes(net, first_layer, net.batch)):
        p = idx.size
        moved = d.unit[idx]  # how the injected value moves per unit of step, one row per direction
        if quantity == "dL/dW":
            # z_l is linear in W_l: z_l(W + s·v̂) = z_l + s·(a_{l-1} @ v̂).
            moved, base = np.matmul(net.acts[layer - 1][None], moved), net.zs[layer - 1]
        elif quantity == "dL/db":
            moved, base = moved[:, None, :], net.zs[layer - 1]
        else:
            base = d.theta
        hs = d.h[idx].reshape((-1,) + (1,) * (moved.ndim - 1))
        value = np.concatenate([base[None] + hs * moved, base[None] - hs * moved])
        terms, kink = loss_terms(spec, net.Ws, net.bs, start, entry, value, net.T[None], z_ref)
        with np.errstate(invalid="ignore"):
            diff[idx] = (terms[:p] - terms[p:]).sum(axis=1) / net.divisor
        kinks[idx] = kink[:p] | kink[p:]
    return quotients(net, [d], diff, kinks)[0]


def random_directions(shape: tuple[int, ...], k: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``k`` random unit directions ``(k, *shape)``: Gaussian entries, each direction of Frobenius norm 1."""
    rng = np.random.default_rng(rng)
    V = rng.standard_normal((k, *shape))
    norms = np.sqrt((V**2).reshape(k, -1).sum(axis=1))
    return V / norms.reshape((-1,) + (1,) * len(shape))


def random_directions_many(
    shapes: Iterable[tuple[int, ...]],
    k: int,
    rng: np.random.Generator | int | None = None,
    *,
    entries: str = "normal",
) -> list[np.ndarray]:
    """``k`` random unit directions for each of several shapes, from one draw: ``[(k, *shape), …]``.

    ``entries``:

    * ``"normal"``: Gaussian, the numbers of one :func:`random_directions` call per shape
      in turn on the same generator (NumPy draws normals one after another, so one long
      draw is the same sequence), up to the rounding of the norms;
    * ``"uniform"``: uniform on ``[−1, 1)``. Also independent, zero-mean and continuous,
      so ``⟨e, v⟩ = 0`` for a fixed error ``e ≠ 0`` has probability 0 just the same, and a
      single wrong entry is less likely to be weighted by a near-zero coefficient (at equal
      variance ``σ²``, ``|U|`` has density ``0.58/σ`` at 0, ``|N|`` ``0.80/σ``). NumPy
      draws them about 5× faster than normals, which matters when the draw is a large part
      of a directional check (``refbp bench``). gradcheck's fast mode draws uniform
      ``[0, 1)``, not centred.

    The arrays are views of one buffer.
    """
    if entries not in ("normal", "uniform"):
        raise InputError("entries", "normal or uniform", entries)
    rng = np.random.default_rng(rng)
    shapes = [tuple(shape) for shape in shapes]
    sizes = [math.prod(shape) for shape in shapes]
    total = k * sum(sizes)
    if entries == "normal":
        flat = rng.standard_normal(total)
    else:
        flat = rng.random(total)
        flat -= 0.5  # exactly (2u − 1)/2: the same directions as uniform on [−1, 1) once normalised
    out, begin = [], 0
    for shape, size in zip(shapes, sizes, strict=True):
        block = flat[begin : begin + k * size].reshape(k, size)
        begin += k * size
        if size:
            block /= np.sqrt(np.einsum("ij,ij->i", block, block))[:, None]
        out.append(block.reshape(k, *shape))
    return out
