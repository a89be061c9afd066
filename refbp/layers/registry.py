"""The layer registry: every layer type of a typed network, by the name its spec's ``type`` gives.

A layer type is a spec class and two functions:

* the spec class (a frozen dataclass) has ``from_dict(data, where)``, ``to_dict()``,
  ``output_shape(in_shape, where)``, ``parameter_shapes(in_shape)`` and
  ``buffer_shapes(in_shape)`` (shapes of one example, without the batch axis; parameter
  and buffer kinds from :mod:`refbp.layers.names`), and ``has_activation``: whether the layer
  has an ``activation`` field, so a pre-activation ``z`` and a ``δ``;
* ``forward(layer, params, x, buffers) -> (out, cache, state)`` and
  ``backward(layer, params, cache, grad_out) -> (grad_x, grads)``, with ``params``,
  ``buffers``, ``state`` (updated buffers) and ``grads`` keyed by kind (``"W"``, ``"gamma"``, …);
* ``steps``: the per-step gradients a recurrent layer's backward also puts in ``grads``, by step
  kind (``"h"``, ``"c"`` of :data:`refbp.layers.names.STEP_KINDS`, arrays ``(N, T, H)``), each
  with the formula that forms it (the diagnosis quotes it). Empty for every other layer.

Nothing else in refbp or the oracle knows a layer type by name; a new layer type is a new
module and one entry here (and its twin in :mod:`oracle.twin` and :mod:`oracle.fd_layers`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from refbp.errors import InputError
from refbp.layers import (
    batchnorm,
    conv,
    dense,
    dropout,
    embedding,
    flatten,
    groupnorm,
    last_step,
    lstm,
    pool,
    rnn,
    temporal_affine,
)


@dataclass(frozen=True)
class LayerType:
    name: str
    spec: type
    forward: Callable[..., tuple]
    backward: Callable[..., tuple]
    steps: Mapping[str, str] = field(default_factory=dict)


LAYER_TYPES: dict[str, LayerType] = {
    entry.name: entry
    for entry in (
        LayerType("dense", dense.Dense, dense.forward, dense.backward),
        LayerType("conv2d", conv.Conv2d, conv.forward, conv.backward),
        LayerType("max_pool2d", pool.MaxPool2d, pool.max_forward, pool.max_backward),
        LayerType("avg_pool2d", pool.AvgPool2d, pool.avg_forward, pool.avg_backward),
        LayerType("batchnorm", batchnorm.BatchNorm, batchnorm.forward, batchnorm.backward),
        LayerType("layernorm", groupnorm.LayerNorm, groupnorm.layer_forward, groupnorm.layer_backward),
        LayerType("groupnorm", groupnorm.GroupNorm, groupnorm.group_forward, groupnorm.group_backward),
        LayerType("dropout", dropout.Dropout, dropout.forward, dropout.backward),
        LayerType("flatten", flatten.Flatten, flatten.forward, flatten.backward),
        LayerType("embedding", embedding.Embedding, embedding.forward, embedding.backward),
        LayerType("rnn", rnn.RNN, rnn.forward, rnn.backward, rnn.STEPS),
        LayerType("lstm", lstm.LSTM, lstm.forward, lstm.backward, lstm.STEPS),
        LayerType("temporal_affine", temporal_affine.TemporalAffine, temporal_affine.forward, temporal_affine.backward),
        LayerType("last_step", last_step.LastStep, last_step.forward, last_step.backward),
    )
}


def layer_type(layer: Any) -> LayerType:
    """The registry entry of a layer spec."""
    return LAYER_TYPES[layer.type]


def layer_from_dict(data: Any, where: str) -> Any:
    """A layer spec from its table; a table without ``type`` is a dense layer."""
    if not isinstance(data, dict):
        raise InputError(where, "a table/object", data)
    name = data.get("type", "dense")
    if name not in LAYER_TYPES:
        raise InputError(f"{where}.type", "one of " + ", ".join(LAYER_TYPES), name)
    return LAYER_TYPES[name].spec.from_dict(data, where)
