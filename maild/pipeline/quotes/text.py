"""``visible_text``: the text a person typed in a plain-text reply, the layers of the package
docstring applied cheapest and most certain first.
"""

from __future__ import annotations

import logging
import re

from maild.pipeline.quotes.analysis import (
    _Analysis,
    _is_field,
    _looks_like_header_start,
    _normalize,
    _unquote,
)
from maild.pipeline.quotes.library import _library_cut
from maild.pipeline.quotes.patterns import (
    _BANNER_RE,
    _DELIMITER_RE,
    _I,
    _MAX_HEADER_LINES,
    _MAX_SCAN_LINES,
    _OPENERS,
    REPLY_MARKER,
)

log = logging.getLogger("maild.pipeline.quotes")  # the name the package always logged under


# --------------------------------------------------------------------------------------------
# visible_text
# --------------------------------------------------------------------------------------------


def _trim_tail(a: _Analysis, end: int) -> int:
    """Drop trailing blank, quoted, delimiter and header-fragment lines before ``end``."""
    while end > 0:
        line = a.lines[end - 1]
        if line.empty or line.quote or _DELIMITER_RE.match(line.text):
            end -= 1
            continue
        # A header the library cut in the middle of, or a header split over lines whose start
        # we still hold ("On Mon, Feb 1, 2016 at 6:32 PM, Jeff <info@example.org>").
        start = _header_start_before(a, end)
        if start is not None:
            end = start
            continue
        break
    return end


def _header_start_before(a: _Analysis, end: int) -> int | None:
    for k in range(max(0, end - _MAX_HEADER_LINES), end):
        if a.lines[k].empty:
            continue
        stop = a.header_end(k)
        if stop and stop >= end:
            return k
        block = a.field_block_start(k)
        if block is not None and a.field_block_end(block) >= end:
            return block
        if _BANNER_RE.match(a.lines[k].text) and k == end - 1:
            return k
    # A wrapped header whose closing part was removed with the quote (cut by the library).
    last = _unquote(a.lines[end - 1].text)
    if _looks_like_header_start(last) and re.match(rf"[-\s]*{_OPENERS}\s.*\d", last, _I):
        tail_ok = last.endswith(("<", ",", "(")) or re.search(r"\d{1,2}:\d{2}", last)
        if tail_ok and end < len(a.lines):
            nxt = a.skip_empty(end)
            joined_end = a.header_end(end - 1)
            if joined_end or (nxt < len(a.lines) and a.lines[nxt].quote):
                return end - 1
    return None


def _skip_leading_quote(a: _Analysis) -> int | None:
    """For a body that starts with a quote header: the index where the author's own text
    starts after the header and its quote, len(a) if there is none, None if the body does not
    start with a header."""
    i = a.skip_empty(0)
    if i >= len(a):
        return None
    kind = a.cut_kind(i)
    if kind == "header":
        j = a.header_end(i)
        j = a.skip_empty(j)
        block = a.field_block_start(j) if j < len(a) else None
        if block is not None:
            j = a.field_block_end(j)
    elif kind == "fields":
        j = a.field_block_end(i)
    else:
        return None
    j = a.skip_empty(j)
    return a.skip_empty(a.skip_quote(j))


def _first_cut(a: _Analysis, start: int, limit: int, dropped: set[int]) -> int:
    """Index of the first line from ``start`` at which the author's text ends."""
    i = start
    while i < limit:
        kind = a.cut_kind(i)
        if kind is None:
            i += 1
            continue
        if kind == "header" and a.is_interleaved(i):
            end = a.header_end(i)
            dropped.update(range(i, end))
            i = end
            continue
        return i
    return limit


def _vet_library_cut(a: _Analysis, cut: int) -> int:
    """Overrule the library where our classifier knows better: it cuts at the header of an
    inline reply, and takes prose such as "From: Berlin / To: Paris" (or a lone Polish "Do:"
    line) for an Outlook header block."""
    at = a.skip_empty(cut)
    if at >= len(a):
        return cut
    kind = a.cut_kind(at)
    if kind == "header" and a.is_interleaved(at):
        return len(a)
    if kind is None and _is_field(a.lines[at].text) and a.field_block_start(at) is None:
        return len(a)
    return cut


def _visible(text: str) -> str:
    lines = _normalize(text).split("\n")
    marker = next((k for k, line in enumerate(lines) if REPLY_MARKER in line), None)
    if marker is not None:
        above = _visible_lines(lines[:marker])
        if above:
            return above
        # Nothing above our marker: the reply may sit below the quoted notification
        # ("On ..., Support wrote:\n> ##- Please type ... -##\n> ...\n\nAnswer").
    return _visible_lines(lines)


def _visible_lines(lines: list[str], depth: int = 0) -> str:
    a = _Analysis(lines)

    own_start = _skip_leading_quote(a)
    if own_start is not None:
        if own_start >= len(a) or depth > 3:
            return ""
        return _visible_lines(lines[own_start:], depth + 1)

    dropped: set[int] = set()
    lib_cut = _vet_library_cut(a, _library_cut(lines))
    cut = _first_cut(a, 0, min(len(a), _MAX_SCAN_LINES), dropped)
    if cut >= _MAX_SCAN_LINES:
        cut = len(a)
    end = _trim_tail(a, min(cut, lib_cut))
    kept = [ln.rstrip() for k, ln in enumerate(lines[:end]) if k not in dropped]
    return "\n".join(kept).strip()


def visible_text(text: str) -> str:
    """Return the new text the author of a plain-text reply wrote.

    Quoted history (headers in many languages, ``>`` quotes, Outlook header blocks, forwarded
    banners), our own :data:`REPLY_MARKER` and everything after it, signature delimiters and
    "Sent from my ..." lines are removed; lines keep their indentation but lose trailing
    blanks.  If nothing is left the full text is returned, stripped.  Never raises.
    """
    try:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        result = _visible(text)
        if result:
            return result
        return _normalize(text).strip()
    except Exception:  # defensive: a bad heuristic must never lose a message
        log.exception("visible_text failed; keeping the full body")
        try:
            return str(text).strip()
        except Exception:
            return ""
