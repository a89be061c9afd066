"""``SequentialSpec``: a network of typed layers (convolution, pooling, normalisation, dropout, …) as data.

Written like a dense :class:`~refbp.spec.NetworkSpec`, with ``inputs`` the shape of one
example and a ``type`` on each layer (a layer without ``type`` is dense)::

    inputs = [1, 6, 6]                        # (C, H, W): images are NCHW, examples in rows
    [[layers]]
    type = "conv2d"                            # W1 (2, 1, 3, 3), b1 (2,)
    filters = 2
    kernel = 3
    padding = 1
    activation = "relu"
    [[layers]]
    type = "max_pool2d"                        # no parameters; stride defaults to the kernel
    kernel = 2
    [[layers]]
    type = "batchnorm"                         # gamma3 (2,), beta3 (2,); buffers running_mean3, running_var3
    mode = "train"
    [[layers]]
    type = "flatten"
    [[layers]]
    type = "dropout"
    keep_prob = 0.8                            # or drop_prob = 0.2
    [[layers]]
    units = 3                                  # dense: W6 (18, 3), b6 (3,)
    activation = "softmax"
    [loss]
    kind = "softmax_cross_entropy"

Layers are numbered from 1 in the order given, every layer counting (see
:mod:`refbp.layers.names` for the parameter and buffer names). The layout is ``in_out``
(examples on axis 0) and the network output must be flat, ``(N, k)``, except under the
sequence loss ``temporal_softmax_cross_entropy``: scores ``(N, T, V)``, labels ``(N, T)``
with ``-1`` marking a masked step (:mod:`refbp.temporal_loss`). The loss and L2 are
those of :mod:`refbp.spec`; L2 penalises every ``W`` (and ``b`` with ``include_bias``), never
``γ``/``β``. Loading a spec through :meth:`NetworkSpec.from_dict` gives a ``SequentialSpec``
when some layer has a ``type`` other than ``dense`` or ``inputs`` is a shape; a spec of dense
layers only stays a ``NetworkSpec``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import tomli_w

from refbp.errors import InputError
from refbp.layers.fields import check_keys, choice, integer
from refbp.layers.registry import layer_from_dict, layer_type
from refbp.spec import DTYPES, LOSS_OUTPUT_ACTIVATION, SEQUENCE_LOSSES, L2Spec, LossSpec


def is_typed(data: Any) -> bool:
    """Whether a spec table describes a typed network (some typed layer, or image-shaped inputs)."""
    if not isinstance(data, dict):
        return False
    layers = data.get("layers")
    typed_layer = isinstance(layers, list) and any(
        isinstance(layer, dict) and layer.get("type", "dense") != "dense" for layer in layers
    )
    return typed_layer or isinstance(data.get("inputs"), list)


def without_dense_types(data: dict) -> dict:
    """A spec table of dense layers with their ``type = "dense"`` dropped: today's dense format."""
    layers = [{k: v for k, v in layer.items() if k != "type"} for layer in data["layers"]]
    return {**data, "layers": layers}


