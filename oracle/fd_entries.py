"""Per-entry central differences of a parameter (``W_l``, ``b_l``) or an intermediate (``z_l``, ``a_l``, ``x``).

Each entry ``θ`` is moved by ``±h`` with ``h = ε^{1/3}·max(1, |θ|)`` (:data:`oracle.fd_dense.STEP_SCALE`);
``θ ± h`` is rounded and the quotient divides by the span actually taken. A parameter entry
affects every example, so its copies carry the whole batch; an entry of ``z_l``, ``a_l`` or
``x`` affects one example only, so its copies carry just that example (``B = 1``) with the
batch's reduction divisor. For ``(L, "dL/da")`` of a from-logits loss the step keeps ``a ± h``
inside the loss's domain and turns one-sided at ``a ∈ {0, 1}`` (see :mod:`oracle.finite_diff`).
Kinked entries (a ``relu``/``leaky_relu`` pre-activation changing sign) come back as NaN with
their mask entry True.
"""

from __future__ import annotations

import numpy as np

from oracle.fd_dense import (
    ONE_SIDED_STEP,
    STEP_SCALE,
    DenseNet,
    chunks,
    copy_bytes,
    loss_terms,
    probability_domain,
)
from oracle.fd_functions import activate
from refbp.spec import KINKED_ACTIVATIONS


