"""What the grader checks, as data: function checks, the values they expect, and hints for diagnosis.

A :class:`FunctionCheck` is one scenario for one graded function (``target``): the calls
the child makes (a forward call first when the target needs its cache), the input arrays,
and for each output the oracle's value (:class:`Expect`). The oracle modules
(:mod:`grading.oracle_layers`, :mod:`grading.oracle_deep`, :mod:`grading.oracle_spec`)
build these; :mod:`grading.checks` compares what came back against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from grading.sandbox import Call, ChildCheck

#: One step of a path into a returned value: a tuple index, a dict key, or alternative dict keys.
PathStep = int | str | tuple[str, ...]
#: The pseudo-function of a call that returns its arguments as a tuple (the child's ``ARGUMENTS``).
ARGUMENTS = ":arguments"


@dataclass(frozen=True)
class Hints:
    """What the pattern catalogue (:mod:`grading.patterns`) may use to explain a wrong value.

    ``batch`` is the number of examples and ``batch_name`` how the course calls it (``N`` or
    ``m``); ``batch_axis`` the axis of the expected array that indexes examples (``None`` for
    parameter gradients and scalars). ``bias_sum`` is true when the correct bias gradient is
    a sum over examples (so a mean is the "averaged instead of summed" bug).
    ``alternatives`` maps a pattern name to values that a specific bug produces (computed by
    the oracle with that bug), ``per_example`` holds each example's contribution to a
    parameter gradient, shape ``(batch, *expected.shape)``. ``large_inputs`` marks a
    stability check (inputs of magnitude ~1000), where any failure means an overflow or an
    underflow; ``formula`` names what is computed there (``softmax``, ``sigmoid``, ``tanh``)
    so that the hint speaks of it. ``terms`` names the course's variables in the recurrent
    hints (``{"dWh": "dWaa", …}``; see :data:`grading.patterns.COURSE_TERMS`).
    """

    batch: int = 1
    batch_name: str = "N"
    batch_axis: int | None = None
    bias_sum: bool = False
    alternatives: Mapping[str, tuple[np.ndarray, ...]] = field(default_factory=dict)
    per_example: np.ndarray | None = None
    large_inputs: bool = False
    formula: str = ""
    terms: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Expect:
    """One output of a check: the quantity's name, where it is in the returns, the oracle's value.

    ``path`` starts at the return value of call ``call``; a step that is a tuple of strings
    accepts any of those dict keys. ``scalar`` accepts any shape with one entry.
    """

    quantity: str
    call: int
    path: tuple[PathStep, ...]
    value: np.ndarray
    hints: Hints = field(default_factory=Hints)
    scalar: bool = False
    points: float = 1.0


@dataclass(frozen=True)
class FunctionCheck:
    """One scenario of one graded function (see the module docstring).

    ``watch`` names the inputs that must be unchanged afterwards (one extra check row);
    ``twin`` names the torch-autograd twin in :mod:`grading.torch_confirm` that confirms
    the expected gradients, if any. An assignment (:mod:`grading.assignment_plan`) sets the
    rest: ``advisory`` names the advisory check the whole check is (``large_inputs``) and
    ``severity`` how it counts (``fail`` or ``warn``), ``watch_severity`` the same for the
    inputs row (the ``inplace`` advisory); ``rtol``/``atol`` override the tolerance;
    ``grads_keys`` is the accepted grads-key convention of a deep-style ``L_model_backward``;
    ``optional`` marks a function the submission may leave out (its rows are then ``skipped``).
    ``derive`` names a rule of :mod:`grading.derived` that sets the expected values from what
    the submission returned (a dropout mask read from its cache); ``convention`` is the
    assignment's convention that rule follows (``keep`` or ``drop`` for dropout's ``p``).
    ``size1_scalars`` is how the child hands the inputs over: ``numpy`` (plain arrays) or
    ``legacy`` (``float()`` of any array of one entry works, as in older NumPy).
    """

    name: str
    target: str
    calls: tuple[Call, ...]
    inputs: Mapping[str, np.ndarray]
    expects: tuple[Expect, ...]
    watch: tuple[str, ...] = ()
    twin: str | None = None
    watch_points: float = 1.0
    advisory: str = ""
    severity: str = "fail"
    watch_severity: str = "fail"
    rtol: float | None = None
    atol: float | None = None
    grads_keys: str = ""
    optional: bool = False
    derive: str = ""
    convention: str = ""
    size1_scalars: str = "numpy"

    @property
    def needs(self) -> tuple[str, ...]:
        """Functions the check calls, in call order, without repeats."""
        return tuple(dict.fromkeys(c.function for c in self.calls if c.function != ARGUMENTS))

    def child_check(self) -> ChildCheck:
        return ChildCheck(
            id=self.name,
            calls=self.calls,
            inputs=dict(self.inputs),
            watch=self.watch,
            size1_scalars=self.size1_scalars,
        )


def arg(name: str) -> dict[str, str]:
    """A call argument: a fresh copy of the input array ``name``."""
    return {"input": name}


def returned(call: int, *path: int | str) -> dict:
    """A call argument: item ``path`` of what call ``call`` returned (e.g. its cache)."""
    return {"result": call, "path": list(path)}


def argument(call: int, index: int, *path: int | str) -> dict:
    """A call argument: item ``path`` of argument ``index`` of call ``call``, as that call left it (a param dict)."""
    return {"argument": call, "index": index, "path": list(path)}


def literal(value: object) -> dict:
    """A call argument: a JSON value (a string, a number, a spec dict)."""
    return {"literal": value}


def arrays_dict(names: Mapping[str, str]) -> dict:
    """A call argument: a dict ``{key: input array}`` built in the child from inputs ``names[key]``."""
    return {"dict": {key: arg(name) for key, name in names.items()}}


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], low: float = 0.1, high: float = 2.0) -> np.ndarray:
    """Values with random signs and magnitudes in ``[low, high]``: ReLU masks ``x > 0`` and ``x >= 0`` agree."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)
