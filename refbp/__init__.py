"""refbp: a hand-written NumPy backpropagation reference for fully connected networks.

Data flows one way: spec → parameters → forward trace → gradients.

>>> from refbp import NetworkSpec, LayerSpec, init_parameters, backprop
"""

from refbp.errors import InputError
from refbp.network import backprop, backward, forward, l2_penalty
from refbp.params import Parameters, init_parameters, load_parameters
from refbp.spec import L2Spec, LayerSpec, LossSpec, NetworkSpec
from refbp.trace import ForwardTrace, Gradients, LayerForward, LayerGradients, quantity_map
from refbp.train import FitResult, fit, sgd_step

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
    "Parameters",
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
