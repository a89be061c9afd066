"""The printed-precision rule of worked.rounding, at its edges."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from worked.rounding import EXACT, HAND_ROUNDED, ROUNDED, distance_in_units, judge, parse_printed, round_like


@pytest.mark.parametrize(
    ("text", "value", "unit", "decimals", "exponent"),
    [
        ("0.0020", "0.0020", "0.0001", 4, None),
        ("-0.25", "-0.25", "0.01", 2, None),
        ("2", "2", "1", 0, None),
        ("1.2e-3", "0.0012", "0.0001", 1, -3),
        ("3E2", "300", "100", 0, 2),
        ("−0.5", "-0.5", "0.1", 1, None),  # a printed minus sign (U+2212)
        ("-0.0000", "0", "0.0001", 4, None),
    ],
)
def test_parse_keeps_the_printed_precision(text: str, value: str, unit: str, decimals: int, exponent) -> None:
    printed = parse_printed(text)
    assert printed.value == Decimal(value)
    assert printed.unit == Decimal(unit)
    assert printed.decimals == decimals
    assert printed.exponent == exponent


@pytest.mark.parametrize("text", ["", "abc", "0.1.2", "1,5", "e-3", "--1", "1/0"])
def test_parse_rejects_what_is_not_a_printed_number(text: str) -> None:
    with pytest.raises(ValueError, match="as printed"):
        parse_printed(text)


def test_parse_rejects_a_bare_number() -> None:
    with pytest.raises(ValueError, match="string"):
        parse_printed(0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("true", "text", "verdict"),
    [
        # 0.00235 lies half-way between 0.0023 and 0.0024: both round from it.
        (0.00235, "0.0023", ROUNDED),
        (0.00235, "0.0024", ROUNDED),
        (0.00235, "0.0025", None),  # 1.5 units away
        (0.00235, "0.0022", None),
        # 0.00236: 0.0024 rounds; 0.0023 is 0.6 units off, within one unit (hand rounding); 0.0025 is 1.4 off.
        (0.00236, "0.0024", ROUNDED),
        (0.00236, "0.0023", HAND_ROUNDED),
        (0.00236, "0.0025", None),
        # negative values mirror the positive ones
        (-0.00236, "-0.0024", ROUNDED),
        (-0.00236, "-0.0023", HAND_ROUNDED),
        (-0.00236, "0.0024", None),
        # "-0.0000" is zero: fine for tiny values of either sign, not for 1.2 units
        (-0.00003, "-0.0000", ROUNDED),
        (0.00003, "-0.0000", ROUNDED),
        (0.00012, "-0.0000", None),
        # integers must round: no hand-rounding unit for them
        (2.0, "2", ROUNDED),
        (2.4, "2", ROUNDED),
        (2.6, "2", None),
        (-2.0, "2", None),
        # e-notation: two significant digits, unit 1e-4
        (0.00124, "1.2e-3", ROUNDED),
        (0.00129, "1.2e-3", HAND_ROUNDED),
        (0.00131, "1.2e-3", None),
        # fractions are exact
        (0.5, "1/2", EXACT),
        (1 / 3, "1/3", EXACT),
        (0.3333, "1/3", None),
        (float("nan"), "0.5", None),
    ],
)
def test_judge(true: float, text: str, verdict: str | None) -> None:
    assert judge(parse_printed(text), true) == verdict


def test_stated_slack_widens_the_hand_rounding_allowance() -> None:
    printed = parse_printed("0.0020")
    assert judge(printed, 0.00222) is None  # 2.2 units off
    assert judge(printed, 0.00222, slack_units=1) is None  # allowance 2 units
    assert judge(printed, 0.00222, slack_units=1.5) == HAND_ROUNDED  # allowance 2.5 units
    assert judge(parse_printed("2"), 3.0, slack_units=5) is None  # integers get no allowance


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("0.0008", 0.0023882, "0.0024"),
        ("2", -2.0, "-2"),
        ("-0.0000", -0.00001, "0.0000"),
        ("1.2e-3", 0.0023882, "2.4e-3"),
        ("0.5", 0.25, "0.2"),  # round-half-even at the float's exact value 0.25
        ("1/2", 0.5, "1/2"),  # a fraction reads as a fraction over the printed denominator
        ("1/2", 1.5, "3/2"),
        ("1/4", 0.5, "1/2"),  # reduced
        ("1/2", -1.0, "-1"),
        ("1/3", 0.3333, "0.3333"),  # not a third: six significant digits
        ("1/2", 0.75, "0.75"),
    ],
)
def test_round_like_prints_with_the_claims_precision(text: str, value: float, expected: str) -> None:
    assert round_like(parse_printed(text), value) == expected


@pytest.mark.parametrize(
    ("true", "verdict", "units"),
    [
        (0.00200, ROUNDED, 0.0),
        (0.00204, ROUNDED, 0.4),
        (0.00195, ROUNDED, 0.5),  # a tie (the float 0.00195 is a hair below it): rounds either way
        (0.00205, ROUNDED, 0.5),
        (0.00194, HAND_ROUNDED, 0.6),
        (0.00206, HAND_ROUNDED, 0.6),
        (0.00190, HAND_ROUNDED, 1.0),  # exactly one unit: the last value the allowance takes
        (0.00210, HAND_ROUNDED, 1.0),
        (0.00189, None, 1.1),
        (0.00211, None, 1.1),
        (-0.00200, None, 40.0),
    ],
)
def test_the_rule_for_0_0020(true: float, verdict: str | None, units: float) -> None:
    """``"0.0020"`` (unit 1e-4): rounded within half a unit, hand-rounded within one, else wrong."""
    printed = parse_printed("0.0020")
    assert distance_in_units(printed, true) == pytest.approx(units, abs=1e-9)
    assert judge(printed, true) == verdict


def test_hand_rounded_intermediates_of_the_notes_are_accepted_and_nothing_further() -> None:
    """Case 1 with h rounded to the printed 4 decimals before it is used: the allowance at work.

    z_o1 = 0.7·h1 + 0.9·h2 + 0.5. With the exact h1 = 0.986613, h2 = 0.995033 it is
    2.086159 (prints 2.0862); with the printed h1 = 0.9866, h2 = 0.9950 an author gets
    2.08612 and prints 2.0861, 0.6 units from the true value: hand-rounded, not wrong.
    """
    h1, h2 = 1 / (1 + math.exp(-4.3)), 1 / (1 + math.exp(-5.3))
    true = 0.7 * h1 + 0.9 * h2 + 0.5
    by_hand = 0.7 * 0.9866 + 0.9 * 0.9950 + 0.5
    assert round_like(parse_printed("2.0861"), by_hand) == "2.0861"
    assert judge(parse_printed("2.0862"), true) == ROUNDED
    assert judge(parse_printed("2.0861"), true) == HAND_ROUNDED
    assert judge(parse_printed("2.0860"), true) is None  # 1.6 units: no chain of two roundings gets there
    # dE/dw1 = (0.1502)(0.0132)(1) = 0.00198264 as the notes multiply it; the true value 0.00198391.
    assert judge(parse_printed("0.0020"), 0.1502 * 0.0132) == ROUNDED
