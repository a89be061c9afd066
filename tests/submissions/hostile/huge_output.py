"""Hostile: floods stdout and stderr (through print and through the raw file descriptors)."""

import os
import sys

import numpy as np

print("x" * 50_000_000)
sys.stderr.write("e" * 50_000_000)


def relu_forward(x):
    for _ in range(100):
        os.write(1, b"y" * 1_000_000)
    return np.maximum(x, 0), x
