"""Forward and backward pass of a fully connected network, as in the lecture notes.

Forward (layer ``l = 1…L``, ``a_0 = x``)::

    in_out:  z_l = a_{l-1} @ W_l + b_l        out_in:  z_l = W_l @ a_{l-1} + b_l
             a_l = f_l(z_l)                            a_l = f_l(z_l)

Backward, from ``δ_L = ∂L/∂z_L`` down to the input (seed 001 ⑤, seed 003)::

    in_out:  ∂L/∂W_l     = a_{l-1}ᵀ @ δ_l     out_in:  ∂L/∂W_l     = δ_l @ a_{l-1}ᵀ
             ∂L/∂a_{l-1} = δ_l @ W_lᵀ                  ∂L/∂a_{l-1} = W_lᵀ @ δ_l
             ∂L/∂b_l     = δ_l summed over the batch (and over the units for a shared bias)
             δ_{l-1}     = f'_{l-1}(z_{l-1}) ⊙ ∂L/∂a_{l-1}

and ``∂L/∂x = ∂L/∂a_0``. The L2 term adds ``λ W_l`` (and ``λ b_l``) to the parameter
gradients; it does not touch ``δ`` or ``∂L/∂a``.

Two implementations of these formulas live here:

* the **textbook path** — :func:`textbook_forward`, :func:`textbook_backward`,
  :func:`textbook_backprop`: the formulas above, one NumPy expression each;
* the **fast path** — :func:`forward`, :func:`backward`, :func:`backprop` (the defaults,
  used by everything else): the same operations in the same order, so the same numbers
  bit for bit, but every array of a pass is a view into one block of memory (reused
  from a small per-thread pool once no array of an earlier result refers to it, see
  :class:`_Arena`), written with ``out=`` instead of allocating temporaries, inputs
  validated by a cheap check first, and the loss computed once per :func:`backprop`.
  It falls back to the textbook path for anything but plain arrays of the spec's dtype
  (lists, other dtypes, wrong shapes, non-finite values), which then validates and
  raises exactly as before. ``tests/test_fast_path.py`` checks the two against each other.
"""

from __future__ import annotations

import functools
import math
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from refbp import sequential
from refbp.activations import Activation, activation_for
from refbp.data import as_inputs, as_targets, batch_size
from refbp.errors import InputError
from refbp.losses import compute_loss
from refbp.sequential_spec import SequentialSpec
from refbp.spec import NetworkSpec
from refbp.trace import ForwardTrace, Gradients, LayerForward, LayerGradients


def _bias(params: Mapping[str, np.ndarray], layer: int, spec: NetworkSpec) -> np.ndarray | None:
    """``b_l`` shaped to broadcast against ``z_l`` (a column in ``out_in``)."""
    b = params.get(f"b{layer}")
    if b is None:
        return None
    return b if spec.layout == "in_out" else b[:, None]


def l2_penalty(spec: NetworkSpec, params: Mapping[str, np.ndarray]) -> float:
    """``λ/2 · Σ_l ‖W_l‖²_F`` (plus ``‖b_l‖²`` when biases are penalised)."""
    if spec.l2.lam == 0.0:
        return 0.0
    names = [n for n in params if n.startswith("W") or (spec.l2.include_bias and n.startswith("b"))]
    return 0.5 * spec.l2.lam * float(sum(np.sum(params[n] * params[n]) for n in names))


def textbook_forward(spec: NetworkSpec, params: Mapping[str, np.ndarray], X: Any, T: Any = None) -> ForwardTrace:
    """Run the network on a batch (textbook path).

    Parameters
    ----------
    X : array, shape ``(N, inputs)`` for ``in_out`` or ``(inputs, N)`` for ``out_in``
    T : array or None
        Targets (see :func:`refbp.data.as_targets`); when given, the loss is computed.

    Returns a :class:`ForwardTrace` with ``z_l`` and ``a_l`` for every layer.
    """
    X = as_inputs(spec, X)
    unit_axis = 1 - spec.batch_axis
    a = X
    layers: list[LayerForward] = []
    for number, layer in enumerate(spec.layers, start=1):
        W = params[f"W{number}"]
        z = a @ W if spec.layout == "in_out" else W @ a
        b = _bias(params, number, spec)
        if b is not None:
            z = z + b
        a = activation_for(layer, unit_axis).forward(z)
        layers.append(LayerForward(z=z, a=a))
    trace = ForwardTrace(x=X, layers=layers)
    if T is not None:
        T = as_targets(spec, T, batch_size(spec, X))
        trace.data_loss, _, _ = compute_loss(spec, layers[-1].z, layers[-1].a, T)
        trace.penalty = l2_penalty(spec, params)
    return trace


