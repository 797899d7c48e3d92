"""Slack's text escaping: ``&``, ``<`` and ``>`` in whatever a customer wrote, so that their text
can't ping a channel (``<!channel>``), mention people or show a link under a false name
(``<https://evil|Reset your password>``). Mattermost and Rocket.Chat read the same escapes."""

from __future__ import annotations

from typing import Any

_TABLE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def escape(text: str) -> str:
    return text.translate(_TABLE)


def escape_values(value: Any) -> Any:
    """``value`` with every string inside it (dicts, lists and tuples followed) escaped."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {k: escape_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(escape_values(v) for v in value)
    return value
