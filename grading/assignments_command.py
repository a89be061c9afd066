"""``refbp assignments``: the built-in assignments, each with its style, functions and points."""

from __future__ import annotations

import argparse

from refbp.cli import EXIT_OK

HELP = "list the built-in assignments (for --assignment) with their graded functions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="show only this assignment (a built-in name or a .toml file)")


def describe(assignment) -> list[str]:
    """Lines describing one assignment: name, style, description, advisories, then one line per function."""
    from grading.assignment import ALIASES

    alias = [key for key, value in ALIASES.items() if value == assignment.name]
    title = f"{assignment.name} (style {assignment.style}" + (f", --interface {alias[0]}" if alias else "") + ")"
    advisory = ", ".join(f"{key} = {value}" for key, value in assignment.advisory.items())
    lines = [title, f"  {assignment.description}" if assignment.description else "", f"  advisory: {advisory}"]
    if assignment.style == "deep":
        lines.append(f"  grads keys: {assignment.grads_keys}")
    if assignment.style == "cnn":
        meaning = "keeping" if assignment.dropout_p == "keep" else "dropping"
        lines.append(f"  dropout p: {assignment.dropout_p} (dropout_param['p'] is the probability of {meaning} a unit)")
    if assignment.size1_scalars == "legacy":
        lines.append("  size-1 scalars: legacy (float(b) takes an array of one entry of any shape, as NumPy < 1.25)")
    if assignment.load:
        lines.append(f"  load: {assignment.load}")
    if assignment.support:
        lines.append("  support: " + ", ".join(p.name for p in assignment.support))
    for graded in assignment.functions:
        role = f" (plays {graded.role})" if graded.role != graded.name else ""
        points = "1 per check row"
        if graded.points is not None:
            points = f"{graded.points:g} point" + ("" if graded.points == 1 else "s")
        scenarios = f", {graded.scenarios} scenarios" if graded.scenarios > 1 else ""
        optional = ", optional" if graded.optional else ""
        lines.append(f"  - {graded.name}{role}: {points}{scenarios}{optional}")
    return [line for line in lines if line]


def run(args: argparse.Namespace) -> int:
    from grading.assignment import builtin_names, resolve

    names = [args.name] if args.name else builtin_names()
    blocks = ["\n".join(describe(resolve(name))) for name in names]
    print("\n\n".join(blocks))
    return EXIT_OK
