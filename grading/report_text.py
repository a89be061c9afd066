"""Text a submission controls (exception messages, printed output, file names), made safe for each report.

:func:`printable` shows every control character as a visible escape (``\\x1b``), so no
terminal sequence reaches the grader's screen and the text is valid XML 1.0; newlines and
tabs stay where ``keep_lines`` asks. :func:`markdown_block` fences text with a run of
backticks longer than any run inside it, so the text cannot close its code block.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, lone surrogates and the two non-characters XML 1.0 forbids.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_lines: bool = True) -> str:
    """``text`` with each control character written as ``\\xNN`` (tab and newline kept if ``keep_lines``)."""
    return (_UNSAFE if keep_lines else _UNSAFE_LINE).sub(_escape, text)


def markdown_block(text: str, info: str = "text") -> list[str]:
    """The lines of a fenced Markdown code block holding ``text`` verbatim (its control characters escaped)."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, printable(text), fence]
