"""Checks whose expected values depend on what the submission returned: rules by name (``FunctionCheck.derive``).

A rule takes the check and the decoded results of its calls and returns the check with its
expected values filled in, and a problem sentence (empty when there is none) that fails every
row of the check when it cannot be done (no dropout mask in the cache, say).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grading.oracle_dropout import DERIVE, derive_train
from grading.plan import FunctionCheck

Rule = Callable[[FunctionCheck, list[Any]], tuple[FunctionCheck, str]]
RULES: dict[str, Rule] = {DERIVE: derive_train}


def derive(check: FunctionCheck, results: list[Any]) -> tuple[FunctionCheck, str]:
    """``check`` with the expected values its rule sets from ``results`` (which the rule may complete)."""
    return RULES[check.derive](check, results)
