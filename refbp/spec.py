"""``NetworkSpec``: a fully connected network described as data.

A spec is everything needed to build the same network three times (refbp, the torch
twin, the finite-difference checker): the input width, the dense layers, the weight
layout, the loss and the L2 penalty. It serialises to and from JSON and TOML.

Layouts (the two conventions of the lecture notes):

* ``in_out`` — rows are examples (seed 001): ``X`` is ``(N, inputs)``,
  ``W_l`` is ``(n_{l-1}, n_l)`` and ``z_l = a_{l-1} @ W_l + b_l``.
* ``out_in`` — columns are examples (seeds 002–004): ``X`` is ``(inputs, N)``,
  ``W_l`` is ``(n_l, n_{l-1})`` and ``z_l = W_l @ a_{l-1} + b_l``.

Biases are stored as 1-D arrays in both layouts: ``(n_l,)`` for ``per_unit``, ``(1,)``
for ``shared`` (one scalar added to every unit, as in the notes' case 1) and absent for
``none``.

Losses (``t`` the target, ``y`` the network output, ``N`` the batch size, ``k`` the
output width):

* ``half_sse`` — ``½ Σ (y − t)²``; reduction ``sum`` keeps the sum over the batch,
  ``mean`` divides by ``N`` (the notes' ``J = 1/(2N) Σ‖y − ŷ‖²``).
* ``mse`` — ``Σ (y − t)²``; ``mean`` divides by ``N·k`` (the mean over every entry,
  as ``torch.nn.MSELoss`` does).
* ``softmax_cross_entropy`` — ``−Σ t log softmax(z)``, output activation ``softmax``;
  targets ``index`` (integer labels, shape ``(N,)``) or ``dense`` (one-hot rows or
  columns); ``mean`` divides by ``N``.
* ``binary_cross_entropy`` — ``−Σ [t log σ(z) + (1 − t) log(1 − σ(z))]``, output
  activation ``sigmoid``, computed from the logits; ``mean`` divides by ``N``.

The L2 penalty ``λ/2 · Σ_l ‖W_l‖²_F`` (plus ``‖b_l‖²`` when ``include_bias``) is added to
the data loss after the reduction, as in seed 003's ``J = L + s``.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from refbp import limits
from refbp.errors import InputError
from refbp.fields import boolean, finite_float
from refbp.fields import one_of as _one_of
from refbp.fields import positive_int as _positive_int
from refbp.spec_checks import layer_tuple, of_type
from refbp.text_input import json_loads, read_input_text, toml_loads

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")
KINKED_ACTIVATIONS = ("relu", "leaky_relu")
BIAS_MODES = ("per_unit", "shared", "none")
LAYOUTS = ("in_out", "out_in")
LOSSES = ("half_sse", "mse", "softmax_cross_entropy", "binary_cross_entropy")
SEQUENCE_LOSSES = ("temporal_softmax_cross_entropy",)
"""Losses over time steps, for typed networks whose output is a sequence (see :mod:`refbp.temporal_loss`)."""
REDUCTIONS = ("sum", "mean")
TARGET_FORMS = ("dense", "index")
DTYPES = ("float64", "float32")

# The output activation each fused (from-logits) loss requires.
LOSS_OUTPUT_ACTIVATION = {"softmax_cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}


def parse_json(text: str, *, source: str) -> Any:
    """JSON within the parser limits of :mod:`refbp.text_input`; a failure is an :class:`InputError`."""
    return json_loads(text, source=source)


def _check_keys(data: Any, allowed: tuple[str, ...], where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InputError(where, "a table/object", data)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        field_name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise InputError(field_name, "a known field (one of " + ", ".join(allowed) + ")", "unknown field")
    return data


@dataclass(frozen=True)
class LayerSpec:
    """One dense layer: ``units`` outputs, an elementwise (or softmax) activation, a bias mode."""

    units: int
    activation: str = "identity"
    bias: str = "per_unit"
    negative_slope: float = 0.01
    """Slope of ``leaky_relu`` for ``z < 0``; ignored by the other activations."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", _positive_int(self.units, "LayerSpec.units"))
        _one_of(self.activation, ACTIVATIONS, "LayerSpec.activation")
        _one_of(self.bias, BIAS_MODES, "LayerSpec.bias")
        object.__setattr__(self, "negative_slope", finite_float(self.negative_slope, "LayerSpec.negative_slope"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"units": self.units, "activation": self.activation, "bias": self.bias}
        if self.activation == "leaky_relu":
            out["negative_slope"] = self.negative_slope
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str) -> LayerSpec:
        data = _check_keys(data, ("units", "activation", "bias", "negative_slope"), where)
        if "units" not in data:
            raise InputError(f"{where}.units", "a positive integer", "missing")
        return cls(
            units=_positive_int(data["units"], f"{where}.units"),
            activation=_one_of(data.get("activation", "identity"), ACTIVATIONS, f"{where}.activation"),
            bias=_one_of(data.get("bias", "per_unit"), BIAS_MODES, f"{where}.bias"),
            negative_slope=finite_float(data.get("negative_slope", 0.01), f"{where}.negative_slope"),
        )


