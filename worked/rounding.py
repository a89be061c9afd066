"""The printed-precision rule: when is a number printed in the notes consistent with the true value?

A claim is written as a string exactly as printed (``"0.0020"``, ``"-0.25"``, ``"2"``,
``"1.2e-3"``), so that its precision is kept. Its *unit* ``u`` is one unit in the last
printed digit: ``10^-d`` for ``d`` printed decimals (``u = 1`` for an integer), and
``10^(e - d)`` for e-notation with ``d`` decimals in the mantissa (``"1.2e-3"`` → ``1e-4``,
i.e. two significant digits).

With ``c`` the printed value and ``v`` the true value, the claim is

* ``rounded`` — ``|v − c| ≤ u/2``: ``c`` is ``v`` rounded to the printed precision (a true
  value exactly half-way rounds either way, as hand computation does; ``v`` is given the
  float64 rounding of its own computation, a few ulps, so that a tie stays a tie);
* ``hand-rounded`` — only for claims with a fractional part or an exponent:
  ``u/2 < |v − c| ≤ u·(1 + s)``, within one unit of the last printed digit plus ``s``
  units of stated slack (default ``s = 0``). An author who rounds every intermediate
  result to the printed precision lands within one unit of the last digit of the
  correctly rounded value (``0.1502 · 0.0132 = 0.00198`` prints as ``0.0020``); a longer
  chain of rounded intermediates can drift further, and the example file states that
  as slack. Integer claims (``"2"``) get no such allowance: an integer is printed as
  what it is, not as the end of a chain of rounded decimals, so ``"2"`` must round;
* ``wrong`` — anything else.

A fraction (``"1/2"``, ``"-3/4"``) is an exact claim: it is ``exact`` when ``v`` equals it
up to the float64 rounding of the computation (relative ``1e-12``), and ``wrong``
otherwise.

An exponent claim is compared at its significant digits: ``"1.2e-3"`` says two
significant digits, so its unit is the smaller of ``10^(e − d)`` and one unit in the
second significant digit of the true value (rounded to two digits). ``"1e1"``, ``"1e2"``
and ``"1e400"`` are then not 0.525 (``"5e-1"`` is), and ``"1e-400"`` is not either. A zero
mantissa (``"0e0"``) has no digits to drift: like an integer it gets no hand-rounding.

``"-0.0000"`` is the number 0: it is consistent with any ``|v| ≤ u/2`` whatever the sign.
Worked edges (``v = 0.00235``, ``u = 1e-4``): ``"0.0023"`` and ``"0.0024"`` are both
``rounded`` (a tie); ``"0.0025"`` and ``"0.0022"`` are 1.5 units away, ``wrong``.
With ``v = 0.00236``: ``"0.0024"`` is ``rounded``, ``"0.0023"`` (0.6 units) is
``hand-rounded``, ``"0.0025"`` (1.4 units) is ``wrong``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction

ROUNDED = "rounded"
HAND_ROUNDED = "hand-rounded"
EXACT = "exact"

# sign, integer digits, optional fraction, optional exponent; "−" (U+2212) is read as "-".
_NUMBER = re.compile(r"^(?P<sign>[+-]?)(?P<int>\d+)(?:\.(?P<frac>\d*))?(?:[eE](?P<exp>[+-]?\d+))?$")
_FRACTION = re.compile(r"^(?P<num>[+-]?\d+)/(?P<den>\d+)$")
_FLOAT_ULPS = 8  # how many float64 ulps of the true value count as its own rounding
_EXACT_RTOL = 1e-12


@dataclass(frozen=True)
class Printed:
    """A number as printed: its text, exact value and the unit of its last digit."""

    text: str
    value: Decimal
    unit: Decimal
    decimals: int
    """Digits after the point (in the mantissa for e-notation)."""
    exponent: int | None
    """The printed exponent, ``None`` for fixed notation."""
    exact: bool = False
    """A fraction such as ``"1/2"``: an exact value, not a rounded one (``unit`` is then 1)."""

    @property
    def is_integer(self) -> bool:
        """Printed without a point or an exponent, like ``"2"`` or ``"-1"``."""
        return self.decimals == 0 and self.exponent is None and "." not in self.text and not self.exact

    def __float__(self) -> float:
        return float(self.value)


def parse_printed(text: str) -> Printed:
    """Read a printed number; ``ValueError`` (message: what was expected) when it is not one."""
    if not isinstance(text, str):
        raise ValueError('a number written as a string, as printed (e.g. "0.0020")')
    clean = text.strip().replace("\u2212", "-")
    fraction = _FRACTION.match(clean)
    if fraction and int(fraction.group("den")) > 0:
        value = Decimal(int(fraction.group("num"))) / Decimal(int(fraction.group("den")))
        return Printed(text=clean, value=value, unit=Decimal(1), decimals=0, exponent=None, exact=True)
    match = _NUMBER.match(clean)
    if not match:
        raise ValueError('a number as printed, e.g. "0.0020", "-0.25", "2", "1.2e-3" or "1/2"')
    frac = match.group("frac") or ""
    exponent = int(match.group("exp")) if match.group("exp") is not None else None
    decimals = len(frac)
    unit = Decimal(1).scaleb((exponent or 0) - decimals)
    return Printed(text=clean, value=Decimal(clean), unit=unit, decimals=decimals, exponent=exponent)


def _significant_digits(printed: Printed) -> int:
    """Significant digits of an exponent claim's mantissa (``"1.20e-3"`` → 3, ``"0e0"`` → 0)."""
    mantissa = re.sub(r"[eE].*$", "", printed.text).lstrip("+-").replace(".", "")
    return len(mantissa.lstrip("0"))


