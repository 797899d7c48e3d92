"""The maintained ``mail-parser-reply`` library as one more opinion on where a reply's own
text ends; bounded in input size because its regexes are not linear-time.
"""

from __future__ import annotations

import logging
from typing import Final

from mailparser_reply import EmailReplyParser

from maild.pipeline.quotes.patterns import _LIBRARY_MAX_CHARS, LIBRARY_LANGUAGES

log = logging.getLogger("maild.pipeline.quotes")  # the name the package always logged under


# --------------------------------------------------------------------------------------------
# mail-parser-reply
# --------------------------------------------------------------------------------------------

_PARSER: Final = EmailReplyParser(languages=list(LIBRARY_LANGUAGES))


def _library_cut(lines: list[str]) -> int:
    """Number of leading lines mail-parser-reply considers the latest reply.

    The library returns its own normalised copy of the reply (each line stripped, some
    separator lines dropped), so its answer is mapped back onto our lines by walking both.
    When the mapping fails the library's opinion is ignored.
    """
    text = "\n".join(lines)
    if len(text) > _LIBRARY_MAX_CHARS:
        return len(lines)
    try:
        reply = _PARSER.parse_reply(text)
    except Exception:  # the library is a heuristic; never let it break intake
        log.debug("mail-parser-reply failed", exc_info=True)
        return len(lines)
    if not reply:
        return len(lines)
    j = 0
    for out in reply.split("\n"):
        want = out.strip()
        while j < len(lines) and lines[j].strip() != want:
            j += 1
        if j >= len(lines):
            return len(lines)
        j += 1
    return j
