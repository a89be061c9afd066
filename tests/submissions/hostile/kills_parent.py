"""Hostile: tries to kill the grader and to read the grader's environment."""

import os
import signal

import numpy as np


def relu_forward(x):
    os.kill(os.getppid(), signal.SIGTERM)
    return np.maximum(x, 0), x


def tanh_forward(x):
    secret = os.environ.get("GRADER_SECRET", "")
    return np.tanh(x) + len(secret), x