def textbook_backward(spec: NetworkSpec, params: Mapping[str, np.ndarray], trace: ForwardTrace, T: Any) -> Gradients:
    """Backpropagate the loss through ``trace`` (from a forward pass on the same parameters; textbook path).

    Returns a :class:`Gradients` whose arrays have the shapes of the corresponding
    ``z``, ``a``, ``W``, ``b`` and ``x``.
    """
    T = as_targets(spec, T, batch_size(spec, trace.x))
    unit_axis = 1 - spec.batch_axis
    out = trace.layers[-1]
    _, grad_a, delta = compute_loss(spec, out.z, out.a, T)
    if delta is None:
        delta = activation_for(spec.layers[-1], unit_axis).backward(out.z, out.a, grad_a)

    grads: list[LayerGradients] = []
    for number in range(spec.depth, 0, -1):
        W = params[f"W{number}"]
        a_prev = trace.layers[number - 2].a if number > 1 else trace.x
        if spec.layout == "in_out":
            grad_W = a_prev.T @ delta
            grad_a_prev = delta @ W.T
        else:
            grad_W = delta @ a_prev.T
            grad_a_prev = W.T @ delta
        grad_b = _bias_gradient(spec, number, delta)
        if spec.l2.lam:
            grad_W = grad_W + spec.l2.lam * W
            if grad_b is not None and spec.l2.include_bias:
                grad_b = grad_b + spec.l2.lam * params[f"b{number}"]
        grads.append(LayerGradients(delta=delta, grad_a=grad_a, grad_W=grad_W, grad_b=grad_b))
        if number > 1:
            below = trace.layers[number - 2]
            grad_a = grad_a_prev
            delta = activation_for(spec.layers[number - 2], unit_axis).backward(below.z, below.a, grad_a)
    grads.reverse()
    return Gradients(layers=grads, grad_x=grad_a_prev)


def _bias_gradient(spec: NetworkSpec, layer: int, delta: np.ndarray) -> np.ndarray | None:
    """``∂L/∂b``: ``δ`` summed over the batch; a shared bias also sums over the units."""
    mode = spec.layers[layer - 1].bias
    if mode == "none":
        return None
    if mode == "shared":
        return np.array([delta.sum()], dtype=delta.dtype)
    return delta.sum(axis=spec.batch_axis)


def textbook_backprop(
    spec: NetworkSpec, params: Mapping[str, np.ndarray], X: Any, T: Any
) -> tuple[ForwardTrace, Gradients]:
    """Forward then backward on the textbook path."""
    trace = textbook_forward(spec, params, X, T)
    return trace, textbook_backward(spec, params, trace, T)


# ===================================================================== fast path (the default)
#
# Same formulas, same operations in the same order as the textbook path above; only where the
# numbers are stored differs. See the module docstring.

POOL_BYTES = 64 * 2**20
"""Per thread, released blocks up to this many bytes in total are kept for reuse."""
POOLED_FROM_BYTES = 128 * 2**10
"""Passes whose arrays take fewer bytes than this allocate them one by one (see :class:`_Arena`)."""
_ALIGN = 64  # bytes; arrays of an arena start this far apart (cache lines)


class _BlockPool(threading.local):
    """Blocks of memory kept for reuse by later passes of the same thread.

    A fresh block costs page faults on first touch (for arrays of a few hundred kB that
    is as long as the arithmetic on them); a block that earlier passes touched costs
    nothing. A block is handed out again only when the pool holds the last reference to
    it, i.e. every array of the result it backed has been dropped, so results are never
    overwritten.
    """

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []

    def _unused(self, index: int) -> bool:
        return sys.getrefcount(self.blocks[index]) == _LIST_ONLY_REFS

    def get(self, nbytes: int) -> np.ndarray:
        """A block of exactly ``nbytes`` bytes (``uint8``) that nothing else refers to."""
        for index in range(len(self.blocks)):
            if self.blocks[index].nbytes == nbytes and self._unused(index):
                self.blocks.append(self.blocks.pop(index))  # most recently used last
                return self.blocks[-1]
        block = np.empty(nbytes, dtype=np.uint8)
        self._keep(block)
        return block

    def _keep(self, block: np.ndarray) -> None:
        """Add ``block``, evicting the oldest unused blocks to stay within :data:`POOL_BYTES`."""
        total = sum(b.nbytes for b in self.blocks) + block.nbytes
        index = 0
        while total > POOL_BYTES and index < len(self.blocks):
            if self._unused(index):
                total -= self.blocks.pop(index).nbytes
            else:
                index += 1
        if total <= POOL_BYTES:
            self.blocks.append(block)


