"""refbp: a hand-written NumPy backpropagation reference for fully connected networks.

Data flows one way: spec → parameters → forward trace → gradients.

>>> from refbp import NetworkSpec, LayerSpec, init_parameters, backprop
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Where each public name lives. They are imported on first use, so that ``refbp.cli``
# (which imports this package) starts at once and can take Ctrl-C from its first moment.
_HOME = {
    "InputError": "refbp.errors",
    "backprop": "refbp.network",
    "backward": "refbp.network",
    "forward": "refbp.network",
    "l2_penalty": "refbp.network",
    "Parameters": "refbp.params",
    "init_parameters": "refbp.params",
    "load_parameters": "refbp.params",
    "L2Spec": "refbp.spec",
    "LayerSpec": "refbp.spec",
    "LossSpec": "refbp.spec",
    "NetworkSpec": "refbp.spec",
    "ForwardTrace": "refbp.trace",
    "Gradients": "refbp.trace",
    "LayerForward": "refbp.trace",
    "LayerGradients": "refbp.trace",
    "quantity_map": "refbp.trace",
    "FitResult": "refbp.train",
    "NonFiniteError": "refbp.train",
    "Trainer": "refbp.train",
    "fit": "refbp.train",
    "sgd_step": "refbp.train",
}

if TYPE_CHECKING:
    from refbp.errors import InputError
    from refbp.network import backprop, backward, forward, l2_penalty
    from refbp.params import Parameters, init_parameters, load_parameters
    from refbp.spec import L2Spec, LayerSpec, LossSpec, NetworkSpec
    from refbp.trace import ForwardTrace, Gradients, LayerForward, LayerGradients, quantity_map
    from refbp.train import FitResult, NonFiniteError, Trainer, fit, sgd_step


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'refbp' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


__all__ = [
    "FitResult",
    "ForwardTrace",
    "Gradients",
    "InputError",
    "L2Spec",
    "LayerForward",
    "LayerGradients",
    "LayerSpec",
    "LossSpec",
    "NetworkSpec",
    "NonFiniteError",
    "Parameters",
    "Trainer",
    "backprop",
    "backward",
    "fit",
    "forward",
    "init_parameters",
    "l2_penalty",
    "load_parameters",
    "quantity_map",
    "sgd_step",
]
