"""The gate for this project's convolution: random shapes, kernels and paddings, checked against torch.

``CONV_DEMO_IMPL=buggy_dx pytest`` (or ``buggy_dw``) checks a wrong backward pass (red); plain
``pytest`` the fixed one (green).
"""

from __future__ import annotations

import importlib
import os

from conv_gate_demo.conv import conv_forward

from oracle.layer_gate import assert_layer_matches

IMPLEMENTATION = os.environ.get("CONV_DEMO_IMPL", "fixed")
conv_backward = importlib.import_module(f"conv_gate_demo.backward_{IMPLEMENTATION}").conv_backward


def test_conv_layer_matches_the_reference():
    """Stride 1 (all this project uses); kernel, padding, channels and batch drawn by the gate."""
    assert_layer_matches(conv_forward, conv_backward, layer={"type": "conv2d", "stride": 1}, cases=15)
