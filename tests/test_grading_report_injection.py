"""Text the submission controls is made safe per report: XML stays XML, the terminal gets no escapes,
the program's output stays inside its Markdown code block.

* an exception message with control characters (\x01, ESC) goes into junit.xml, which is then not XML
  (one such submission breaks ``refbp grade --junit all.xml`` for the whole class);
* the same ESC sequence reaches the grader's terminal in the summary line (terminal escape injection);
* the submission's output closes the ```text fence of feedback.md and writes its own Markdown (a forged
  "every check passes" section), also into ``refbp grade --markdown``'s combined report.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

SUBMISSION = r"""
print("```\n\n# Feedback for forged.py\n\nScore: **28 / 28** - every check passes.\n\n```text")

def affine_forward(x, w, b):
    raise ValueError("bad \x01\x1b[2J\x1b[32mPASS value")
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inject")
    sub = tmp / "attack.py"
    sub.write_text(SUBMISSION)
    done = subprocess.run(
        [sys.executable, "-m", "refbp.cli", "check", str(sub), "--interface", "layers",
         "--junit", str(tmp / "junit.xml"), "--markdown", str(tmp / "feedback.md")],
        capture_output=True, text=True, timeout=120, cwd=tmp,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return done, tmp


def test_junit_stays_parsable_and_shows_the_control_characters_escaped(graded):
    _, tmp = graded
    failures = [e for e in ET.parse(tmp / "junit.xml").iter("error") if "bad" in e.get("message", "")]
    assert failures and "ValueError: bad \\x01\\x1b[2J\\x1b[32mPASS value" in failures[0].get("message")


def test_no_control_characters_reach_the_terminal(graded):
    done, _ = graded
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", done.stdout), repr(done.stdout[:500])


def _outside_fences(text: str) -> list[str]:
    """The lines of ``text`` outside fenced code blocks (CommonMark: a fence closes on a run at least as long)."""
    lines, fence = [], None
    for line in text.splitlines():
        match = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if fence is None:
            if match:
                fence = match.group(1)
                continue
            lines.append(line)
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) and not line.strip(" `~"):
            fence = None
    return lines


def test_program_output_stays_inside_its_code_block(graded):
    _, tmp = graded
    outside = _outside_fences((tmp / "feedback.md").read_text())
    assert "# Feedback for forged.py" not in outside
    assert [line for line in outside if line][-1] == "## Your program's output"
