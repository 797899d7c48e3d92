"""The visible text of a reply: what its author wrote, quoted history and signature removed."""

from __future__ import annotations

from maild.pipeline.message import InboundMessage
from maild.pipeline.parse import html_to_text
from maild.pipeline.quotes import cut_html_quote, visible_text


def reply_text(msg: InboundMessage) -> str:
    """The visible text of a reply: quoted history and signature removed."""
    if not msg.has_plain and msg.html:
        return visible_text(html_to_text(cut_html_quote(msg.html)))
    return visible_text(msg.text)
