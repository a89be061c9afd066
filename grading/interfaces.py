"""The graded interfaces by name, and the plan of checks for one interface and seed.

* ``layers`` — row-major layer functions returning ``(out, cache)`` (:mod:`grading.oracle_layers`);
* ``deep`` — column-major deep-network functions (:mod:`grading.oracle_deep`);
* ``rnn`` — CS231n's recurrent layer functions (:mod:`grading.oracle_rnn`);
* ``nhwc`` — the deeplearning.ai convolution notebook, channels last (:mod:`grading.oracle_nhwc`);
* ``dlai-rnn`` — deeplearning.ai's column-major RNN/LSTM cells and sequences (:mod:`grading.oracle_dlai_rnn`);
* ``spec`` — ``backprop(spec_dict, params, X, Y) -> grads`` on refbp's spec (:mod:`grading.oracle_spec`);
* ``cnn`` — CS231n's second assignment: normalisation, dropout, convolution, pooling (:mod:`grading.oracle_cnn`).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass

from grading.plan import FunctionCheck
from grading.torch_confirm import confirm


@dataclass(frozen=True)
class Interface:
    """A graded interface: its name, a one-line description, and the module that builds its checks."""

    name: str
    description: str
    module: str

    @property
    def functions(self) -> tuple[str, ...]:
        """The functions a submission is expected to define, in grading order."""
        return importlib.import_module(self.module).FUNCTIONS


INTERFACES: dict[str, Interface] = {
    item.name: item
    for item in (
        Interface(
            "layers",
            "row-major layer functions: affine/relu/sigmoid/tanh forward and backward, softmax_loss",
            "grading.oracle_layers",
        ),
        Interface(
            "deep",
            "column-major deep network: linear/activation forward and backward, L_model_*, cost, update",
            "grading.oracle_deep",
        ),
        Interface(
            "rnn",
            "row-major recurrent layers: rnn/lstm step and sequence, word embedding, temporal affine and loss",
            "grading.oracle_rnn",
        ),
        Interface(
            "nhwc",
            "channels-last convolution step by step: zero_pad, conv_single_step, conv and pool forward/backward",
            "grading.oracle_nhwc",
        ),
        Interface(
            "dlai-rnn",
            "column-major RNN/LSTM cells and sequences (deeplearning.ai course 5 week 1), parameters/caches dicts",
            "grading.oracle_dlai_rnn",
        ),
        Interface(
            "spec", "backprop(spec_dict, params, X, Y) -> grads for a whole refbp network", "grading.oracle_spec"
        ),
        Interface(
            "cnn",
            "CS231n layers.py of assignment 2: affine/relu, batch/layer/group norm, dropout, naive conv and max pool",
            "grading.oracle_cnn",
        ),
    )
}


@functools.lru_cache(maxsize=8)
def build_plan(interface: str, seed: int) -> tuple[FunctionCheck, ...]:
    """Every check of ``interface`` for ``seed``, each gradient confirmed with torch autograd.

    Raises ``KeyError`` for an unknown interface and ``RuntimeError`` when the oracle and
    autograd disagree (a defect of the grader, never of a submission).
    """
    checks = tuple(importlib.import_module(INTERFACES[interface].module).build(seed))
    problems = confirm(checks)
    if problems:
        raise RuntimeError("the grader's oracle disagrees with torch autograd: " + "; ".join(problems))
    return checks