@dataclass(frozen=True)
class LossSpec:
    """The data loss; see the module docstring for the exact formulas."""

    kind: str = "half_sse"
    reduction: str = "sum"
    targets: str = "dense"
    """``index`` (integer class labels) is allowed for ``softmax_cross_entropy`` only."""

    def __post_init__(self) -> None:
        _one_of(self.kind, LOSSES + SEQUENCE_LOSSES, "LossSpec.kind")
        _one_of(self.reduction, REDUCTIONS, "LossSpec.reduction")
        _one_of(self.targets, TARGET_FORMS, "LossSpec.targets")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "reduction": self.reduction, "targets": self.targets}

    @classmethod
    def from_dict(cls, data: Any, where: str = "loss") -> LossSpec:
        data = _check_keys(data, ("kind", "reduction", "targets"), where)
        return cls(
            kind=_one_of(data.get("kind", "half_sse"), LOSSES + SEQUENCE_LOSSES, f"{where}.kind"),
            reduction=_one_of(data.get("reduction", "sum"), REDUCTIONS, f"{where}.reduction"),
            targets=_one_of(data.get("targets", "dense"), TARGET_FORMS, f"{where}.targets"),
        )


@dataclass(frozen=True)
class L2Spec:
    """L2 penalty ``lam/2 · Σ‖W‖²_F``; biases are penalised too when ``include_bias``."""

    lam: float = 0.0
    include_bias: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "lam", finite_float(self.lam, "L2Spec.lam", minimum=0.0))
        object.__setattr__(self, "include_bias", boolean(self.include_bias, "L2Spec.include_bias"))

    def to_dict(self) -> dict[str, Any]:
        return {"lambda": self.lam, "include_bias": self.include_bias}

    @classmethod
    def from_dict(cls, data: Any, where: str = "l2") -> L2Spec:
        data = _check_keys(data, ("lambda", "include_bias"), where)
        return cls(
            lam=finite_float(data.get("lambda", 0.0), f"{where}.lambda", minimum=0.0),
            include_bias=boolean(data.get("include_bias", False), f"{where}.include_bias"),
        )


