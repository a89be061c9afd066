"""Central finite differences of the loss: the third, independent way to get gradients.

Every quantity is obtained by perturbing one thing and re-evaluating the loss, in
float64 whatever ``spec.dtype`` says. The module has its own small forward pass and
imports only refbp's data definitions (spec, trace names, errors, input validation),
never refbp's activations, losses or network code. The formulas follow the contract in
:mod:`refbp.spec`.

Quantities (keys ``(layer, quantity)``, layers 1-based as in :mod:`refbp.trace`):

``(l, "dL/dW")``, ``(l, "dL/db")``  perturb one entry of ``W_l`` / ``b_l`` (penalty included).
``(l, "delta")``   perturb one entry of ``z_l`` and run the rest from layer ``l``'s activation.
``(l, "dL/da")``   perturb one entry of ``a_l`` and run from layer ``l + 1``. For the output
                   layer of a from-logits loss the loss is written in the probabilities
                   ``a_L`` (CE ``−Σ t·log a``, BCE ``−Σ [t·log a + (1 − t)·log(1 − a)]``,
                   ``0·log 0 = 0``, same reduction); for ``half_sse``/``mse`` it is the
                   ordinary loss of ``a_L``.
``(0, "dL/dx")``   perturb one entry of the input.

Shapes and layouts are the spec's: ``in_out`` has ``X``, ``z_l``, ``a_l`` as ``(N, n_l)`` and
``W_l`` as ``(n_{l-1}, n_l)``; ``out_in`` transposes all of them. Internally everything is
stacked as ``(S, B, n)``: ``S`` perturbed copies ("stack" axis), ``B`` examples, ``n`` units.

Vectorisation: the unperturbed forward is computed once; a perturbation in layer ``l`` runs
only layers ``≥ l``, on a stack of ``2P`` copies (``+h`` and ``−h`` for ``P`` entries at once),
chunked to stay under :data:`MEMORY_BUDGET`. A parameter entry affects every example, so
its copies carry the whole batch; an entry of ``z_l``, ``a_l`` or ``x`` affects one example
only, so its copies carry just that example (``B = 1``) with the batch's reduction divisor.
Terms of the loss that the perturbation cannot change (the other examples, the other
parameters' penalty) cancel exactly in ``L(θ+h) − L(θ−h)`` and are not evaluated, which
also keeps them out of the round-off.

Step and error model. ``h = ε^{1/3}·max(1, |θ|)`` with ``ε`` the float64 machine epsilon
(``h ≈ 6.06e-6`` for ``|θ| ≤ 1``); ``θ ± h`` is rounded and the quotient divides by the
span actually taken. The central difference ``(L(θ+h) − L(θ−h)) / 2h`` then errs by

* truncation ``h²/6·|∂³L/∂θ³|`` (zero for a loss quadratic in ``θ``), plus
* round-off ``≈ ε·|ℓ|/h``, ``ℓ`` the loss terms that were evaluated (the data loss for a
  parameter, one example's term for ``z``/``a``/``x``);

with this step both are ``≈ ε^{2/3} ≈ 3.7e-11`` times the natural scales (``|ℓ|``,
``|∂³L|``), i.e. about ten significant digits *relative to the loss*, not to each entry:
a gradient entry far smaller than ``|L|`` has a correspondingly larger relative error. See
:func:`suggested_tolerance`.

Domain of the probability form: for ``(L, "dL/da")`` with CE/BCE the step is shrunk to
``ε^{1/3}·min(1, a, 1 − a)`` (CE: ``min(1, a)``) so that ``a ± h`` stays inside ``(0, 1)``;
at ``a`` exactly 0 or 1 a one-sided difference with step ``√ε`` into the interior is used,
which yields the true ``±inf`` where the derivative is infinite.

Directional derivatives (:func:`fd_directional`, :func:`fd_directional_many`) move a whole
quantity along a direction instead of one entry, as gradcheck's fast mode and JAX's
``check_grads`` do. :func:`fd_directional_many` runs the ``±h`` copies of every target's
directions as one stack through one forward pass (the fast path; ``stacked=False`` runs the
targets one by one, the textbook path), its work arrays kept per thread between calls.

Kinks. For ``relu``/``leaky_relu`` layers an entry is a *kink* when its perturbation moves
any affected downstream pre-activation of such a layer across 0, i.e. the sign (−1, 0 or +1)
of some pre-activation differs between the ``−h``, unperturbed and ``+h`` evaluations (a
pre-activation exactly 0 that the perturbation moves counts; one it leaves at 0 does not
enter the difference quotient). The difference quotient there mixes the two one-sided
slopes, so its value is NaN and its mask entry True. Pre-activations count from the
perturbed layer on: layer ``l`` itself for ``W_l``, ``b_l`` and ``z_l``; layers ``> l`` for ``a_l``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracle.fd_functions import activate as _activate
from oracle.fd_functions import logit_terms as _logit_terms
from oracle.fd_functions import output_terms as _output_terms
from oracle.fd_typed import typed_gradients, typed_targets
from refbp.data import as_inputs, as_targets
from refbp.errors import InputError
from refbp.sequential_spec import SequentialSpec
from refbp.spec import KINKED_ACTIVATIONS, LOSS_OUTPUT_ACTIVATION, LayerSpec, NetworkSpec

__all__ = [
    "EPS",
    "MEMORY_BUDGET",
    "STEP_SCALE",
    "FiniteDifferences",
    "fd_directional",
    "fd_directional_many",
    "fd_gradients",
    "fd_targets",
    "preactivations",
    "random_directions",
    "random_directions_many",
    "release_work_arrays",
    "stacked_loss",
    "suggested_tolerance",
]

EPS = float(np.finfo(np.float64).eps)
STEP_SCALE = EPS ** (1.0 / 3.0)
"""``ε^{1/3} ≈ 6.06e-6``: balances ``O(h²)`` truncation against ``O(ε/h)`` round-off."""
ONE_SIDED_STEP = math.sqrt(EPS)
"""``√ε ≈ 1.5e-8``: the balancing step of a one-sided difference (used only at ``a ∈ {0, 1}``)."""
MEMORY_BUDGET = 32 * 2**20
"""Bytes a chunk of stacked copies may occupy (roughly). Smaller chunks keep each array of a
chunk nearer the caches: 32 MiB ran the full check of a 13k-parameter network 1.3–1.6× faster
than 256 MiB (``refbp bench``), and far smaller chunks lose to per-chunk overhead."""
_LIVE_COPIES = 6  # arrays of one layer's (S, B, n) size alive at once: z, a, signs, temporaries

Key = tuple[int, str]


@dataclass
class FiniteDifferences:
    """Per-entry central differences.

    ``values[key]`` is float64 with the shape of the quantity in the spec's layout (e.g.
    ``W_l``'s shape for ``(l, "dL/dW")``, ``(N, n_l)``/``(n_l, N)`` for ``delta``), NaN
    where ``kinks[key]`` (bool, same shape) is True. ``steps[key]`` holds the nominal step
    ``h`` of every entry (same shape; ``√ε`` where a one-sided difference was taken).
    ``loss`` is the unperturbed total loss (data + penalty), the natural scale of the
    absolute error (see :func:`suggested_tolerance`).
    """

    values: dict[Key, np.ndarray]
    kinks: dict[Key, np.ndarray]
    steps: dict[Key, np.ndarray]
    loss: float


# -- the stacked forward pass ----------------------------------------------------------


def _affine(a: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``a @ W + b`` for a stack ``a (S, B, n)``; ``W (n, m)`` or ``(S, n, m)``; ``b (m,)``, ``(1,)`` or stacked."""
    if W.ndim == 2:
        # One big GEMM over all copies instead of S small ones.
        S, B, n = a.shape
        z = (a.reshape(S * B, n) @ W).reshape(S, B, W.shape[1])
    else:
        z = np.matmul(a, W)
    if b is not None:
        z += b if b.ndim == 1 else b[:, None, :]  # z is a fresh array: add in place
    return z


