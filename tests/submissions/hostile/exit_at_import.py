"""Hostile: leaves at import time."""

import sys

sys.exit(3)
