"""Why a gradient is probably wrong: patterns in the numbers and in where they diverge.

Two kinds of evidence, combined into one plain-language hint:

* the numbers of one quantity (:func:`array_pattern`): the candidate is the reference
  with the sign flipped, transposed, scaled by the batch size, all zeros, right for
  some examples only;
* the shape of the failure across quantities (:func:`structural_hint`): ``∂L/∂a_l``
  agrees but ``δ_l`` does not, so the activation derivative of layer ``l`` is wrong;
  ``δ_l`` agrees but ``∂L/∂W_l`` does not, so the outer product is; and so on;
* for an implementation that returns parameter gradients only (:func:`entry_hint`): the
  highest layer whose gradients fail, below layers that agree, is where the error enters.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from oracle.compare import FAILING_STATUSES
from oracle.layer_hints import typed_hint
from refbp.spec import LOSS_OUTPUT_ACTIVATION, NetworkSpec
from refbp.trace import QUANTITIES

_FORWARD = frozenset({"z", "a", "loss"})
_REFERENCE_PAIR = "torch~fd"


def _close(x: np.ndarray, y: np.ndarray, rtol: float) -> bool:
    scale = max(float(np.abs(y).max(initial=0.0)), float(np.abs(x).max(initial=0.0)), 1e-300)
    return bool(np.all(np.abs(x - y) <= rtol * scale))


def _factor_text(c: float, batch: int, outputs: int, size: int) -> str:
    named = [(batch, f"N = {batch} (the batch size)"), (batch * outputs, f"N·k = {batch * outputs}"), (2.0, "2")]
    for value, name in named:
        if value > 1 and np.isclose(c, value, rtol=1e-3):
            return f"{name} too large: a sum where a mean was meant, or a missing ½?"
        if value > 1 and np.isclose(c, 1.0 / value, rtol=1e-3):
            return f"{name} too small: a mean where a sum was meant, or an extra ½?"
    # One number is always "a multiple" of another: only a named factor means something there.
    return f"scaled by {c:.4g} relative to the true value" if size > 1 else ""


def array_pattern(
    candidate: np.ndarray,
    reference: np.ndarray,
    *,
    batch: int,
    outputs: int,
    batch_axis: int | None,
    rtol: float = 1e-6,
) -> str:
    """A hint from the numbers alone, or ``""`` when no known pattern fits.

    ``batch_axis`` is the axis of ``reference`` that indexes examples (``None`` for
    parameter gradients).
    """
    x = np.asarray(candidate, dtype=np.float64)
    y = np.asarray(reference, dtype=np.float64)
    if x.shape != y.shape:
        if x.shape == y.shape[::-1] and _close(x, y.T, rtol):
            return f"transposed: shape {x.shape} holds the transpose of the expected {y.shape}"
        if batch_axis is None and x.size == y.size * batch:
            return f"shape {x.shape} instead of {y.shape}: not summed over the batch"
        return f"shape {x.shape}, but should be {y.shape}"
    if not np.all(np.isfinite(x)):
        return "NaN or infinity in the result: an overflow (unstable exp/log?) or a division by zero"
    if not np.any(y):
        return ""
    if not np.any(x):
        return "all zeros: the gradient was never accumulated (or a mask removed everything)"
    if _close(x, -y, rtol):
        return "sign flipped"
    if x.ndim == 2 and x.shape[0] == x.shape[1] and _close(x, y.T, rtol) and not _close(x, y, rtol):
        return "transposed"
    c = float(np.sum(x * y) / np.sum(y * y))
    if not np.isclose(c, 1.0, rtol=1e-3) and _close(x, c * y, rtol):
        return _factor_text(c, batch, outputs, x.size)
    if batch_axis is not None and batch > 1:
        per_example = np.moveaxis(np.abs(x - y), batch_axis, 0).reshape(batch, -1).max(axis=1)
        good = per_example <= rtol * max(float(np.abs(y).max()), 1e-300)
        if good.any():
            return f"right for examples {np.flatnonzero(good).tolist()} only: only part of the batch used?"
    return ""


def structural_hint(spec: NetworkSpec, layer: int, quantity: str, status: dict[tuple[int, str], bool]) -> str:
    """A hint from which neighbouring quantities agree (``status[(layer, q)]`` is True when they do)."""

    def ok(key: tuple[int, str]) -> bool:
        return status.get(key, False)

    if not isinstance(spec, NetworkSpec):  # a typed network: the layer whose backward formed the quantity
        return typed_hint(spec, layer, quantity, ok)

    if quantity == "z" and (layer == 1 or ok((layer - 1, "a"))):
        return f"a_{layer - 1} agrees but z_{layer} does not: check the affine map of layer {layer}"
    if quantity == "a" and ok((layer, "z")):
        return f"z_{layer} agrees but a_{layer} does not: check {spec.layers[layer - 1].activation} in layer {layer}"
    if quantity == "loss" and ok((layer, "a")) and ok((layer, "z")):
        return (
            f"the output agrees but the loss does not: check the {spec.loss.kind} formula and its {spec.loss.reduction}"
        )
    if quantity == "delta":
        if layer == spec.depth and spec.loss.kind in LOSS_OUTPUT_ACTIVATION:
            return f"δ_{layer} at the output is wrong: check the {spec.loss.kind} gradient (prediction − t, scaled)"
        if ok((layer, "dL/da")):
            act = spec.layers[layer - 1].activation
            return f"∂L/∂a_{layer} agrees but δ_{layer} does not: the derivative of {act} in layer {layer} is suspect"
    if quantity == "dL/da" and layer == spec.depth and ok((layer, "a")):
        return f"∂L/∂a at the output is wrong: check the derivative of {spec.loss.kind} and its {spec.loss.reduction}"
    if quantity in ("dL/da", "dL/dx"):
        below = 0 if quantity == "dL/dx" else layer
        if ok((below + 1, "delta")):
            name = "x" if below == 0 else f"a_{below}"
            return f"δ_{below + 1} agrees but ∂L/∂{name} does not: check W_{below + 1}ᵀ in ∂L/∂{name}"
    if quantity == "dL/dW" and ok((layer, "delta")):
        prev = "x" if layer == 1 else f"a_{layer - 1}"
        return f"δ_{layer} agrees but ∂L/∂W_{layer} does not: check the product with {prev} (transpose, scale, L2)"
    if quantity == "dL/db" and ok((layer, "delta")):
        extra = " and the units (shared bias)" if spec.layers[layer - 1].bias == "shared" else ""
        return f"δ_{layer} agrees but ∂L/∂b_{layer} does not: check the sum of δ_{layer} over the batch{extra}"
    return ""


def _quantity_list(quantities: Iterable[str]) -> str:
    return ", ".join(sorted(set(quantities), key=QUANTITIES.index))


def entry_hint(spec: NetworkSpec, rows: Iterable[tuple[int, str, str, str]]) -> str:
    """Where the backward pass of one case goes wrong, from which gradients still agree; ``""`` when unclear.

    ``rows`` are ``(layer, quantity, pair, status)`` of one case. Backprop runs from the
    output layer ``L`` down to the input, so the highest layer with a failing gradient is
    where the error enters, once every gradient compared above it agrees. This localises a
    bug from parameter gradients alone — an implementation that returns only ``∂L/∂W_l``,
    ``∂L/∂b_l`` and ``∂L/∂x``, whose rows :func:`structural_hint` cannot explain because
    ``δ_l`` and ``∂L/∂a_l`` are not there to compare. No hint when the forward pass (``z``,
    ``a``, the loss) differs, when the implementation raised, or when the torch twin and
    finite differences disagree.
    """
    rows = list(rows)
    backward = [r for r in rows if r[1] not in _FORWARD]
    failing = [r for r in backward if r[3] in FAILING_STATUSES]
    if not failing or any(r[3] in FAILING_STATUSES for r in rows if r[1] in _FORWARD):
        return ""
    if any(status == "error" or pair == _REFERENCE_PAIR for _, _, pair, status in failing):
        return ""
    top = max(int(r[0]) for r in failing)
    if top < spec.depth and not any(int(r[0]) > top for r in backward):
        return ""  # nothing compared above it: no telling where the error entered
    if top == 0:
        return "every layer's gradients agree but ∂L/∂x does not: check the product with W_1 that forms ∂L/∂x"
    wrong = {r[1] for r in failing if int(r[0]) == top}
    right = {r[1] for r in backward if int(r[0]) == top} - wrong
    if "dL/dW" in wrong and "dL/db" in right:
        return (
            f"∂L/∂b_{top} agrees but ∂L/∂W_{top} does not, so δ_{top} is probably right: check ∂L/∂W_{top} "
            f"(the product with {'x' if top == 1 else f'a_{top - 1}'}, a transpose, the scale, L2)"
        )
    if "dL/db" in wrong and "dL/dW" in right:
        shared = " and the units (shared bias)" if spec.layers[top - 1].bias == "shared" else ""
        return (
            f"∂L/∂W_{top} agrees but ∂L/∂b_{top} does not, so δ_{top} is probably right: "
            f"check the sum of δ_{top} over the batch{shared}"
        )
    activation = spec.layers[top - 1].activation
    if top == spec.depth:
        return (
            f"the output layer {top} already diverges ({_quantity_list(wrong)}): check ∂L/∂a_{top} of the "
            f"{spec.loss.kind} loss ({spec.loss.reduction}) and the derivative of {activation} in δ_{top}"
        )
    return (
        f"layer {top + 1} agrees, layer {top} does not ({_quantity_list(wrong)}): the error enters in the backward "
        f"step into layer {top} — ∂L/∂a_{top} from δ_{top + 1} and W_{top + 1}, or the derivative of "
        f"{activation} in δ_{top}"
    )