def _forward_from(
    spec: NetworkSpec,
    Ws: list[np.ndarray],
    bs: list[np.ndarray | None],
    start: int,
    entry: str,
    value: np.ndarray,
    *,
    output_activation: bool = True,
) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """Yield ``(l, z_l, a_l)`` for the layers after an injected ``value``.

    ``entry == "z"``: ``value`` is ``z_start`` and the first layer yielded is ``start``;
    ``entry == "a"``: ``value`` is ``a_start`` (``a_0 = x``) and layers ``start + 1 …`` follow.
    Without ``output_activation`` the output layer's ``a_L`` is ``None`` (a from-logits loss
    needs only ``z_L``).
    """
    a = value
    first = start if entry == "z" else start + 1
    for layer in range(first, spec.depth + 1):
        z = value if (entry == "z" and layer == start) else _affine(a, Ws[layer - 1], bs[layer - 1])
        a = _activate(z, spec.layers[layer - 1]) if output_activation or layer < spec.depth else None
        yield layer, z, a


def _loss_terms(
    spec: NetworkSpec,
    Ws: list[np.ndarray],
    bs: list[np.ndarray | None],
    start: int,
    entry: str,
    value: np.ndarray,
    T: np.ndarray,
    z_ref: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run from an injected ``value (S, B, n)`` to the loss.

    Returns the per-example data loss ``(S, B)`` (summed over units, not yet divided by
    the reduction) and kink flags ``(S,)``: True where a ``relu``/``leaky_relu``
    pre-activation has another sign than ``z_ref[l-1]`` (broadcastable to ``(S, B, n_l)``).
    """
    kind = spec.loss.kind
    kink = np.zeros(value.shape[0], dtype=bool)
    if entry == "a" and start == spec.depth:
        return _output_terms(kind, value, T), kink
    z = a = value
    from_logits = kind in LOSS_OUTPUT_ACTIVATION
    for layer, z_layer, a_layer in _forward_from(spec, Ws, bs, start, entry, value, output_activation=not from_logits):
        z, a = z_layer, a_layer
        if z_ref is not None and spec.layers[layer - 1].activation in KINKED_ACTIVATIONS:
            kink |= (np.sign(z) != np.sign(z_ref[layer - 1])).any(axis=(1, 2))
    if from_logits:
        return _logit_terms(kind, z, T), kink
    return _output_terms(kind, a, T), kink


# -- validation and the unperturbed network ------------------------------------------------


def _divisor(spec: NetworkSpec, batch: int) -> float:
    """What the summed data loss is divided by: 1 (sum), N, or N·k for ``mse`` (mean)."""
    if spec.loss.reduction == "sum":
        return 1.0
    return float(batch * spec.outputs) if spec.loss.kind == "mse" else float(batch)


def layout_swap(array: np.ndarray, spec: NetworkSpec) -> np.ndarray:
    """Spec layout ↔ internal rows-are-examples layout (transpose the last two axes for ``out_in``)."""
    return array if spec.layout == "in_out" else np.swapaxes(array, -1, -2)


def _check_spec(spec: Any) -> NetworkSpec:
    if not isinstance(spec, NetworkSpec):
        raise InputError("spec", "a NetworkSpec", type(spec).__name__)
    # Validate data at float64: FD evaluates at the given numbers, never rounded to float32.
    return spec if spec.dtype == "float64" else spec.replace(dtype="float64")


def _check_params(spec: NetworkSpec, params: Any, *, stacked: bool = False) -> tuple[dict[str, np.ndarray], int]:
    """float64 copies with exactly ``spec.parameter_shapes()``; with ``stacked`` a leading ``(S,)`` is allowed.

    Returns the arrays and the common stack size (1 when nothing is stacked).
    """
    if not isinstance(params, Mapping):
        raise InputError("params", "a mapping {W1: ..., b1: ...}", type(params).__name__, source="parameters")
    shapes = spec.parameter_shapes()
    unknown = sorted(set(map(str, params)) - set(shapes))
    if unknown:
        expected = "a parameter of the spec (" + ", ".join(shapes) + ")"
        raise InputError(unknown[0], expected, "unknown name", source="parameters")
    checked: dict[str, np.ndarray] = {}
    sizes: set[int] = set()
    for name, shape in shapes.items():
        if name not in params:
            raise InputError(name, f"an array of shape {shape}", "missing", source="parameters")
        try:
            array = np.array(params[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(name, f"numbers in an array of shape {shape}", params[name], source="parameters") from None
        if stacked and array.ndim == len(shape) + 1 and array.shape[1:] == shape:
            sizes.add(array.shape[0])
        elif array.shape != shape:
            expected = f"shape {shape}" + (f" or (S, {', '.join(map(str, shape))})" if stacked else "")
            raise InputError(name, expected, f"shape {array.shape}", source="parameters")
        if not np.all(np.isfinite(array)):
            raise InputError(name, "finite numbers", "NaN or infinity", source="parameters")
        checked[name] = array
    if len(sizes) > 1:
        raise InputError("params", "one common stack size S", sorted(sizes), source="parameters")
    return checked, sizes.pop() if sizes else 1


def _dense_targets(spec: NetworkSpec, T: np.ndarray) -> np.ndarray:
    """Validated targets → float64 ``(N, k)`` in the internal layout (integer labels one-hot encoded)."""
    if spec.loss.targets == "index":
        return np.eye(spec.outputs)[T]
    return np.ascontiguousarray(layout_swap(T.astype(np.float64), spec))


def _internal_params(spec: NetworkSpec, params: dict[str, np.ndarray]) -> tuple[list, list]:
    Ws = [layout_swap(params[f"W{layer}"], spec) for layer in range(1, spec.depth + 1)]
    bs = [params.get(f"b{layer}") for layer in range(1, spec.depth + 1)]
    return Ws, bs


def _penalty(spec: NetworkSpec, params: dict[str, np.ndarray]) -> Any:
    """``λ/2·Σ‖W_l‖²`` (+ ``‖b_l‖²``); ``(S,)`` when some arrays carry a leading stack axis."""
    total: Any = 0.0
    for name, array in params.items():
        if name.startswith("W") or spec.l2.include_bias:
            extra = array.ndim - (2 if name.startswith("W") else 1)
            total = total + (array**2).reshape((*array.shape[:extra], -1)).sum(axis=-1)
    return 0.5 * spec.l2.lam * total


@dataclass
class _Net:
    """A validated float64 network and its unperturbed forward, in the internal ``(N, n)`` layout."""

    spec: NetworkSpec
    params: dict[str, np.ndarray]
    Ws: list[np.ndarray]  # W_l as (n_{l-1}, n_l)
    bs: list[np.ndarray | None]  # (n_l,), (1,) or None
    T: np.ndarray  # (N, k) dense
    zs: list[np.ndarray]  # z_1 … z_L, (N, n_l)
    acts: list[np.ndarray]  # a_0 = x, a_1 … a_L, (N, n_l)
    divisor: float
    loss: float

    @property
    def batch(self) -> int:
        return self.acts[0].shape[0]


def _prepare(spec: Any, params: Any, X: Any, T: Any, *, with_loss: bool = True) -> _Net:
    """Validated inputs and the unperturbed forward (``loss``: NaN without ``with_loss``; directional FD needs none)."""
    spec = _check_spec(spec)
    x = as_inputs(spec, X)
    batch = int(x.shape[spec.batch_axis])
    targets = _dense_targets(spec, as_targets(spec, T, batch))
    checked, _ = _check_params(spec, params)
    Ws, bs = _internal_params(spec, checked)
    x = np.ascontiguousarray(layout_swap(x, spec))
    zs, acts = [], [x]
    for _, z, a in _forward_from(spec, Ws, bs, 0, "a", x[None]):
        zs.append(z[0])
        acts.append(a[0])
    divisor = _divisor(spec, batch)
    loss = math.nan
    if with_loss:
        terms, _ = _loss_terms(spec, Ws, bs, spec.depth, "z", zs[-1][None], targets[None])
        loss = float(terms.sum() / divisor + _penalty(spec, checked))
    return _Net(spec, checked, Ws, bs, targets, zs, acts, divisor, loss)


def _chunks(n: int, per_copy_bytes: int) -> Iterator[np.ndarray]:
    """Index blocks of ``P`` entries such that ``2P`` copies fit :data:`MEMORY_BUDGET`."""
    size = max(1, MEMORY_BUDGET // (2 * _LIVE_COPIES * max(per_copy_bytes, 1)))
    for begin in range(0, n, size):
        yield np.arange(begin, min(begin + size, n))


def _copy_bytes(net: _Net, first_layer: int, batch: int) -> int:
    """Bytes of one copy of the injected layer (``first_layer − 1``) and layers ``first_layer … L``."""
    return 8 * batch * sum(net.spec.widths[max(first_layer - 1, 0) :])


# -- public API ----------------------------------------------------------------------------


def fd_targets(spec: NetworkSpec) -> list[Key]:
    """Every ``(layer, quantity)`` finite differences can produce, in backward order.

    Output layer first; within a layer ``dL/da``, ``delta``, ``dL/dW``, ``dL/db`` (the last
    only with a bias); ``(0, "dL/dx")`` last.
    """
    if isinstance(spec, SequentialSpec):
        return typed_targets(spec)
    spec = _check_spec(spec)
    keys: list[Key] = []
    for layer in range(spec.depth, 0, -1):
        for quantity in ("dL/da", "delta", "dL/dW", "dL/db"):
            if quantity != "dL/db" or spec.bias_shape(layer) is not None:
                keys.append((layer, quantity))
    keys.append((0, "dL/dx"))
    return keys


def _check_target(spec: NetworkSpec, key: Any, allowed: list[Key] | None = None) -> Key:
    """``key`` as a ``(layer, quantity)`` of :func:`fd_targets` (``allowed``, when the caller has it already)."""
    allowed = fd_targets(spec) if allowed is None else allowed
    try:
        normal = (int(key[0]), str(key[1]))
    except (TypeError, ValueError, IndexError):
        normal = None
    if normal not in allowed:
        raise InputError("target", "one of " + ", ".join(f"({layer}, {q!r})" for layer, q in allowed), key)
    return normal


def fd_gradients(
    spec: NetworkSpec,
    params: Mapping[str, Any],
    X: Any,
    T: Any,
    targets: Iterable[Key] | None = None,
    *,
    buffers: Mapping[str, Any] | None = None,
) -> FiniteDifferences:
    """Per-entry central differences of the total loss.

    Args:
        spec: the network (its ``dtype`` is ignored: everything runs in float64).
        params: ``{"W1": …, "b1": …}`` with exactly ``spec.parameter_shapes()``.
        X: inputs, ``(N, inputs)`` (``in_out``) or ``(inputs, N)`` (``out_in``).
        T: targets: labels ``(N,)`` for ``index`` targets, else the output's shape.
        targets: keys from :func:`fd_targets` (default: all of them).

    Returns:
        :class:`FiniteDifferences` with one array per key, shaped like the quantity.

    Raises:
        InputError: bad parameters, inputs, targets or keys.

    A typed network (:class:`~refbp.sequential_spec.SequentialSpec`, with its ``buffers``) is
    differenced by :mod:`oracle.fd_typed`; its ``steps`` are not recorded.
    """
    if isinstance(spec, SequentialSpec):
        values, kinks, loss = typed_gradients(spec, params, X, T, targets, buffers=buffers)
        return FiniteDifferences(values=values, kinks=kinks, steps={}, loss=loss)
    with np.errstate(under="ignore"):  # exp(−|z|) flushing to 0 is the intended limit
        net = _prepare(spec, params, X, T)
        keys = fd_targets(net.spec) if targets is None else [_check_target(net.spec, k) for k in targets]
        result = FiniteDifferences(values={}, kinks={}, steps={}, loss=net.loss)
        for key in keys:
            layer, quantity = key
            if quantity in ("dL/dW", "dL/db"):
                values, kinks, steps = _fd_parameter(net, layer, quantity[-1])
            else:
                values, kinks, steps = _fd_activation(net, layer, "z" if quantity == "delta" else "a")
            if quantity != "dL/db":  # every other quantity is 2-D in the spec's layout
                values, kinks, steps = (np.ascontiguousarray(layout_swap(v, net.spec)) for v in (values, kinks, steps))
            result.values[key], result.kinks[key], result.steps[key] = values, kinks, steps
    return result


def _fd_parameter(net: _Net, layer: int, which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    for idx in _chunks(flat.size, _copy_bytes(net, first_copied, net.batch)):
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
            terms, kink = _loss_terms(spec, net.Ws, net.bs, layer, "z", z, net.T[None], z_ref)
        # Per-example differences first, then the sum: the big equal parts cancel before summing.
        diff = (terms[:p] - terms[p:]).sum(axis=1) / net.divisor
        if penalised:  # only this entry's term of the penalty changes
            diff += 0.5 * spec.l2.lam * ((flat[idx] + h[idx]) ** 2 - (flat[idx] - h[idx]) ** 2)
        values[idx] = diff / (2.0 * h[idx])
        kinks[idx] = kink[:p] | kink[p:]
    values[kinks] = np.nan
    return values.reshape(theta.shape), kinks.reshape(theta.shape), h.reshape(theta.shape)


def _fd_one_unit(
    net: _Net, layer: int, units: np.ndarray, moved: np.ndarray, z_ref: list[np.ndarray]
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
    change = _activate(z_column, layer_spec) - net.acts[layer][:, units].T
    z_next = change[:, :, None] * net.Ws[layer][units][:, None, :]
    z_next += net.zs[layer][None]
    terms, kink = _loss_terms(spec, net.Ws, net.bs, layer + 1, "z", z_next, net.T[None], z_ref)
    if layer_spec.activation in KINKED_ACTIVATIONS:
        kink |= (np.sign(z_column) != np.sign(z_ref[layer - 1][0][:, units].T)).any(axis=1)
    return terms, kink


def _probability_domain(net: _Net, layer: int, entry: str) -> bool:
    return entry == "a" and layer == net.spec.depth and net.spec.loss.kind in LOSS_OUTPUT_ACTIVATION


def _activation_steps(net: _Net, layer: int, entry: str, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward and backward step lengths ``(h_plus, h_minus)`` and the nominal step per entry."""
    if not _probability_domain(net, layer, entry):
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


def _fd_activation(net: _Net, layer: int, entry: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Central differences for every entry of ``z_l`` (entry ``z``) or ``a_l`` (``a``; ``a_0 = x``), ``(N, n_l)``."""
    spec = net.spec
    base = net.zs[layer - 1] if entry == "z" else net.acts[layer]
    width = base.shape[1]
    flat = base.ravel()
    h_plus, h_minus, nominal = _activation_steps(net, layer, entry, flat)
    values = np.empty(flat.size)
    kinks = np.zeros(flat.size, dtype=bool)
    first_layer = layer if entry == "z" else layer + 1
    for idx in _chunks(flat.size, _copy_bytes(net, first_layer, 1)):
        p = idx.size
        example, unit = np.divmod(idx, width)
        examples, units = np.concatenate([example, example]), np.concatenate([unit, unit])
        rows = np.arange(2 * p)
        # Only this example's term of the loss depends on the entry: each copy carries one example.
        v = base[examples].copy()
        v[rows, units] = np.concatenate([flat[idx] + h_plus[idx], flat[idx] - h_minus[idx]])
        span = v[rows[:p], unit] - v[rows[p:], unit]  # the step actually taken after rounding
        z_ref = [z[examples][:, None, :] for z in net.zs]
        terms, kink = _loss_terms(spec, net.Ws, net.bs, layer, entry, v[:, None, :], net.T[examples][:, None, :], z_ref)
        with np.errstate(invalid="ignore"):  # inf − inf only where the loss itself is infinite
            values[idx] = (terms[:p, 0] - terms[p:, 0]) / net.divisor / span
        kinks[idx] = kink[:p] | kink[p:]
    values[kinks] = np.nan
    return values.reshape(base.shape), kinks.reshape(base.shape), nominal.reshape(base.shape)


def _quantity_base(net: _Net, key: Key) -> np.ndarray:
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


def fd_directional(
    spec: NetworkSpec, params: Mapping[str, Any], X: Any, T: Any, target: Key, directions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Directional derivatives of the loss, like ``torch.autograd.gradcheck``'s fast mode.

    Args:
        target: the quantity to move, a key from :func:`fd_targets` (e.g. ``(2, "dL/dW")``
            moves ``W_2``; ``(1, "delta")`` moves ``z_1`` of every example at once).
        directions: ``(k, *shape)``, ``shape`` the quantity's shape in the spec's layout.

    Returns:
        ``(d, kinks)``, both ``(k,)``. With ``v̂ = v/‖v‖`` (Frobenius norm) and
        ``h = ε^{1/3}·max(1, max|θ|)``, ``d = ‖v‖·(L(θ + h·v̂) − L(θ − h·v̂)) / 2h``: the
        derivative along the *unnormalised* ``v``, i.e. ``⟨∇L, v⟩``. A zero direction gives 0.
        ``kinks`` flags directions that move a ``relu``/``leaky_relu`` pre-activation across 0;
        their ``d`` is NaN. For ``(L, "dL/da")`` of CE/BCE the step is shrunk so that
        ``a ± h·v̂`` stays in the domain; a direction pushing an ``a`` at exactly 0 or 1
        outward gives NaN (not flagged).

    Raises:
        InputError: bad inputs, an unknown target or directions of the wrong shape.
    """
    return fd_directional_many(spec, params, X, T, {target: directions})[target]


def fd_directional_many(
    spec: NetworkSpec,
    params: Mapping[str, Any],
    X: Any,
    T: Any,
    directions: Mapping[Key, np.ndarray],
    *,
    stacked: bool = True,
) -> dict[Key, tuple[np.ndarray, np.ndarray]]:
    """:func:`fd_directional` for several targets of one network, validated and run forward once.

    Args:
        directions: ``{target: (k, *shape)}`` as the ``target``/``directions`` arguments of
            :func:`fd_directional`.
        stacked: run the ``±h`` copies of every target's directions through one stacked
            forward pass (the fast path, see :func:`_directional_stacked`); ``False`` runs
            the targets one after another (the textbook path). Both give the same numbers
            up to round-off in the last bits of the loss.

    Returns:
        ``{target: (d, kinks)}``, each exactly what :func:`fd_directional` returns for it.
    """
    with np.errstate(under="ignore"):
        net = _prepare(spec, params, X, T, with_loss=False)
        allowed = fd_targets(net.spec)
        checked = [_check_directions(net, _check_target(net.spec, k, allowed), v) for k, v in directions.items()]
        results = _directional_stacked(net, checked) if stacked else [_directional(net, d) for d in checked]
        return dict(zip(directions, results, strict=True))


@dataclass
class _Directions:
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


def _check_directions(net: _Net, key: Key, directions: Any) -> _Directions:
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
    d = _Directions(key, theta, unit, norms, np.full(k, step))
    if _probability_domain(net, d.start, d.entry):
        room = np.minimum(1.0, theta)
        if spec.loss.kind == "binary_cross_entropy":
            room = np.minimum(room, 1.0 - theta)
        moved = unit != 0
        ratio = np.where(moved, room[None] / np.where(moved, np.abs(unit), 1.0), np.inf)
        d.h = STEP_SCALE * np.minimum(1.0, ratio.reshape(V.shape[0], -1).min(axis=1))
    return d


def _quotients(
    net: _Net, ds: list[_Directions], diff: np.ndarray, kinks: np.ndarray
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


def _directional(net: _Net, d: _Directions) -> tuple[np.ndarray, np.ndarray]:
    """The textbook path: one target, its directions in chunks, each chunk forward from the moved layer."""
    spec = net.spec
    layer, quantity = d.key
    start, entry = d.start, d.entry
    z_ref = [z[None] for z in net.zs]
    first_layer = start if entry == "z" else start + 1
    k = len(d.h)
    diff = np.empty(k)
    kinks = np.zeros(k, dtype=bool)
    for idx in _chunks(k, _copy_bytes(net, first_layer, net.batch)):
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
        terms, kink = _loss_terms(spec, net.Ws, net.bs, start, entry, value, net.T[None], z_ref)
        with np.errstate(invalid="ignore"):
            diff[idx] = (terms[:p] - terms[p:]).sum(axis=1) / net.divisor
        kinks[idx] = kink[:p] | kink[p:]
    return _quotients(net, [d], diff, kinks)[0]


# -- directional derivatives: the stacked fast path ----------------------------------------
#
# The textbook path above runs each target by itself, forward from the layer it moves. The
# fast path runs the ±h copies of every target's directions through *one* forward pass, with
# the same formulas. A copy joins the stack at the first pre-activation it changes, z_m =
# z⁰_m ± h·s with s the change per unit step (z_m is linear in W_m, b_m and a_{m-1}):
# s = a_{m-1} v̂ for W_m, v̂ for b_m and z_m, v̂ W_m for a_{m-1} (dL/da_{m-1}, or dL/dx when
# m = 1; the textbook path multiplies (a ± h·v̂) W_m, equal up to rounding). Layer by layer,
# the copies that joined below are carried on by the affine map into the first rows of the
# layer's buffer and the copies joining there are written after them, so the stack only
# grows. Work arrays are kept per thread for the next call (:class:`_Scratch`) and written
# with ``out=``. The output's a_L (a loss form of its own) and targets too large for the
# memory budget take the textbook path; tests/test_finite_diff.py checks the two paths
# against each other.

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


_SCRATCH = _Scratch()


def release_work_arrays() -> None:
    """Drop the work arrays this thread keeps for the fast directional path (at most ``SCRATCH_BYTES``)."""
    _SCRATCH.arrays.clear()
    _SCRATCH.nbytes = 0


def _joins_at(net: _Net, d: _Directions) -> int | None:
    """The layer whose ``z`` a copy of ``d`` first differs in, or ``None`` for the output's ``a_L``."""
    if d.entry == "z":
        return d.start
    return d.start + 1 if d.start < net.spec.depth else None


def _directional_stacked(net: _Net, checked: list[_Directions]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every target's directions as one stack (split into groups only to stay under :data:`MEMORY_BUDGET`)."""
    results: list[Any] = [None] * len(checked)
    group: list[tuple[int, _Directions, int]] = []
    group_bytes = 0
    widths = net.spec.widths
    copy_bytes = [8 * net.batch * sum(widths[max(join - 1, 0) :]) for join in range(len(widths))]  # _copy_bytes
    for index, d in enumerate(checked):
        join = _joins_at(net, d)
        cost = 0 if join is None else 2 * len(d.h) * _LIVE_COPIES * copy_bytes[join]
        if join is None or cost > MEMORY_BUDGET:
            results[index] = _directional(net, d)
            continue
        if group and group_bytes + cost > MEMORY_BUDGET:
            _run_stack(net, group, results)
            group, group_bytes = [], 0
        group.append((index, d, join))
        group_bytes += cost
    if group:
        _run_stack(net, group, results)
    return results


def _run_stack(net: _Net, group: list[tuple[int, _Directions, int]], results: list[Any]) -> None:
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
        z = _SCRATCH.get(("z", layer), (rows + 2 * half, net.batch, widths[layer]))
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
            a = _activate_into(z, layer_spec, layer)
    kind = spec.loss.kind
    if kind in LOSS_OUTPUT_ACTIVATION:
        terms = _logit_terms(kind, z, net.T[None])
    else:
        terms = _output_terms(kind, _activate(z, spec.layers[-1]), net.T[None])
    plus_rows = np.concatenate(plus)
    minus_rows = np.concatenate([block + len(block) for block in plus])
    with np.errstate(invalid="ignore"):
        diff = (terms[plus_rows] - terms[minus_rows]).sum(axis=1) / net.divisor
    quotients = _quotients(net, [d for _, d, _ in group], diff, kinks[plus_rows] | kinks[minus_rows])
    for (index, _, _), result in zip(group, quotients, strict=True):
        results[index] = result


def _affine_into(out: np.ndarray, a: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> None:
    """:func:`_affine` of a stack ``a (S, B, n)`` written into ``out (S, B, m)`` (contiguous), one GEMM."""
    S, B, n = a.shape
    np.matmul(a.reshape(S * B, n), W, out=out.reshape(S * B, W.shape[1]))
    if b is not None:
        out += b


def _z_step(net: _Net, d: _Directions, layer: int, out: np.ndarray) -> None:
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
    """``(S,)``: copies with a pre-activation of another sign (−1, 0, +1) than ``z_ref``'s, as :func:`_loss_terms`."""
    signs = np.sign(z, out=_SCRATCH.get(("sign", layer), z.shape))
    differs = np.not_equal(signs, np.sign(z_ref), out=_SCRATCH.get(("differs", layer), z.shape, bool))
    return differs.any(axis=(1, 2))


def _activate_into(z: np.ndarray, layer: LayerSpec, number: int) -> np.ndarray:
    """:func:`_activate` into scratch arrays, without its ``np.where`` (a select on a mask of random signs is slow).

    The same numbers: sigmoid is ``max(e, [z ≥ 0]) / (1 + e)`` with ``e = exp(−|z|)``, whose
    numerator is exactly 1 or ``e`` as in the two branches of :func:`_activate`; relu is
    ``max(z, 0)`` and leaky relu ``max(z, slope·z)`` (for ``0 ≤ slope ≤ 1``), which differ
    from the ``where`` forms only in the sign of a zero. Softmax and other slopes use
    :func:`_activate` itself.
    """
    kind = layer.activation
    if kind == "identity":
        return z
    if kind == "softmax" or (kind == "leaky_relu" and not 0.0 <= layer.negative_slope <= 1.0):
        return _activate(z, layer)
    out = _SCRATCH.get(("a", number), z.shape)
    if kind == "tanh":
        return np.tanh(z, out=out)
    if kind == "relu":
        return np.maximum(z, 0.0, out=out)
    if kind == "leaky_relu":
        return np.maximum(z, np.multiply(z, layer.negative_slope, out=out), out=out)
    e = _SCRATCH.get(("exp", number), z.shape)  # sigmoid
    np.negative(np.abs(z, out=e), out=e)
    np.exp(e, out=e)
    numerator = np.maximum(e, np.greater_equal(z, 0.0, out=out), out=out)  # 1 where z ≥ 0, else e
    return np.divide(numerator, np.add(1.0, e, out=e), out=out)


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


def stacked_loss(spec: NetworkSpec, params: Mapping[str, Any], X: Any, T: Any) -> np.ndarray:
    """The total loss (data + penalty) for a stack of ``S`` parameter sets and/or inputs, in float64.

    Args:
        params: each entry either its shape from ``spec.parameter_shapes()`` (shared by the
            whole stack) or ``(S, *shape)`` (one per stack element); every stacked entry has
            the same ``S``.
        X: the input shape (``(N, inputs)`` / ``(inputs, N)``) or ``(S, *that)``.
        T: targets for the ``N`` examples (not stacked).

    Returns:
        ``(S,)`` losses (``S = 1`` when nothing is stacked).
    """
    with np.errstate(under="ignore"):
        spec = _check_spec(spec)
        checked, size = _check_params(spec, params, stacked=True)
        x = np.asarray(X, dtype=np.float64) if np.ndim(X) == 3 else None
        if x is None:
            x = layout_swap(as_inputs(spec, X), spec)[None]
        else:
            as_inputs(spec, x[0])  # shape check of one element
            if not np.all(np.isfinite(x)):
                raise InputError("X", "finite numbers", "NaN or infinity", source="inputs")
            if size not in (1, x.shape[0]):
                raise InputError("X", f"a stack of {size} inputs (as the parameters)", f"{x.shape[0]}")
            size = x.shape[0]
            x = layout_swap(x, spec)
        batch = x.shape[1]
        targets = _dense_targets(spec, as_targets(spec, T, batch))
        Ws, bs = _internal_params(spec, checked)
        terms, _ = _loss_terms(spec, Ws, bs, 0, "a", x, targets[None])
        total = terms.sum(axis=1) / _divisor(spec, batch) + _penalty(spec, checked)
        return np.broadcast_to(total, (size,)).copy()


def preactivations(spec: NetworkSpec, params: Mapping[str, Any], X: Any) -> list[np.ndarray]:
    """The unperturbed ``z_1 … z_L`` in float64, in the spec's layout (``(N, n_l)`` / ``(n_l, N)``)."""
    with np.errstate(under="ignore"):
        spec = _check_spec(spec)
        x = layout_swap(as_inputs(spec, X), spec)
        checked, _ = _check_params(spec, params)
        Ws, bs = _internal_params(spec, checked)
        stages = _forward_from(spec, Ws, bs, 0, "a", x[None])
        return [np.ascontiguousarray(layout_swap(z[0], spec)) for _, z, _ in stages]


def suggested_tolerance(loss_scale: float, grad_scale: float, candidate_dtype: str = "float64") -> tuple[float, float]:
    """``(rtol, atol)`` for ``|candidate − fd| ≤ atol + rtol·|fd|``, entry by entry.

    ``loss_scale`` is ``|L|`` (e.g. :attr:`FiniteDifferences.loss`), ``grad_scale`` the
    largest magnitude of the quantity compared.

    * float64 candidate: the FD error is ``≈ ε^{2/3}·(|ℓ| + |∂³L|) ≈ 4e-11`` times the
      loss-sized scales (module docstring); this allows ~250× that:
      ``rtol = 1e-6``, ``atol = 1e-8·(1 + |L| + max|g|)``.
    * float32 candidate against float64 FD: the candidate's own rounding dominates. Each
      entry is a sum of products carrying ``ε₃₂ ≈ 1.2e-7`` relative error of the *terms*,
      amplified layer by layer, so its absolute error scales with the gradient's (and the
      loss's) magnitude rather than with the entry itself: ``rtol = 1e-3``,
      ``atol = 1e-4·max|g| + 1e-5·(1 + |L|)``.
    """
    loss_scale, grad_scale = abs(float(loss_scale)), abs(float(grad_scale))
    if candidate_dtype == "float64":
        return 1e-6, 1e-8 * (1.0 + loss_scale + grad_scale)
    if candidate_dtype == "float32":
        return 1e-3, 1e-4 * grad_scale + 1e-5 * (1.0 + loss_scale)
    raise InputError("dtype", "float64 or float32", candidate_dtype)
