"""Worked examples: check, claim by claim, the numbers printed in lecture notes and textbooks."""
