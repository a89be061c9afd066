"""Structural hints for typed networks: which layer's backward formed the first wrong quantity.

In a typed network ``∂L/∂a_{l-1}`` (``∂L/∂x`` for ``l = 1``) is produced by the backward pass of
layer ``l``, whatever its type; ``δ_l`` by the derivative of layer ``l``'s activation; a parameter
gradient by layer ``l``'s own backward. The hint names that layer and its type.
"""

from __future__ import annotations

from typing import Any

_WHAT = {
    "conv2d": "the convolution's ∂L/∂x (the kernel flipped, the padding cut off, the stride)",
    "max_pool2d": "max pooling's routing (the gradient goes to each window's maximum only)",
    "avg_pool2d": "average pooling's spreading (÷ kh·kw over each window)",
    "batchnorm": "batchnorm's ∂L/∂x (the paths through the batch mean and variance; eval mode uses the running ones)",
    "layernorm": "layer norm's ∂L/∂x (the statistics of each example, over its features)",
    "groupnorm": "group norm's ∂L/∂x (the statistics of each example's group of channels)",
    "dropout": "dropout's mask and its ÷ keep_prob rescaling",
    "flatten": "flatten's reshape back to the input's shape",
    "dense": "the product with Wᵀ",
    "rnn": "backprop through time (each step's dh adds the gradient carried from step t+1; tanh' from h_t)",
    "lstm": "backprop through time (the carried dh and dc, the gate order of the columns)",
    "temporal_affine": "the product with Wᵀ at every step",
    "last_step": "the gradient placed at the last step only",
    "embedding": "the embedding (indices take no gradient)",
}
_PARAMETERS = {
    "rnn": "summed over every time step, with the gradient carried from step t+1 and tanh' from h_t",
    "lstm": "summed over every time step, with the carried dh and dc and the gates in the layer's order",
    "embedding": "each row the sum over every position of its index (np.add.at, not dW[x] = dout)",
}


def typed_hint(spec: Any, layer: int, quantity: str, ok: Any) -> str:
    """A hint for a failing row of a typed network, or ``""`` (``ok((layer, quantity))`` is True when it agrees)."""
    if quantity in ("z", "a") and layer >= 1 and (layer == 1 or ok((layer - 1, "a"))):
        if quantity == "a" and ok((layer, "z")):
            activation = spec.layers[layer - 1].activation
            return f"z_{layer} agrees but a_{layer} does not: check {activation} in layer {layer}"
        source = spec.layers[layer - 1]
        return f"the input of layer {layer} agrees but its output does not: check the forward pass of {source.type}"
    if quantity in ("dL/da", "dL/dx"):
        below = 0 if quantity == "dL/dx" else layer
        above = below + 1
        if above > spec.depth:
            return ""
        source = spec.layers[above - 1]
        formed_from = (above, "delta") if source.has_activation else (above, "dL/da")
        if ok(formed_from):
            name = "x" if below == 0 else f"a_{below}"
            given = "δ" if source.has_activation else "∂L/∂a"
            return (
                f"{given}_{above} agrees but ∂L/∂{name} does not: the backward of layer {above} "
                f"({source.type}) is wrong — check {_WHAT.get(source.type, 'its backward')}"
            )
        return ""
    if quantity.startswith("dL/d") and layer >= 1:
        source = spec.layers[layer - 1]
        formed_from = (layer, "delta") if source.has_activation else (layer, "dL/da")
        if ok(formed_from):
            given = f"δ_{layer}" if source.has_activation else f"∂L/∂a_{layer}"
            what = _PARAMETERS.get(source.type, "the axes it sums over, the scale, L2")
            return (
                f"{given} agrees but {quantity} does not: check the parameter gradient of layer {layer} "
                f"({source.type}) — {what}"
            )
    return ""
