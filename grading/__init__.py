"""Grading homework backprop code: course-style adapters, a sandbox, diagnosis and grader outputs."""