def effective_unit(printed: Printed, true_value: float) -> Decimal:
    """The unit the claim is judged in: the printed one, or for an exponent claim at most one unit in its
    last significant digit at the true value's magnitude."""
    digits = _significant_digits(printed) if printed.exponent is not None else 0
    if digits == 0 or true_value == 0 or not math.isfinite(true_value):
        return printed.unit
    exact = Decimal(true_value)
    try:
        rounded = exact.quantize(Decimal(1).scaleb(exact.adjusted() - digits + 1), rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        return printed.unit
    return min(printed.unit, Decimal(1).scaleb(rounded.adjusted() - digits + 1))


def distance_in_units(printed: Printed, true_value: float) -> float:
    """``|v − c| / u``, computed exactly in decimal from the float64 ``v`` (``u`` the effective unit)."""
    return float(abs(Decimal(true_value) - printed.value) / effective_unit(printed, true_value))


def judge(printed: Printed, true_value: float, slack_units: float = 0.0) -> str | None:
    """``"rounded"``, ``"hand-rounded"``, ``"exact"`` or ``None`` (wrong) by the rule of the module docstring."""
    if not math.isfinite(true_value):
        return None
    if printed.exact:
        claimed = float(printed.value)
        return EXACT if abs(true_value - claimed) <= _EXACT_RTOL * max(abs(claimed), abs(true_value)) else None
    units = distance_in_units(printed, true_value)
    own_rounding = min(
        0.1, float(Decimal(_FLOAT_ULPS * math.ulp(abs(true_value))) / effective_unit(printed, true_value))
    )
    if units <= 0.5 + own_rounding:
        return ROUNDED
    zero_mantissa = printed.exponent is not None and printed.value == 0
    if not printed.is_integer and not zero_mantissa and units <= 1.0 + slack_units + own_rounding:
        return HAND_ROUNDED
    return None


def _as_fraction(printed: Printed, value: float) -> str:
    """``value`` as a fraction over the printed denominator when it is one (``"1/2"``, ``"-3/2"``, ``"1"``),
    else with 6 significant digits."""
    match = _FRACTION.match(printed.text)
    denominator = int(match.group("den")) if match else 1
    numerator = value * denominator
    if not match or abs(numerator - round(numerator)) > _EXACT_RTOL * max(1.0, abs(numerator)):
        return f"{value:.6g}"
    fraction = Fraction(round(numerator), denominator)
    return str(fraction.numerator) if fraction.denominator == 1 else f"{fraction.numerator}/{fraction.denominator}"


def round_like(printed: Printed, value: float) -> str:
    """``value`` written with the precision (and notation) of ``printed``: the correct way to print it."""
    if not math.isfinite(value):
        return str(value)
    if printed.exact:
        return _as_fraction(printed, value)
    if printed.exponent is None:
        text = f"{value:.{printed.decimals}f}"
    elif effective_unit(printed, value) < printed.unit or re.match(r"^[+-]?[1-9](\.|[eE])", printed.text):
        digits = max(_significant_digits(printed), 1)
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        text = f"{mantissa}e{int(exponent)}"
    else:
        scaled = Decimal(value).scaleb(-printed.exponent)
        mantissa = f"{scaled:.{printed.decimals}f}"
        text = f"{mantissa}e{printed.exponent}"
    return "0" + text[2:] if text.startswith("-0") and not any(ch in "123456789" for ch in text) else text
