"""The ``spec`` interface: ``backprop(spec_dict, params, X, Y) -> grads`` for a whole network.

``spec_dict`` is a :class:`refbp.spec.NetworkSpec` as a dict (its ``to_dict`` form),
``params`` holds ``W1, b1, …`` in the spec's layout, and ``grads`` must hold a gradient
for every parameter under the same key (``dW1`` and ``grad_W1`` are accepted too). The
expected values are refbp's; :mod:`grading.torch_confirm` confirms them with the torch
twin. A bias gradient is the sum of ``δ`` over the batch whatever the reduction (a
``mean`` puts its ``1/N`` into ``δ``). The networks vary with the seed: both layouts,
several losses, a shared bias and an L2 penalty among them; data are drawn away from
ReLU kinks (:class:`oracle.cases.Case`).
"""

from __future__ import annotations

import numpy as np

from grading.plan import Expect, FunctionCheck, Hints, arg, arrays_dict, literal
from grading.sandbox import Call
from grading.torch_confirm import SPEC_TWIN
from oracle.cases import Case
from refbp.network import backprop
from refbp.spec import L2Spec, LayerSpec, LossSpec, NetworkSpec

FUNCTIONS = ("backprop",)


def _specs(rng: np.random.Generator) -> list[NetworkSpec]:
    def width() -> int:
        return int(rng.integers(2, 6))

    return [
        NetworkSpec(
            inputs=width(),
            layers=(LayerSpec(width(), "tanh"), LayerSpec(width(), "identity")),
            loss=LossSpec("half_sse", "mean"),
        ),
        NetworkSpec(
            inputs=width(),
            layers=(LayerSpec(width(), "relu"), LayerSpec(width(), "relu"), LayerSpec(1, "sigmoid")),
            layout="out_in",
            loss=LossSpec("binary_cross_entropy", "mean"),
        ),
        NetworkSpec(
            inputs=width(),
            layers=(LayerSpec(width(), "sigmoid", bias="shared"), LayerSpec(3, "softmax")),
            loss=LossSpec("softmax_cross_entropy", "sum", targets="index"),
            l2=L2Spec(lam=0.1),
        ),
    ]


def _keys(name: str) -> tuple[str, ...]:
    return (name, f"d{name}", f"grad_{name}", f"dL/d{name}")


def build(seed: int) -> list[FunctionCheck]:
    """One check per network (three networks whose sizes and numbers depend on ``seed``)."""
    rng = np.random.default_rng([seed, 11])
    checks = []
    for index, spec in enumerate(_specs(rng), start=1):
        batch = int(rng.integers(3, 6))
        data = Case(spec, batch, seed * 10 + index).materialize()
        _, grads = backprop(spec, data.params, data.X, data.T)
        expected = grads.by_parameter()
        inputs = {**data.params, "X": data.X, "Y": data.T}
        same_shape = {
            key: tuple(v for k, v in expected.items() if k != key and k[0] == key[0] and v.shape == value.shape)
            for key, value in expected.items()
        }
        layers = ", ".join(f"{layer.units} {layer.activation}" for layer in spec.layers)
        checks.append(
            FunctionCheck(
                f"backprop: network {index} ({spec.layout}, {layers}; {spec.loss.kind} {spec.loss.reduction})",
                "backprop",
                (
                    Call(
                        "backprop",
                        (literal(spec.to_dict()), arrays_dict({k: k for k in data.params}), arg("X"), arg("Y")),
                    ),
                ),
                inputs,
                tuple(
                    Expect(
                        f"grads['{key}']",
                        0,
                        (_keys(key),),
                        value,
                        Hints(
                            batch=batch,
                            bias_sum=key.startswith("b"),
                            alternatives={"wrong_layer_order": same_shape[key]},
                        ),
                    )
                    for key, value in expected.items()
                ),
                tuple(inputs),
                twin=SPEC_TWIN,
            )
        )
    return checks
