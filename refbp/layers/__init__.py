"""Typed layers: one module per family, forward and backward side by side (see :mod:`refbp.layers.registry`)."""
