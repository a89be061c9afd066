"""The dense network of the finite differences: its own float64 forward pass from any layer, validation, the loss.

Imports only refbp's data definitions (spec, errors, input validation), never refbp's
activations, losses or network code; the activations and loss terms are those of
:mod:`oracle.fd_functions`. The perturbing modules build on this one:
:mod:`oracle.fd_entries` (per-entry differences), :mod:`oracle.fd_directions` and
:mod:`oracle.fd_stacked` (directional ones); :mod:`oracle.finite_diff` is the public front.

Shapes and layouts are the spec's: ``in_out`` has ``X``, ``z_l``, ``a_l`` as ``(N, n_l)`` and
``W_l`` as ``(n_{l-1}, n_l)``; ``out_in`` transposes all of them. Internally everything is
stacked as ``(S, B, n)``: ``S`` perturbed copies ("stack" axis), ``B`` examples, ``n`` units.

Vectorisation: the unperturbed forward is computed once (:func:`prepare_net`); a perturbation
in layer ``l`` runs only layers ``≥ l`` (:func:`loss_terms`), on a stack of ``2P`` copies (``+h``
and ``−h`` for ``P`` entries at once), chunked to stay under :data:`MEMORY_BUDGET`
(:func:`chunks`). Terms of the loss that the perturbation cannot change (the other examples,
the other parameters' penalty) cancel exactly in ``L(θ+h) − L(θ−h)`` and are not evaluated,
which also keeps them out of the round-off.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracle.fd_functions import activate, logit_terms, output_terms
from oracle.fd_typed import typed_targets
from refbp.data import as_inputs, as_targets
from refbp.errors import InputError
from refbp.sequential_spec import SequentialSpec
from refbp.spec import KINKED_ACTIVATIONS, LOSS_OUTPUT_ACTIVATION, NetworkSpec

EPS = float(np.finfo(np.float64).eps)
STEP_SCALE = EPS ** (1.0 / 3.0)
"""``ε^{1/3} ≈ 6.06e-6``: balances ``O(h²)`` truncation against ``O(ε/h)`` round-off."""
ONE_SIDED_STEP = math.sqrt(EPS)
"""``√ε ≈ 1.5e-8``: the balancing step of a one-sided difference (used only at ``a ∈ {0, 1}``)."""
MEMORY_BUDGET = 32 * 2**20
"""Bytes a chunk of stacked copies may occupy (roughly). Smaller chunks keep each array of a
chunk nearer the caches: 32 MiB ran the full check of a 13k-parameter network 1.3–1.6× faster
than 256 MiB (``refbp bench``), and far smaller chunks lose to per-chunk overhead."""
LIVE_COPIES = 6  # arrays of one layer's (S, B, n) size alive at once: z, a, signs, temporaries

Key = tuple[int, str]

# -- the stacked forward pass ----------------------------------------------------------


def affine(a: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
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


def forward_from(
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
        z = value if (entry == "z" and layer == start) else affine(a, Ws[layer - 1], bs[layer - 1])
        a = activate(z, spec.layers[layer - 1]) if output_activation or layer < spec.depth else None
        yield layer, z, a


def loss_terms(
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
        return output_terms(kind, value, T), kink
    z = a = value
    from_logits = kind in LOSS_OUTPUT_ACTIVATION
    for layer, z_layer, a_layer in forward_from(spec, Ws, bs, start, entry, value, output_activation=not from_logits):
        z, a = z_layer, a_layer
        if z_ref is not None and spec.layers[layer - 1].activation in KINKED_ACTIVATIONS:
            kink |= (np.sign(z) != np.sign(z_ref[layer - 1])).any(axis=(1, 2))
    if from_logits:
        return logit_terms(kind, z, T), kink
    return output_terms(kind, a, T), kink


# -- validation and the unperturbed network ------------------------------------------------


def loss_divisor(spec: NetworkSpec, batch: int) -> float:
    """What the summed data loss is divided by: 1 (sum), N, or N·k for ``mse`` (mean)."""
    if spec.loss.reduction == "sum":
        return 1.0
    return float(batch * spec.outputs) if spec.loss.kind == "mse" else float(batch)


def layout_swap(array: np.ndarray, spec: NetworkSpec) -> np.ndarray:
    """Spec layout ↔ internal rows-are-examples layout (transpose the last two axes for ``out_in``)."""
    return array if spec.layout == "in_out" else np.swapaxes(array, -1, -2)


def check_spec(spec: Any) -> NetworkSpec:
    if not isinstance(spec, NetworkSpec):
        raise InputError("spec", "a NetworkSpec", type(spec).__name__)
    # Validate data at float64: FD evaluates at the given numbers, never rounded to float32.
    return spec if spec.dtype == "float64" else spec.replace(dtype="float64")


def check_params(spec: NetworkSpec, params: Any, *, stacked: bool = False) -> tuple[dict[str, np.ndarray], int]:
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


def internal_targets(spec: NetworkSpec, T: np.ndarray) -> np.ndarray:
    """Validated targets → float64 ``(N, k)`` in the internal layout (integer labels one-hot encoded)."""
    if spec.loss.targets == "index":
        return np.eye(spec.outputs)[T]
    return np.ascontiguousarray(layout_swap(T.astype(np.float64), spec))


def internal_params(spec: NetworkSpec, params: dict[str, np.ndarray]) -> tuple[list, list]:
    Ws = [layout_swap(params[f"W{layer}"], spec) for layer in range(1, spec.depth + 1)]
    bs = [params.get(f"b{layer}") for layer in range(1, spec.depth + 1)]
    return Ws, bs


def penalty(spec: NetworkSpec, params: dict[str, np.ndarray]) -> Any:
    """``λ/2·Σ‖W_l‖²`` (+ ``‖b_l‖²``); ``(S,)`` when some arrays carry a leading stack axis."""
    total: Any = 0.0
    for name, array in params.items():
        if name.startswith("W") or spec.l2.include_bias:
            extra = array.ndim - (2 if name.startswith("W") else 1)
            total = total + (array**2).reshape((*array.shape[:extra], -1)).sum(axis=-1)
    return 0.5 * spec.l2.lam * total


@dataclass
class DenseNet:
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


def prepare_net(spec: Any, params: Any, X: Any, T: Any, *, with_loss: bool = True) -> DenseNet:
    """Validated inputs and the unperturbed forward (``loss``: NaN without ``with_loss``; directional FD needs none)."""
    spec = check_spec(spec)
    x = as_inputs(spec, X)
    batch = int(x.shape[spec.batch_axis])
    targets = internal_targets(spec, as_targets(spec, T, batch))
    checked, _ = check_params(spec, params)
    Ws, bs = internal_params(spec, checked)
    x = np.ascontiguousarray(layout_swap(x, spec))
    zs, acts = [], [x]
    for _, z, a in forward_from(spec, Ws, bs, 0, "a", x[None]):
        zs.append(z[0])
        acts.append(a[0])
    divisor = loss_divisor(spec, batch)
    loss = math.nan
    if with_loss:
        terms, _ = loss_terms(spec, Ws, bs, spec.depth, "z", zs[-1][None], targets[None])
        loss = float(terms.sum() / divisor + penalty(spec, checked))
    return DenseNet(spec, checked, Ws, bs, targets, zs, acts, divisor, loss)


def chunks(n: int, per_copy_bytes: int) -> Iterator[np.ndarray]:
    """Index blocks of ``P`` entries such that ``2P`` copies fit :data:`MEMORY_BUDGET`."""
    size = max(1, MEMORY_BUDGET // (2 * LIVE_COPIES * max(per_copy_bytes, 1)))
    for begin in range(0, n, size):
        yield np.arange(begin, min(begin + size, n))


def copy_bytes(net: DenseNet, first_layer: int, batch: int) -> int:
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
    spec = check_spec(spec)
    keys: list[Key] = []
    for layer in range(spec.depth, 0, -1):
        for quantity in ("dL/da", "delta", "dL/dW", "dL/db"):
            if quantity != "dL/db" or spec.bias_shape(layer) is not None:
                keys.append((layer, quantity))
    keys.append((0, "dL/dx"))
    return keys


def check_target(spec: NetworkSpec, key: Any, allowed: list[Key] | None = None) -> Key:
    """``key`` as a ``(layer, quantity)`` of :func:`fd_targets` (``allowed``, when the caller has it already)."""
    allowed = fd_targets(spec) if allowed is None else allowed
    try:
        normal = (int(key[0]), str(key[1]))
    except (TypeError, ValueError, IndexError):
        normal = None
    if normal not in allowed:
        raise InputError("target", "one of " + ", ".join(f"({layer}, {q!r})" for layer, q in allowed), key)
    return normal


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
        spec = check_spec(spec)
        checked, size = check_params(spec, params, stacked=True)
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
        targets = internal_targets(spec, as_targets(spec, T, batch))
        Ws, bs = internal_params(spec, checked)
        terms, _ = loss_terms(spec, Ws, bs, 0, "a", x, targets[None])
        total = terms.sum(axis=1) / loss_divisor(spec, batch) + penalty(spec, checked)
        return np.broadcast_to(total, (size,)).copy()


def preactivations(spec: NetworkSpec, params: Mapping[str, Any], X: Any) -> list[np.ndarray]:
    """The unperturbed ``z_1 … z_L`` in float64, in the spec's layout (``(N, n_l)`` / ``(n_l, N)``)."""
    with np.errstate(under="ignore"):
        spec = check_spec(spec)
        x = layout_swap(as_inputs(spec, X), spec)
        checked, _ = check_params(spec, params)
        Ws, bs = internal_params(spec, checked)
        stages = forward_from(spec, Ws, bs, 0, "a", x[None])
        return [np.ascontiguousarray(layout_swap(z[0], spec)) for _, z, _ in stages]


def probability_domain(net: DenseNet, layer: int, entry: str) -> bool:
    """Whether moving ``entry`` (``"z"``/``"a"``) of ``layer`` moves the probabilities of a from-logits loss.

    The loss is then written in ``a_L`` (see :mod:`oracle.finite_diff`) and the step must
    keep ``a ± h`` inside its domain.
    """
    return entry == "a" and layer == net.spec.depth and net.spec.loss.kind in LOSS_OUTPUT_ACTIVATION
