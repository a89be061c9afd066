"""Hostile: starts processes meant to outlive the grader (a sleeper in its own session).

The sleepers run ``sleep 987.654`` so that a test can look for them afterwards.
"""

import os
import subprocess

import numpy as np

STARTED = []

try:
    subprocess.Popen(["sleep", "987.654"], start_new_session=True)
    STARTED.append("popen")
except Exception:
    pass

try:
    pid = os.fork()
    if pid == 0:
        os.setsid()
        os.execv("/bin/sleep", ["sleep", "987.654"])
    STARTED.append("fork")
except Exception:
    pass


def relu_forward(x):
    return np.maximum(x, 0), np.array([len(STARTED)])
