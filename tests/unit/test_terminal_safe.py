"""Text from mail on the operator's terminal: escape sequences shown, never obeyed."""

from __future__ import annotations

import pytest

from maild.cli.safe_text import terminal_safe


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2Jcleared", "\\x1b[2Jcleared"),  # ESC + CSI "erase display"
        ("\x9b2J", "\\x9b2J"),  # the 8-bit CSI (C1)
        ("\x1b]0;owned\x07title", "\\x1b]0;owned\\x07title"),  # OSC window title, BEL
        ("\x1b]8;;http://evil.test\x1b\\link", "\\x1b]8;;http://evil.test\\x1b\\link"),
        ("bell\x07", "bell\\x07"),
        ("invoice\u202efdp.exe", "invoice\\u202efdp.exe"),  # RIGHT-TO-LEFT OVERRIDE
        ("\u2066isolate\u2069 \u200f", "\\u2066isolate\\u2069 \\u200f"),
        ("nul\x00 del\x7f", "nul\\x00 del\\x7f"),
        ("Grüße, 日本語 ✓", "Grüße, 日本語 ✓"),  # ordinary text untouched
    ],
)
def test_controls_and_bidi_overrides_are_escaped(text: str, shown: str) -> None:
    assert terminal_safe(text) == shown


def test_single_line_views_keep_one_row_per_item() -> None:
    assert terminal_safe("two\nlines\r\tand tab") == "two\\x0alines\\x0d\\x09and tab"
    assert terminal_safe(None) == ""


def test_multiline_bodies_keep_newlines_and_tabs_only() -> None:
    body = "line 1\n\tline 2\r\n\x1b[31mred\u2028"
    assert terminal_safe(body, multiline=True) == "line 1\n\tline 2\\x0d\n\\x1b[31mred\\u2028"