@dataclass(frozen=True)
class SequentialSpec:
    """Input shape of one example, typed layers, loss, L2, dtype. Layers are numbered from 1."""

    inputs: tuple[int, ...]
    layers: tuple[Any, ...]
    loss: LossSpec = field(default_factory=LossSpec)
    l2: L2Spec = field(default_factory=L2Spec)
    dtype: str = "float64"

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "layers", tuple(self.layers))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InputError` on the first inconsistency (shapes are worked through every layer)."""
        if not self.inputs or len(self.inputs) > 3:
            raise InputError("inputs", "a shape [D] or [C, H, W]", list(self.inputs))
        for size in self.inputs:
            integer(size, "inputs")
        if not self.layers:
            raise InputError("layers", "at least one layer", "[]")
        for i, layer in enumerate(self.layers):
            if layer.has_activation and layer.activation == "softmax" and i != len(self.layers) - 1:
                raise InputError(
                    f"layers[{i}].activation", "softmax on the output layer only", "softmax on a hidden layer"
                )
        shapes = self.shapes
        last_where = f"layers[{len(self.layers) - 1}]"
        if self.sequence_output:
            if len(shapes[-1]) != 2:
                raise InputError(last_where, f"a sequence output (N, T, V) for loss {self.loss.kind}", f"{shapes[-1]}")
            if self.loss.targets != "index":
                raise InputError("loss.targets", f"index (loss {self.loss.kind} takes labels (N, T))", "dense")
        elif len(shapes[-1]) != 1:
            raise InputError(last_where, "a flat output (N, k)", f"shape {shapes[-1]}")
        choice(self.dtype, DTYPES, "dtype")
        needed = LOSS_OUTPUT_ACTIVATION.get(self.loss.kind)
        last = self.layers[-1]
        out_act = last.activation if last.has_activation else "none"
        if needed is not None and out_act != needed:
            raise InputError(
                f"layers[{len(self.layers) - 1}].activation", f"{needed} (required by loss {self.loss.kind})", out_act
            )
        if self.loss.targets == "index" and self.loss.kind not in ("softmax_cross_entropy", *SEQUENCE_LOSSES):
            raise InputError("loss.targets", "dense (index labels need loss softmax_cross_entropy)", "index")

    # -- shapes (of one example; the batch axis comes first) --------------------------
    @cached_property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """``(input shape, output shape of layer 1, …, of layer L)``."""
        shapes = [self.inputs]
        for i, layer in enumerate(self.layers):
            shapes.append(tuple(layer.output_shape(shapes[-1], f"layers[{i}]")))
        return tuple(shapes)

    @property
    def layout(self) -> str:
        return "in_out"

    @property
    def batch_axis(self) -> int:
        return 0

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def outputs(self) -> int:
        """Output units: ``k`` of a flat output, ``V`` (scores per step) of a sequence output ``(T, V)``."""
        return self.shapes[-1][-1]

    @property
    def sequence_output(self) -> bool:
        """Whether the loss works over time steps: the output is ``(N, T, V)``, the targets ``(N, T)``."""
        return self.loss.kind in SEQUENCE_LOSSES

    def _named(self, which: str) -> dict[str, tuple[int, ...]]:
        shapes = self.shapes
        out: dict[str, tuple[int, ...]] = {}
        for number, layer in enumerate(self.layers, start=1):
            for kind, shape in getattr(layer, which)(shapes[number - 1]).items():
                out[f"{kind}{number}"] = tuple(shape)
        return out

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Ordered ``{"W1": shape, "b1": …, "gamma3": …}``."""
        return self._named("parameter_shapes")

    def buffer_shapes(self) -> dict[str, tuple[int, ...]]:
        """Ordered ``{"running_mean3": shape, …}`` (dropout masks depend on the batch and are not listed)."""
        return self._named("buffer_shapes")

    def activation_shape(self, layer: int, batch: int) -> tuple[int, ...]:
        return (batch, *self.shapes[layer])

    def input_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, *self.inputs)

    def target_shape(self, batch: int) -> tuple[int, ...]:
        if self.sequence_output:
            return (batch, self.shapes[-1][0])
        return (batch,) if self.loss.targets == "index" else (batch, self.outputs)

    @property
    def n_parameters(self) -> int:
        return sum(math.prod(s) for s in self.parameter_shapes().values())

    # -- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": list(self.inputs),
            "dtype": self.dtype,
            "layers": [layer.to_dict() for layer in self.layers],
            "loss": self.loss.to_dict(),
            "l2": self.l2.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "spec") -> SequentialSpec:
        try:
            data = check_keys(data, ("inputs", "layout", "dtype", "layers", "loss", "l2"), "") if data else data
            if not isinstance(data, dict):
                raise InputError("", "a table/object", data)
            if data.get("layout", "in_out") != "in_out":
                raise InputError("layout", "in_out (typed networks keep examples on axis 0)", data["layout"])
            inputs = data.get("inputs", "missing")
            inputs = [inputs] if isinstance(inputs, int) and not isinstance(inputs, bool) else inputs
            if not isinstance(inputs, list):
                raise InputError("inputs", "a shape [D] or [C, H, W]", inputs)
            layers = data.get("layers")
            if not isinstance(layers, list) or not layers:
                raise InputError(
                    "layers", "a non-empty list of layer tables", layers if layers is not None else "missing"
                )
            return cls(
                inputs=tuple(integer(size, "inputs") for size in inputs),
                layers=tuple(layer_from_dict(layer, f"layers[{i}]") for i, layer in enumerate(layers)),
                loss=LossSpec.from_dict(data.get("loss", {})),
                l2=L2Spec.from_dict(data.get("l2", {})),
                dtype=choice(data.get("dtype", "float64"), DTYPES, "dtype"),
            )
        except InputError as err:
            raise err.with_source(source) from None

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def replace(self, **changes: Any) -> SequentialSpec:
        """A copy with some top-level fields changed (validated again)."""
        data = {f: getattr(self, f) for f in ("inputs", "layers", "loss", "l2", "dtype")}
        data.update(changes)
        return SequentialSpec(**data)

    def layer_kind(self, layer: int) -> str:
        """The registry name of layer ``layer`` (1-based)."""
        return layer_type(self.layers[layer - 1]).name
