"""The ``cnn`` interface: CS231n's second assignment (``layers.py``), the first assignment's layers included.

The functions, in grading order (each module states its conventions):

* the fully connected layers and losses of :mod:`grading.oracle_layers` — ``affine_forward``,
  ``affine_backward``, ``relu_forward``, ``relu_backward``, ``svm_loss``, ``softmax_loss``;
* batch, layer, spatial batch and spatial group normalisation (:mod:`grading.oracle_norm`);
* inverted dropout, checked through the submission's own mask (:mod:`grading.oracle_dropout`);
* the naive convolution and max pooling (:mod:`grading.oracle_conv`).

Every gradient is confirmed with torch autograd (:mod:`grading.torch_cnn`) before grading.
"""

from __future__ import annotations

from grading import oracle_layers
from grading.oracle_conv import build_conv
from grading.oracle_dropout import build_dropout
from grading.oracle_norm import build_norm
from grading.plan import FunctionCheck

DENSE = ("affine_forward", "affine_backward", "relu_forward", "relu_backward", "svm_loss", "softmax_loss")
FUNCTIONS = (
    *DENSE,
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "layernorm_forward",
    "layernorm_backward",
    "dropout_forward",
    "dropout_backward",
    "conv_forward_naive",
    "conv_backward_naive",
    "max_pool_forward_naive",
    "max_pool_backward_naive",
    "spatial_batchnorm_forward",
    "spatial_batchnorm_backward",
    "spatial_groupnorm_forward",
    "spatial_groupnorm_backward",
)


def build(seed: int) -> list[FunctionCheck]:
    """Every check of the ``cnn`` interface for ``seed`` (shapes and values depend on it)."""
    dense = [check for check in oracle_layers.build(seed) if check.target in DENSE]
    return [*dense, *build_norm(seed), *build_dropout(seed), *build_conv(seed)]
