"""Hostile: one function ends the process outright; the next one is correct."""

import os

import numpy as np


def affine_forward(x, w, b):
    os._exit(0)


def relu_forward(x):
    return np.maximum(x, 0), x
