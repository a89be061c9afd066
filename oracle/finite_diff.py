"""Central finite differences of the loss: the third, independent way to get gradients.

Every quantity is obtained by perturbing one thing and re-evaluating the loss, in
float64 whatever ``spec.dtype`` says, with a forward pass of the oracle's own that imports
only refbp's data definitions (spec, trace names, errors, input validation), never refbp's
activations, losses or network code. The formulas follow the contract in :mod:`refbp.spec`.

This module is the public front; the work is done in

* :mod:`oracle.fd_dense`: the dense network's forward pass from any layer, validation, the
  loss, the shapes and layouts (also :func:`~oracle.fd_dense.fd_targets`,
  :func:`~oracle.fd_dense.preactivations`, :func:`~oracle.fd_dense.stacked_loss`);
* :mod:`oracle.fd_entries`: per-entry differences of parameters and intermediates;
* :mod:`oracle.fd_directions` (validated directions, the textbook path, random directions)
  and :mod:`oracle.fd_stacked` (one stacked forward pass for all targets): directional ones;
* :mod:`oracle.fd_typed`, :mod:`oracle.fd_layers`, :mod:`oracle.fd_recurrent`: typed
  (layer-by-layer) networks, with :mod:`oracle.fd_functions` for activations and loss terms.

Quantities (keys ``(layer, quantity)``, layers 1-based as in :mod:`refbp.trace`):

``(l, "dL/dW")``, ``(l, "dL/db")``  perturb one entry of ``W_l`` / ``b_l`` (penalty included).
``(l, "delta")``   perturb one entry of ``z_l`` and run the rest from layer ``l``'s activation.
``(l, "dL/da")``   perturb one entry of ``a_l`` and run from layer ``l + 1``. For the output
                   layer of a from-logits loss the loss is written in the probabilities
                   ``a_L`` (CE ``−Σ t·log a``, BCE ``−Σ [t·log a + (1 − t)·log(1 − a)]``,
                   ``0·log 0 = 0``, same reduction); for ``half_sse``/``mse`` it is the
                   ordinary loss of ``a_L``.
``(0, "dL/dx")``   perturb one entry of the input.

Step and error model. ``h = ε^{1/3}·max(1, |θ|)`` with ``ε`` the float64 machine epsilon
(``h ≈ 6.06e-6`` for ``|θ| ≤ 1``); ``θ ± h`` is rounded and the quotient divides by the
span actually taken. The central difference ``(L(θ+h) − L(θ−h)) / 2h`` then errs by

* truncation ``h²/6·|∂³L/∂θ³|`` (zero for a loss quadratic in ``θ``), plus
* round-off ``≈ ε·|ℓ|/h``, ``ℓ`` the loss terms that were evaluated (the data loss for a
  parameter, one example's term for ``z``/``a``/``x``);

with this step both are ``≈ ε^{2/3} ≈ 3.7e-11`` times the natural scales (``|ℓ|``,
``|∂³L|``), i.e. about ten significant digits *relative to the loss*, not to each entry:
a gradient entry far smaller than ``|L|`` has a correspondingly larger relative error. See
:func:`suggested_tolerance`.

Domain of the probability form: for ``(L, "dL/da")`` with CE/BCE the step is shrunk to
``ε^{1/3}·min(1, a, 1 − a)`` (CE: ``min(1, a)``) so that ``a ± h`` stays inside ``(0, 1)``;
at ``a`` exactly 0 or 1 a one-sided difference with step ``√ε`` into the interior is used,
which yields the true ``±inf`` where the derivative is infinite.

Directional derivatives (:func:`fd_directional`, :func:`fd_directional_many`) move a whole
quantity along a direction instead of one entry, as gradcheck's fast mode and JAX's
``check_grads`` do. :func:`fd_directional_many` runs the ``±h`` copies of every target's
directions as one stack through one forward pass (the fast path; ``stacked=False`` runs the
targets one by one, the textbook path), its work arrays kept per thread between calls.

Kinks. For ``relu``/``leaky_relu`` layers an entry is a *kink* when its perturbation moves
any affected downstream pre-activation of such a layer across 0, i.e. the sign (−1, 0 or +1)
of some pre-activation differs between the ``−h``, unperturbed and ``+h`` evaluations (a
pre-activation exactly 0 that the perturbation moves counts; one it leaves at 0 does not
enter the difference quotient). The difference quotient there mixes the two one-sided
slopes, so its value is NaN and its mask entry True. Pre-activations count from the
perturbed layer on: layer ``l`` itself for ``W_l``, ``b_l`` and ``z_l``; layers ``> l`` for ``a_l``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracle.fd_dense import Key, check_target, fd_targets, layout_swap, prepare_net
from oracle.fd_directions import check_directions, directional_textbook
from oracle.fd_entries import fd_activation, fd_parameter
from oracle.fd_stacked import directional_stacked
from oracle.fd_typed import typed_gradients
from refbp.errors import InputError
from refbp.sequential_spec import SequentialSpec
from refbp.spec import NetworkSpec

__all__ = ["FiniteDifferences", "fd_directional", "fd_directional_many", "fd_gradients", "suggested_tolerance"]


@dataclass
class FiniteDifferences:
    """Per-entry central differences.

    ``values[key]`` is float64 with the shape of the quantity in the spec's layout (e.g.
    ``W_l``'s shape for ``(l, "dL/dW")``, ``(N, n_l)``/``(n_l, N)`` for ``delta``), NaN
    where ``kinks[key]`` (bool, same shape) is True. ``steps[key]`` holds the nominal step
    ``h`` of every entry (same shape; ``√ε`` where a one-sided difference was taken).
    ``loss`` is the unperturbed total loss (data + penalty), the natural scale of the
    absolute error (see :func:`suggested_tolerance`).
    """

    values: dict[Key, np.ndarray]
    kinks: dict[Key, np.ndarray]
    steps: dict[Key, np.ndarray]
    loss: float


def fd_gradients(
    spec: NetworkSpec,
    params: Mapping[str, Any],
    X: Any,
    T: Any,
    targets: Iterable[Key] | None = None,
    *,
    buffers: Mapping[str, Any] | None = None,
) -> FiniteDifferences:
    """Per-entry central differences of the total loss.

    Args:
        spec: the network (its ``dtype`` is ignored: everything runs in float64).
        params: ``{"W1": …, "b1": …}`` with exactly ``spec.parameter_shapes()``.
        X: inputs, ``(N, inputs)`` (``in_out``) or ``(inputs, N)`` (``out_in``).
        T: targets: labels ``(N,)`` for ``index`` targets, else the output's shape.
        targets: keys from :func:`fd_targets` (default: all of them).

    Returns:
        :class:`FiniteDifferences` with one array per key, shaped like the quantity.

    Raises:
        InputError: bad parameters, inputs, targets or keys.

    A typed network (:class:`~refbp.sequential_spec.SequentialSpec`, with its ``buffers``) is
    differenced by :mod:`oracle.fd_typed`; its ``steps`` are not recorded.
    """
    if isinstance(spec, SequentialSpec):
        values, kinks, loss = typed_gradients(spec, params, X, T, targets, buffers=buffers)
        return FiniteDifferences(values=values, kinks=kinks, steps={}, loss=loss)
    with np.errstate(under="ignore"):  # exp(−|z|) flushing to 0 is the intended limit
        net = prepare_net(spec, params, X, T)
        keys = fd_targets(net.spec) if targets is None else [check_target(net.spec, k) for k in targets]
        result = FiniteDifferences(values={}, kinks={}, steps={}, loss=net.loss)
        for key in keys:
            layer, quantity = key
            if quantity in ("dL/dW", "dL/db"):
                values, kinks, steps = fd_parameter(net, layer, quantity[-1])
            else:
                values, kinks, steps = fd_activation(net, layer, "z" if quantity == "delta" else "a")
            if quantity != "dL/db":  # every other quantity is 2-D in the spec's layout
                values, kinks, steps = (np.ascontiguousarray(layout_swap(v, net.spec)) for v in (values, kinks, steps))
            result.values[key], result.kinks[key], result.steps[key] = values, kinks, steps
    return result


def fd_directional(
    spec: NetworkSpec, params: Mapping[str, Any], X: Any, T: Any, target: Key, directions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Directional derivatives of the loss, like ``torch.autograd.gradcheck``'s fast mode.

    Args:
        target: the quantity to move, a key from :func:`fd_targets` (e.g. ``(2, "dL/dW")``
            moves ``W_2``; ``(1, "delta")`` moves ``z_1`` of every example at once).
        directions: ``(k, *shape)``, ``shape`` the quantity's shape in the spec's layout.

    Returns:
        ``(d, kinks)``, both ``(k,)``. With ``v̂ = v/‖v‖`` (Frobenius norm) and
        ``h = ε^{1/3}·max(1, max|θ|)``, ``d = ‖v‖·(L(θ + h·v̂) − L(θ − h·v̂)) / 2h``: the
        derivative along the *unnormalised* ``v``, i.e. ``⟨∇L, v⟩``. A zero direction gives 0.
        ``kinks`` flags directions that move a ``relu``/``leaky_relu`` pre-activation across 0;
        their ``d`` is NaN. For ``(L, "dL/da")`` of CE/BCE the step is shrunk so that
        ``a ± h·v̂`` stays in the domain; a direction pushing an ``a`` at exactly 0 or 1
        outward gives NaN (not flagged).

    Raises:
        InputError: bad inputs, an unknown target or directions of the wrong shape.
    """
    return fd_directional_many(spec, params, X, T, {target: directions})[target]


