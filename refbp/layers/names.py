"""The names a typed network's layers use, in one place (no imports: every floor may read them).

Parameters are named ``<kind><layer>`` with 1-based layer numbers counting every layer of
the list (a pooling layer takes a number too): ``W3``, ``b3`` of a convolution or dense
layer, ``gamma2``, ``beta2`` of a normalisation layer, ``Wx2``, ``Wh2``, ``b2``, ``h02`` of a
recurrent layer (``W1`` of an embedding). Buffers (state that is not
differentiated) are named the same way: ``running_mean2``, ``running_var2`` of a batchnorm
layer, ``mask4`` of a dropout layer.
"""

from __future__ import annotations

PARAMETER_KINDS = ("W", "b", "gamma", "beta", "Wx", "Wh", "h0")
"""Every parameter kind, in the order a layer lists them."""
WEIGHT_KINDS = ("W", "Wx", "Wh")
"""The kinds L2 penalises (with ``include_bias``, ``b`` too; never ``γ``, ``β``, ``h0``)."""
BUFFER_KINDS = ("running_mean", "running_var", "mask")
"""Every buffer kind: running statistics of batchnorm, the explicit dropout mask."""
STATE_QUANTITIES = ("running_mean", "running_var")
"""Buffers a forward pass updates (train-mode batchnorm), compared as forward quantities."""
PARAMETER_QUANTITIES = tuple(f"dL/d{kind}" for kind in PARAMETER_KINDS)
"""``dL/dW``, ``dL/db``, ``dL/dgamma``, …: the quantity name of each parameter's gradient."""
STEP_KINDS = ("h", "c")
"""Per-step states whose total gradient a recurrent layer's backward reports, ``(N, T, H)``: ``∂L/∂h_t``
and ``∂L/∂c_t`` (the LSTM's cell), each including what is carried back from step ``t + 1``."""
STEP_QUANTITIES = tuple(f"dL/d{kind}" for kind in STEP_KINDS)
"""``dL/dh``, ``dL/dc``: compared one time step at a time."""


def split_name(name: str) -> tuple[str, int] | None:
    """``"gamma2"`` → ``("gamma", 2)``; ``None`` for a name that is not ``<kind><positive int>``."""
    for kind in (*PARAMETER_KINDS, *BUFFER_KINDS):
        rest = name[len(kind) :]
        if name.startswith(kind) and rest.isdigit() and int(rest) >= 1 and not rest.startswith("0"):
            return kind, int(rest)
    return None