def fd_parameter(net: DenseNet, layer: int, which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Central differences for every entry of ``W_l`` (internal ``(n_{l-1}, n_l)``) or ``b_l``."""
    spec = net.spec
    theta = net.Ws[layer - 1] if which == "W" else net.bs[layer - 1]
    assert theta is not None
    flat = theta.ravel()
    h = STEP_SCALE * np.maximum(1.0, np.abs(flat))
    a_prev, z0 = net.acts[layer - 1], net.zs[layer - 1]
    width = z0.shape[1]
    penalised = which == "W" or spec.l2.include_bias
    z_ref = [z[None] for z in net.zs]
    values = np.empty(flat.size)
    kinks = np.zeros(flat.size, dtype=bool)
    # An entry of W_l or of a per-unit b_l moves one unit j of layer l. Below the output
    # layer its activation is elementwise, so only column j of a_l moves too, and
    # z_{l+1} = z⁰_{l+1} + Δa_j ⊗ W_{l+1}[j, :]: one column and a rank-1 update instead of
    # the whole layer l and a GEMM (exact in exact arithmetic; see _fd_one_unit).
    one_unit = layer < spec.depth and (which == "W" or flat.size == width)
    first_copied = layer + 1 if one_unit else layer
    for idx in chunks(flat.size, copy_bytes(net, first_copied, net.batch)):
        p = idx.size
        signed = np.concatenate([h[idx], -h[idx]])
        both = np.concatenate([idx, idx])
        rows = np.arange(2 * p)
        if one_unit:
            i, j = np.divmod(both, width) if which == "W" else (None, both)
            moved = signed[:, None] * (a_prev[:, i].T if which == "W" else 1.0)
            terms, kink = _fd_one_unit(net, layer, j, moved, z_ref)
        else:
            z = np.repeat(z0[None], 2 * p, axis=0)
            # z_l is linear in the parameters, so θ ± h changes it by an exactly known amount:
            # add that instead of multiplying again (exact, and one GEMM per entry cheaper).
            if which == "W":
                i, j = np.divmod(both, width)
                z[rows, :, j] += signed[:, None] * a_prev[:, i].T
            elif flat.size == width:  # per-unit bias: one column
                z[rows, :, both] += signed[:, None]
            else:  # shared bias: one scalar added to every unit
                z += signed[:, None, None]
            terms, kink = loss_terms(spec, net.Ws, net.bs, layer, "z", z, net.T[None], z_ref)
        # Per-example differences first, then the sum: the big equal parts cancel before summing.
        diff = (terms[:p] - terms[p:]).sum(axis=1) / net.divisor
        if penalised:  # only this entry's term of the penalty changes
            diff += 0.5 * spec.l2.lam * ((flat[idx] + h[idx]) ** 2 - (flat[idx] - h[idx]) ** 2)
        values[idx] = diff / (2.0 * h[idx])
        kinks[idx] = kink[:p] | kink[p:]
    values[kinks] = np.nan
    return values.reshape(theta.shape), kinks.reshape(theta.shape), h.reshape(theta.shape)


def _fd_one_unit(
    net: DenseNet, layer: int, units: np.ndarray, moved: np.ndarray, z_ref: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Loss terms ``(S, B)`` and kink flags ``(S,)``; copy ``s`` adds ``moved[s] (B,)`` to unit ``units[s]`` of ``z_l``.

    For a hidden layer ``l`` only: its activation is elementwise, so the copies differ from
    the unperturbed network in column ``units[s]`` of ``z_l`` and ``a_l`` alone, and
    ``z_{l+1} = z⁰_{l+1} + (a_l[:, j] − a⁰_l[:, j]) ⊗ W_{l+1}[j, :]``. A kink of layer ``l`` can
    only be in the moved column.
    """
    spec = net.spec
    layer_spec = spec.layers[layer - 1]
    z_column = net.zs[layer - 1][:, units].T + moved  # (S, B)
    change = activate(z_column, layer_spec) - net.acts[layer][:, units].T
    z_next = change[:, :, None] * net.Ws[layer][units][:, None, :]
    z_next += net.zs[layer][None]
    terms, kink = loss_terms(spec, net.Ws, net.bs, layer + 1, "z", z_next, net.T[None], z_ref)
    if layer_spec.activation in KINKED_ACTIVATIONS:
        kink |= (np.sign(z_column) != np.sign(z_ref[layer - 1][0][:, units].T)).any(axis=1)
    return terms, kink


def _activation_steps(
    net: DenseNet, layer: int, entry: str, flat: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward and backward step lengths ``(h_plus, h_minus)`` and the nominal step per entry."""
    if not probability_domain(net, layer, entry):
        h = STEP_SCALE * np.maximum(1.0, np.abs(flat))
        return h, h, h
    # Keep a ± h inside the loss's domain: (0, ∞) for CE's log a, (0, 1) for BCE.
    room = np.minimum(1.0, flat)
    if net.spec.loss.kind == "binary_cross_entropy":
        room = np.minimum(room, 1.0 - flat)
    h = STEP_SCALE * room
    central = h > 0
    low = flat < 0.5  # which boundary a one-sided difference must step away from
    h_plus = np.where(central, h, np.where(low, ONE_SIDED_STEP, 0.0))
    h_minus = np.where(central, h, np.where(low, 0.0, ONE_SIDED_STEP))
    return h_plus, h_minus, np.where(central, h, ONE_SIDED_STEP)


def fd_activation(net: DenseNet, layer: int, entry: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Central differences for every entry of ``z_l`` (entry ``z``) or ``a_l`` (``a``; ``a_0 = x``), ``(N, n_l)``."""
    spec = net.spec
    base = net.zs[layer - 1] if entry == "z" else net.acts[layer]
    width = base.shape[1]
    flat = base.ravel()
    h_plus, h_minus, nominal = _activation_steps(net, layer, entry, flat)
    values = np.empty(flat.size)
    kinks = np.zeros(flat.size, dtype=bool)
    first_layer = layer if entry == "z" else layer + 1
    for idx in chunks(flat.size, copy_bytes(net, first_layer, 1)):
        p = idx.size
        example, unit = np.divmod(idx, width)
        examples, units = np.concatenate([example, example]), np.concatenate([unit, unit])
        rows = np.arange(2 * p)
        # Only this example's term of the loss depends on the entry: each copy carries one example.
        v = base[examples].copy()
        v[rows, units] = np.concatenate([flat[idx] + h_plus[idx], flat[idx] - h_minus[idx]])
        span = v[rows[:p], unit] - v[rows[p:], unit]  # the step actually taken after rounding
        z_ref = [z[examples][:, None, :] for z in net.zs]
        terms, kink = loss_terms(spec, net.Ws, net.bs, layer, entry, v[:, None, :], net.T[examples][:, None, :], z_ref)
        with np.errstate(invalid="ignore"):  # inf − inf only where the loss itself is infinite
            values[idx] = (terms[:p, 0] - terms[p:, 0]) / net.divisor / span
        kinks[idx] = kink[:p] | kink[p:]
    values[kinks] = np.nan
    return values.reshape(base.shape), kinks.reshape(base.shape), nominal.reshape(base.shape)