def fd_directional_many(
    spec: NetworkSpec,
    params: Mapping[str, Any],
    X: Any,
    T: Any,
    directions: Mapping[Key, np.ndarray],
    *,
    stacked: bool = True,
) -> dict[Key, tuple[np.ndarray, np.ndarray]]:
    """:func:`fd_directional` for several targets of one network, validated and run forward once.

    Args:
        directions: ``{target: (k, *shape)}`` as the ``target``/``directions`` arguments of
            :func:`fd_directional`.
        stacked: run the ``±h`` copies of every target's directions through one stacked
            forward pass (the fast path, see :func:`directional_stacked`); ``False`` runs
            the targets one after another (the textbook path). Both give the same numbers
            up to round-off in the last bits of the loss.

    Returns:
        ``{target: (d, kinks)}``, each exactly what :func:`fd_directional` returns for it.
    """
    with np.errstate(under="ignore"):
        net = prepare_net(spec, params, X, T, with_loss=False)
        allowed = fd_targets(net.spec)
        checked = [check_directions(net, check_target(net.spec, k, allowed), v) for k, v in directions.items()]
        results = directional_stacked(net, checked) if stacked else [directional_textbook(net, d) for d in checked]
        return dict(zip(directions, results, strict=True))


def suggested_tolerance(loss_scale: float, grad_scale: float, candidate_dtype: str = "float64") -> tuple[float, float]:
    """``(rtol, atol)`` for ``|candidate − fd| ≤ atol + rtol·|fd|``, entry by entry.

    ``loss_scale`` is ``|L|`` (e.g. :attr:`FiniteDifferences.loss`), ``grad_scale`` the
    largest magnitude of the quantity compared.

    * float64 candidate: the FD error is ``≈ ε^{2/3}·(|ℓ| + |∂³L|) ≈ 4e-11`` times the
      loss-sized scales (module docstring); this allows ~250× that:
      ``rtol = 1e-6``, ``atol = 1e-8·(1 + |L| + max|g|)``.
    * float32 candidate against float64 FD: the candidate's own rounding dominates. Each
      entry is a sum of products carrying ``ε₃₂ ≈ 1.2e-7`` relative error of the *terms*,
      amplified layer by layer, so its absolute error scales with the gradient's (and the
      loss's) magnitude rather than with the entry itself: ``rtol = 1e-3``,
      ``atol = 1e-4·max|g| + 1e-5·(1 + |L|)``.
    """
    loss_scale, grad_scale = abs(float(loss_scale)), abs(float(grad_scale))
    if candidate_dtype == "float64":
        return 1e-6, 1e-8 * (1.0 + loss_scale + grad_scale)
    if candidate_dtype == "float32":
        return 1e-3, 1e-4 * grad_scale + 1e-5 * (1.0 + loss_scale)
    raise InputError("dtype", "float64 or float32", candidate_dtype)