def _list_only_refs() -> int:
    """What :func:`sys.getrefcount` reports for a list item that nothing else refers to."""
    items = [object()]
    return sys.getrefcount(items[0])


_LIST_ONLY_REFS = _list_only_refs()
_POOL = _BlockPool()


def release_buffers() -> None:
    """Drop the blocks this thread keeps for reuse (results still in use keep theirs)."""
    _POOL.blocks.clear()


class _Arena:
    """The arrays of one pass: consecutive views into one pooled block (a bump allocator).

    ``sizes`` are the element counts of every array that :meth:`take` will hand out. A
    pass whose arrays are small in total gets plain ``np.empty`` arrays instead: those
    come from the heap without page faults, and the views would only add overhead.
    """

    def __init__(self, dtype: np.dtype, sizes: list[int]) -> None:
        self.dtype = dtype
        self.block: np.ndarray | None = None
        self.offset = 0
        if sum(sizes) * dtype.itemsize >= POOLED_FROM_BYTES:
            self.block = _POOL.get(sum(-(-n * dtype.itemsize // _ALIGN) * _ALIGN for n in sizes))

    def take(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.block is None:
            return np.empty(shape, self.dtype)
        nbytes = math.prod(shape) * self.dtype.itemsize
        start = self.offset
        self.offset += -(-nbytes // _ALIGN) * _ALIGN
        if self.offset > self.block.nbytes:
            raise RuntimeError("arena sized too small")  # a bug in the sizes given to __init__
        return self.block[start : start + nbytes].view(self.dtype).reshape(shape)


@dataclass(frozen=True)
class _Plan:
    """What the fast path needs to know about a spec, worked out once per spec."""

    dtype: np.dtype
    in_out: bool
    weights: tuple[str, ...]  # "W1", "W2", …
    biases: tuple[str | None, ...]  # "b1", … or None for a layer without bias
    shapes: tuple[tuple[str, tuple[int, ...]], ...]  # every parameter and its shape
    activations: tuple[Activation, ...]
    identity: tuple[bool, ...]  # identity layers: a is z, δ is ∂L/∂a (no array of their own)
    widths: tuple[int, ...]  # (inputs, n_1, …, n_L)

    def shape(self, layer: int, batch: int) -> tuple[int, int]:
        """Shape of ``z_layer``/``a_layer`` (layer 0: ``X``)."""
        width = self.widths[layer]
        return (batch, width) if self.in_out else (width, batch)


@functools.lru_cache(maxsize=128)
def _plan(spec: NetworkSpec) -> _Plan:
    unit_axis = 1 - spec.batch_axis
    numbers = range(1, spec.depth + 1)
    return _Plan(
        dtype=np.dtype(spec.dtype),
        in_out=spec.layout == "in_out",
        weights=tuple(f"W{n}" for n in numbers),
        biases=tuple(None if spec.bias_shape(n) is None else f"b{n}" for n in numbers),
        shapes=tuple(spec.parameter_shapes().items()),
        activations=tuple(activation_for(layer, unit_axis) for layer in spec.layers),
        identity=tuple(layer.activation == "identity" for layer in spec.layers),
        widths=spec.widths,
    )


def _plain_params(plan: _Plan, params: Mapping[str, np.ndarray]) -> bool:
    """Every parameter an ndarray of the spec's dtype and shape (else the textbook path handles them)."""
    for name, shape in plan.shapes:
        value = params.get(name)
        if type(value) is not np.ndarray or value.dtype != plan.dtype or value.shape != shape:
            return False
    return True


def _plain_trace(plan: _Plan, trace: ForwardTrace) -> bool:
    arrays = [trace.x, *(array for layer in trace.layers for array in (layer.z, layer.a))]
    return len(trace.layers) == len(plan.weights) and all(
        type(array) is np.ndarray and array.dtype == plan.dtype for array in arrays
    )


def _lean_inputs(spec: NetworkSpec, X: Any) -> np.ndarray:
    """``X`` itself when it is already valid (checked without copying), else :func:`as_inputs` of it."""
    if (
        type(X) is np.ndarray
        and X.dtype == spec.dtype
        and X.ndim == 2
        and X.shape[1 - spec.batch_axis] == spec.inputs
        and X.shape[spec.batch_axis] >= 1
        and _finite(X)
    ):
        return X
    return as_inputs(spec, X)


def _lean_targets(spec: NetworkSpec, T: Any, batch: int) -> np.ndarray:
    """Dense targets ``T`` themselves when already valid (read, never written), else :func:`as_targets`."""
    if (
        spec.loss.targets == "dense"
        and type(T) is np.ndarray
        and T.dtype == spec.dtype
        and T.shape == spec.target_shape(batch)
        and (_finite(T) if spec.loss.kind in ("half_sse", "mse") else (T.min() >= 0 and T.max() <= 1))
    ):
        return T
    return as_targets(spec, T, batch)


def _finite(array: np.ndarray) -> bool:
    """No NaN or infinity, without a temporary array: ``max``/``min`` propagate NaN and cannot overflow."""
    return math.isfinite(array.max()) and math.isfinite(array.min())


def _fast_forward(spec: NetworkSpec, plan: _Plan, params: Mapping[str, np.ndarray], X: np.ndarray) -> ForwardTrace:
    """:func:`textbook_forward` without the loss, every array in one arena."""
    batch = X.shape[spec.batch_axis]
    widths = plan.widths
    sizes = [X.size, batch * max(widths[1:])]
    for number, identity in enumerate(plan.identity, start=1):
        sizes += [batch * widths[number]] * (1 if identity else 2)
    arena = _Arena(plan.dtype, sizes)
    x = arena.take(X.shape)
    np.copyto(x, X)
    scratch = arena.take((sizes[1],))
    a = x
    layers: list[LayerForward] = []
    for number, (W_name, b_name, act, identity) in enumerate(
        zip(plan.weights, plan.biases, plan.activations, plan.identity, strict=True), start=1
    ):
        shape = plan.shape(number, batch)
        z = arena.take(shape)
        if plan.in_out:
            np.matmul(a, params[W_name], out=z)
            if b_name is not None:
                np.add(z, params[b_name], out=z)
        else:
            np.matmul(params[W_name], a, out=z)
            if b_name is not None:
                np.add(z, params[b_name][:, None], out=z)
        a = z if identity else act.forward_into(z, arena.take(shape), scratch[: z.size].reshape(shape))
        layers.append(LayerForward(z=z, a=a))
    return ForwardTrace(x=x, layers=layers)


def _fast_backward(
    spec: NetworkSpec,
    plan: _Plan,
    params: Mapping[str, np.ndarray],
    trace: ForwardTrace,
    grad_a: np.ndarray,
    delta: np.ndarray | None,
) -> Gradients:
    """:func:`textbook_backward` from the loss's ``(∂L/∂a_L, δ_L or None)``, every array in one arena."""
    shapes = dict(plan.shapes)
    sizes = [max(layer.z.size for layer in trace.layers), trace.layers[-1].z.size]
    for number in range(spec.depth, 0, -1):
        below = trace.layers[number - 2].a if number > 1 else trace.x
        sizes += [math.prod(shapes[plan.weights[number - 1]]), below.size, below.size]
    arena = _Arena(plan.dtype, sizes)
    scratch = arena.take((sizes[0],))

    def delta_of(number: int, grad: np.ndarray) -> np.ndarray:
        layer = trace.layers[number - 1]
        if plan.identity[number - 1]:
            return grad
        work = scratch[: grad.size].reshape(grad.shape)
        return plan.activations[number - 1].backward_into(layer.z, layer.a, grad, arena.take(grad.shape), work)

    if delta is None:
        delta = delta_of(spec.depth, grad_a)
    lam = spec.l2.lam
    grads: list[LayerGradients] = []
    for number in range(spec.depth, 0, -1):
        W = params[plan.weights[number - 1]]
        a_prev = trace.layers[number - 2].a if number > 1 else trace.x
        grad_W = arena.take(W.shape)
        grad_a_prev = arena.take(a_prev.shape)
        if plan.in_out:
            np.matmul(a_prev.T, delta, out=grad_W)
            np.matmul(delta, W.T, out=grad_a_prev)
        else:
            np.matmul(delta, a_prev.T, out=grad_W)
            np.matmul(W.T, delta, out=grad_a_prev)
        grad_b = _bias_gradient(spec, number, delta)
        if lam:
            np.add(grad_W, lam * W, out=grad_W)
            if grad_b is not None and spec.l2.include_bias:
                grad_b = grad_b + lam * params[plan.biases[number - 1]]
        grads.append(LayerGradients(delta=delta, grad_a=grad_a, grad_W=grad_W, grad_b=grad_b))
        if number > 1:
            grad_a = grad_a_prev
            delta = delta_of(number - 1, grad_a)
    grads.reverse()
    return Gradients(layers=grads, grad_x=grad_a_prev)


def _typed(spec: Any, buffers: Any) -> bool:
    """Whether ``spec`` is a typed network; a dense one takes no buffers."""
    if isinstance(spec, SequentialSpec):
        return True
    if buffers:
        raise InputError("buffers", "none for a dense network (buffers belong to typed layers)", sorted(buffers))
    return False


def forward(
    spec: NetworkSpec, params: Mapping[str, np.ndarray], X: Any, T: Any = None, *, buffers: Any = None
) -> ForwardTrace:
    """Run the network on a batch (fast path; the numbers of :func:`textbook_forward`).

    A typed network (:class:`~refbp.sequential_spec.SequentialSpec`) runs :mod:`refbp.sequential`,
    with its ``buffers``.

    Parameters
    ----------
    X : array, shape ``(N, inputs)`` for ``in_out`` or ``(inputs, N)`` for ``out_in``
    T : array or None
        Targets (see :func:`refbp.data.as_targets`); when given, the loss is computed.

    Returns a :class:`ForwardTrace` with ``z_l`` and ``a_l`` for every layer.
    """
    if _typed(spec, buffers):
        return sequential.forward(spec, params, X, T, buffers=buffers)
    plan = _plan(spec)
    if not _plain_params(plan, params):
        return textbook_forward(spec, params, X, T)
    X = _lean_inputs(spec, X)
    targets = None if T is None else _lean_targets(spec, T, batch_size(spec, X))
    trace = _fast_forward(spec, plan, params, X)
    if targets is not None:
        out = trace.layers[-1]
        trace.data_loss, _, _ = compute_loss(spec, out.z, out.a, targets)
        trace.penalty = l2_penalty(spec, params)
    return trace


def backward(
    spec: NetworkSpec, params: Mapping[str, np.ndarray], trace: ForwardTrace, T: Any, *, buffers: Any = None
) -> Gradients:
    """Backpropagate the loss through ``trace`` (fast path; the numbers of :func:`textbook_backward`).

    Returns a :class:`Gradients` whose arrays have the shapes of the corresponding
    ``z``, ``a``, ``W``, ``b`` and ``x``.
    """
    if _typed(spec, buffers):
        return sequential.backward(spec, params, trace, T, buffers=buffers)
    plan = _plan(spec)
    if not (_plain_params(plan, params) and _plain_trace(plan, trace)):
        return textbook_backward(spec, params, trace, T)
    targets = _lean_targets(spec, T, batch_size(spec, trace.x))
    out = trace.layers[-1]
    _, grad_a, delta = compute_loss(spec, out.z, out.a, targets)
    return _fast_backward(spec, plan, params, trace, grad_a, delta)


def backprop(
    spec: NetworkSpec, params: Mapping[str, np.ndarray], X: Any, T: Any, *, buffers: Any = None
) -> tuple[ForwardTrace, Gradients]:
    """Forward then backward: the protocol every implementation under test follows (fast path).

    The same numbers as :func:`textbook_backprop`; the loss is evaluated once for both passes.
    A typed network runs :func:`refbp.sequential.backprop` with its ``buffers``.
    """
    if _typed(spec, buffers):
        return sequential.backprop(spec, params, X, T, buffers=buffers)
    plan = _plan(spec)
    if not _plain_params(plan, params):
        return textbook_backprop(spec, params, X, T)
    X = _lean_inputs(spec, X)
    targets = _lean_targets(spec, T, batch_size(spec, X))
    trace = _fast_forward(spec, plan, params, X)
    out = trace.layers[-1]
    trace.data_loss, grad_a, delta = compute_loss(spec, out.z, out.a, targets)
    trace.penalty = l2_penalty(spec, params)
    return trace, _fast_backward(spec, plan, params, trace, grad_a, delta)