@dataclass(frozen=True)
class NetworkSpec:
    """A fully connected network: input width, dense layers, layout, loss, L2, dtype.

    Layers are numbered from 1 in everything a user reads (``W1``, ``z1``); layer 0 is
    the input ``x``.
    """

    inputs: int
    layers: tuple[LayerSpec, ...]
    layout: str = "in_out"
    loss: LossSpec = field(default_factory=LossSpec)
    l2: L2Spec = field(default_factory=L2Spec)
    dtype: str = "float64"

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _positive_int(self.inputs, "inputs"))
        object.__setattr__(self, "layers", layer_tuple(self.layers, LayerSpec))
        object.__setattr__(self, "loss", of_type(self.loss, LossSpec, "loss"))
        object.__setattr__(self, "l2", of_type(self.l2, L2Spec, "l2"))
        self.validate()

    # -- validation ---------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`InputError` on the first inconsistency (field named, allowed values listed)."""
        _positive_int(self.inputs, "inputs")
        if not self.layers:
            raise InputError("layers", "at least one layer", "[]")
        for i, layer in enumerate(self.layers, start=1):
            where = f"layers[{i - 1}]"
            _positive_int(layer.units, f"{where}.units")
            _one_of(layer.activation, ACTIVATIONS, f"{where}.activation")
            _one_of(layer.bias, BIAS_MODES, f"{where}.bias")
            if layer.activation == "softmax" and i != len(self.layers):
                raise InputError(f"{where}.activation", "softmax on the output layer only", "softmax on a hidden layer")
        _one_of(self.layout, LAYOUTS, "layout")
        _one_of(self.dtype, DTYPES, "dtype")
        _one_of(self.loss.kind, LOSSES, "loss.kind")
        _one_of(self.loss.reduction, REDUCTIONS, "loss.reduction")
        _one_of(self.loss.targets, TARGET_FORMS, "loss.targets")
        out_act = self.layers[-1].activation
        needed = LOSS_OUTPUT_ACTIVATION.get(self.loss.kind)
        if needed is not None and out_act != needed:
            raise InputError(
                f"layers[{len(self.layers) - 1}].activation", f"{needed} (required by loss {self.loss.kind})", out_act
            )
        if self.loss.targets == "index" and self.loss.kind != "softmax_cross_entropy":
            raise InputError("loss.targets", "dense (index labels need loss softmax_cross_entropy)", "index")
        if self.l2.lam < 0:
            raise InputError("l2.lambda", "a number >= 0", self.l2.lam)
        limits.check_widths(self.widths)

    # -- shapes ---------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def widths(self) -> tuple[int, ...]:
        """``(inputs, n_1, …, n_L)``."""
        return (self.inputs, *(layer.units for layer in self.layers))

    @property
    def outputs(self) -> int:
        return self.layers[-1].units

    @property
    def batch_axis(self) -> int:
        """Axis of ``X``, ``z``, ``a`` that indexes examples: 0 for ``in_out``, 1 for ``out_in``."""
        return 0 if self.layout == "in_out" else 1

    def weight_shape(self, layer: int) -> tuple[int, int]:
        """Shape of ``W_layer`` (1-based)."""
        n_in, n_out = self.widths[layer - 1], self.widths[layer]
        return (n_in, n_out) if self.layout == "in_out" else (n_out, n_in)

    def bias_shape(self, layer: int) -> tuple[int, ...] | None:
        """Shape of ``b_layer`` (1-based), or ``None`` when the layer has no bias."""
        mode = self.layers[layer - 1].bias
        return None if mode == "none" else ((self.layers[layer - 1].units,) if mode == "per_unit" else (1,))

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Ordered ``{"W1": shape, "b1": shape, "W2": …}``; layers without bias have no ``b``."""
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(1, self.depth + 1):
            shapes[f"W{layer}"] = self.weight_shape(layer)
            b_shape = self.bias_shape(layer)
            if b_shape is not None:
                shapes[f"b{layer}"] = b_shape
        return shapes

    def activation_shape(self, layer: int, batch: int) -> tuple[int, int]:
        """Shape of ``z_layer``/``a_layer`` for a batch (layer 0 is the input ``X``)."""
        width = self.widths[layer]
        return (batch, width) if self.layout == "in_out" else (width, batch)

    def input_shape(self, batch: int) -> tuple[int, int]:
        return self.activation_shape(0, batch)

    def target_shape(self, batch: int) -> tuple[int, ...]:
        """``(N,)`` for integer labels, otherwise the shape of the network output."""
        return (batch,) if self.loss.targets == "index" else self.activation_shape(self.depth, batch)

    @property
    def n_parameters(self) -> int:
        return sum(math.prod(s) for s in self.parameter_shapes().values())

    # -- (de)serialisation ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "layout": self.layout,
            "dtype": self.dtype,
            "layers": [layer.to_dict() for layer in self.layers],
            "loss": self.loss.to_dict(),
            "l2": self.l2.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "spec") -> NetworkSpec:
        """Build and validate a spec; errors name ``source`` and the offending field.

        A spec with typed layers (see :mod:`refbp.sequential_spec`) gives a ``SequentialSpec``.
        """
        from refbp.sequential_spec import SequentialSpec, is_typed, without_dense_types

        if is_typed(data):
            return SequentialSpec.from_dict(data, source=source)  # type: ignore[return-value]
        if isinstance(data, dict) and isinstance(data.get("layers"), list):
            data = without_dense_types(data) if all(isinstance(x, dict) for x in data["layers"]) else data
        try:
            data = _check_keys(data, ("inputs", "layout", "dtype", "layers", "loss", "l2"), "")
            if "inputs" not in data:
                raise InputError("inputs", "a positive integer", "missing")
            layers = data.get("layers")
            if not isinstance(layers, list) or not layers:
                raise InputError(
                    "layers", "a non-empty list of layer tables", layers if layers is not None else "missing"
                )
            return cls(
                inputs=_positive_int(data["inputs"], "inputs"),
                layers=tuple(LayerSpec.from_dict(layer, f"layers[{i}]") for i, layer in enumerate(layers)),
                layout=_one_of(data.get("layout", "in_out"), LAYOUTS, "layout"),
                loss=LossSpec.from_dict(data.get("loss", {})),
                l2=L2Spec.from_dict(data.get("l2", {})),
                dtype=_one_of(data.get("dtype", "float64"), DTYPES, "dtype"),
            )
        except InputError as err:
            raise err.with_source(source) from None

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_json(cls, text: str, *, source: str = "spec") -> NetworkSpec:
        return cls.from_dict(parse_json(text, source=source), source=source)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str, *, source: str = "spec") -> NetworkSpec:
        try:
            data = toml_loads(text)
        except tomllib.TOMLDecodeError as err:
            raise InputError("", "valid TOML", str(err), source=source) from None
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | Path) -> NetworkSpec:
        """Read a ``.json`` or ``.toml`` spec file."""
        path = Path(path)
        text = read_input_text(path, "a readable spec file")
        if path.suffix.lower() == ".toml":
            return cls.from_toml(text, source=str(path))
        return cls.from_json(text, source=str(path))

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.write_text(
            self.to_toml() if path.suffix.lower() == ".toml" else self.to_json(indent=2) + "\n", encoding="utf-8"
        )

    def replace(self, **changes: Any) -> NetworkSpec:
        """A copy with some top-level fields changed (validated again)."""
        data = {f: getattr(self, f) for f in ("inputs", "layers", "layout", "loss", "l2", "dtype")}
        data.update(changes)
        return NetworkSpec(**data)
