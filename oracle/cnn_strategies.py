"""Hypothesis strategies for small convolutional networks: the ``cnn`` family of the sweep.

A drawn network is ``inputs (C, H, W)`` of a few pixels, a body of ``min_depth…max_depth``
image layers (``conv2d``, ``max_pool2d``, ``avg_pool2d``, ``batchnorm``, ``groupnorm``,
``layernorm``, ``dropout``; each drawn so that it fits the shape it receives), ``flatten``,
optionally a hidden dense layer (with a ``batchnorm``/``layernorm``/``dropout`` after it), and
a dense output layer that fits the loss. Everything shrinks toward the simplest network:
fewer and narrower channels, smaller kernels and images, fewer layers, convolution before the
other layer types, ``identity`` before the other activations, batch 1. Every normalisation
standardises at least three values together (one or two standardise to 0 or ±1 whatever they are).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from oracle.cases import Case
from refbp.layers.batchnorm import BatchNorm
from refbp.layers.conv import Conv2d
from refbp.layers.dense import Dense
from refbp.layers.dropout import Dropout
from refbp.layers.flatten import Flatten
from refbp.layers.groupnorm import GroupNorm, LayerNorm
from refbp.layers.pool import AvgPool2d, MaxPool2d
from refbp.sequential_spec import SequentialSpec
from refbp.spec import ACTIVATIONS, LOSSES, REDUCTIONS, L2Spec, LossSpec

__all__ = ["IMAGE_LAYERS", "cnn_cases", "cnn_specs", "dense_heads", "penalties"]

IMAGE_LAYERS = ("conv2d", "max_pool2d", "avg_pool2d", "batchnorm", "groupnorm", "layernorm", "dropout")
_HIDDEN = tuple(a for a in ACTIVATIONS if a != "softmax")
MIN_GROUP = 3
"""The fewest values a drawn normalisation layer standardises together (see :func:`_image_layer`)."""


def _image_layer(draw: st.DrawFn, kind: str, shape: tuple[int, int, int], max_channels: int, max_kernel: int) -> Any:
    """One layer of ``kind`` that fits ``shape`` (C, H, W), or ``None`` when none does."""
    channels, height, width = shape
    activation = draw(st.sampled_from(_HIDDEN))
    slope = draw(st.sampled_from([0.01, 0.2])) if activation == "leaky_relu" else 0.01
    if kind == "conv2d":
        padding = draw(st.integers(0, 1))
        limit = min(max_kernel, height + 2 * padding, width + 2 * padding)
        kernel = (draw(st.integers(1, limit)), draw(st.integers(1, limit)))
        stride = draw(st.integers(1, 2))
        bias = draw(st.sampled_from(["per_unit", "none"]))
        filters = draw(st.integers(1, max_channels))
        return Conv2d(filters, kernel, (stride, stride), (padding, padding), activation, bias, slope)
    if kind in ("max_pool2d", "avg_pool2d"):
        if min(height, width) < 2:
            return None
        stride = draw(st.integers(1, 2))
        return (MaxPool2d if kind == "max_pool2d" else AvgPool2d)(kernel=(2, 2), stride=(stride, stride))
    if kind == "batchnorm":
        mode = draw(st.sampled_from(["train", "eval"]))
        momentum = draw(st.sampled_from([0.1, 0.5]))
        return BatchNorm(mode, momentum, 1e-5, draw(st.booleans()), activation, slope)
    # A group of one or two values standardises to 0 or ±1 whatever the input: the true gradient
    # through it is of the order of ε and what the implementations return is rounding noise.
    # Every normalisation drawn sees at least MIN_GROUP values.
    if kind == "groupnorm":
        divisors = [
            g for g in range(1, channels + 1) if channels % g == 0 and channels // g * height * width >= MIN_GROUP
        ]
        return GroupNorm(draw(st.sampled_from(divisors)), 1e-5, activation, slope) if divisors else None
    if kind == "layernorm":
        return LayerNorm(1e-5, activation, slope) if channels * height * width >= MIN_GROUP else None
    return _dropout(draw)


def _dropout(draw: st.DrawFn) -> Dropout:
    convention = draw(st.sampled_from(["keep_prob", "drop_prob"]))
    keep = draw(st.sampled_from([0.5, 0.8]))
    return Dropout(keep, convention, draw(st.sampled_from(["train", "eval"])), draw(st.integers(0, 1000)))


@st.composite
def cnn_specs(
    draw: st.DrawFn,
    *,
    min_depth: int = 1,
    max_depth: int = 3,
    max_channels: int = 3,
    max_kernel: int = 3,
    max_image: int = 6,
    layers: Sequence[str] = IMAGE_LAYERS,
    losses: Sequence[str] = LOSSES,
    reductions: Sequence[str] = REDUCTIONS,
    l2: bool = True,
    dtype: str = "float64",
) -> SequentialSpec:
    """A valid convolutional :class:`SequentialSpec` (see the module docstring)."""
    for name, value in (("max_channels", max_channels), ("max_kernel", max_kernel), ("max_image", max_image)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"cnn_specs: {name}: expected a positive integer, got {value!r}")
    if not (isinstance(min_depth, int) and isinstance(max_depth, int) and 1 <= min_depth <= max_depth):
        raise ValueError(f"cnn_specs: min_depth/max_depth: expected 1 <= min <= max, got {min_depth!r}, {max_depth!r}")
    chosen = [layers] if isinstance(layers, str) else list(layers)
    if not chosen or any(kind not in IMAGE_LAYERS for kind in chosen):
        raise ValueError(f"cnn_specs: layers: expected a non-empty list from {', '.join(IMAGE_LAYERS)}, got {chosen!r}")
    shape = (draw(st.integers(1, max_channels)), draw(st.integers(1, max_image)), draw(st.integers(1, max_image)))
    inputs, body = shape, []
    for _ in range(draw(st.integers(min_depth, max_depth))):
        layer = _image_layer(draw, draw(st.sampled_from(chosen)), shape, max_channels, max_kernel)
        if layer is None:
            continue
        body.append(layer)
        shape = layer.output_shape(shape, "")
    body.append(Flatten())
    if draw(st.booleans()):
        body.append(Dense(draw(st.integers(1, 4)), draw(st.sampled_from(_HIDDEN)), "per_unit"))
        extra = draw(st.sampled_from(["none", "batchnorm", "layernorm", "dropout"]))
        if extra == "batchnorm":
            body.append(BatchNorm(draw(st.sampled_from(["train", "eval"]))))
        elif extra == "layernorm" and body[-1].units >= MIN_GROUP:
            body.append(LayerNorm())
        elif extra == "dropout":
            body.append(_dropout(draw))
    output, loss = draw(dense_heads(losses, reductions))
    penalty = draw(penalties()) if l2 else L2Spec()
    return SequentialSpec(inputs=inputs, layers=(*body, output), loss=loss, l2=penalty, dtype=dtype)


@st.composite
def dense_heads(draw: st.DrawFn, losses: Sequence[str], reductions: Sequence[str]) -> tuple[Dense, LossSpec]:
    """A dense output layer of 1…3 units and a loss from ``losses`` that fits it."""
    kind = draw(st.sampled_from(list(losses)))
    if kind == "softmax_cross_entropy":
        out_activation = "softmax"
    elif kind == "binary_cross_entropy":
        out_activation = "sigmoid"
    else:
        out_activation = draw(st.sampled_from([*_HIDDEN, "softmax"]))
    units = draw(st.integers(2 if out_activation == "softmax" else 1, 3))
    output = Dense(units, out_activation, draw(st.sampled_from(["per_unit", "shared", "none"])))
    targets = draw(st.sampled_from(["dense", "index"])) if kind == "softmax_cross_entropy" else "dense"
    return output, LossSpec(kind=kind, reduction=draw(st.sampled_from(list(reductions))), targets=targets)


def penalties() -> st.SearchStrategy[L2Spec]:
    """No L2 (shrinks here) or ``λ`` 0.1 / 0.01, with or without the biases."""
    some = st.builds(L2Spec, lam=st.sampled_from([0.1, 0.01]), include_bias=st.booleans())
    return st.one_of(st.just(L2Spec()), some)


@st.composite
def cnn_cases(
    draw: st.DrawFn,
    specs: st.SearchStrategy[SequentialSpec] | None = None,
    *,
    max_batch: int = 4,
    dtype: str = "float64",
    **spec_bounds: Any,
) -> Case:
    """A :class:`Case` of the ``cnn`` family: a spec (``specs``, or :func:`cnn_specs` with ``spec_bounds``),
    a batch of 1…``max_batch`` (more when a train-mode batchnorm needs them), a seed."""
    spec = draw(specs if specs is not None else cnn_specs(dtype=dtype, **spec_bounds))
    # A train-mode batchnorm standardises batch × pixels values per channel: at least MIN_GROUP.
    least = 1
    for number, layer in enumerate(spec.layers, start=1):
        if layer.type == "batchnorm" and layer.mode == "train":
            pixels = math.prod(spec.shapes[number - 1][1:])
            least = max(least, -(-MIN_GROUP // pixels))
    batch = draw(st.integers(least, max(max_batch, least)))
    return Case(spec=spec, batch=batch, seed=draw(st.integers(0, 2**16)))
