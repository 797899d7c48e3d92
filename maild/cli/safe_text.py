"""Text from mail made harmless for a terminal: control characters shown, never obeyed.

A subject, name or body can carry ANSI/OSC escape sequences (``ESC[2J`` clears the screen, ``ESC]0;``
retitles the window, BEL rings) or bidi overrides (U+202E turns ``exe.txt`` around). Every CLI text
view passes the data it got from mail through :func:`terminal_safe`: C0 controls (except the
newline and tab that ``multiline`` text keeps), DEL, C1 controls and the bidi embedding, override
and isolate characters come out as visible Python-style escapes (``\\x1b``, ``\\u202e``). ``--json``
output is JSON and stays as it is (its encoder escapes C0 controls itself).
"""

from __future__ import annotations

import re

# C0 (without TAB and LF, handled by the caller's choice), DEL, C1, and the bidi formatting
# characters: LRM, RLM, ALM, LRE..RLO, LRI..PDI.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile("[\t\n\u2028\u2029\x85]")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: object, *, multiline: bool = False) -> str:
    """``text`` as a string with every control and bidi character escaped. Single-line (the
    default) escapes newlines and tabs too, so one row stays one row."""
    value = "" if text is None else str(text)
    value = _UNSAFE.sub(lambda m: _escape(m.group(0)), value)
    if not multiline:
        value = _LINE_BREAKS.sub(lambda m: _escape(m.group(0)), value)
    else:
        value = value.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return value
