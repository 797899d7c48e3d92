"""``cut_html_quote``: an HTML reply without its quoted history (Gmail, Outlook, Apple Mail,
Yahoo, Thunderbird and Lotus Notes markup), before the worker converts it to text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Final

from maild.pipeline.quotes.analysis import _Analysis
from maild.pipeline.quotes.patterns import _BANNER_RE, _I, REPLY_MARKER

log = logging.getLogger("maild.pipeline.quotes")  # the name the package always logged under


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

#: Elements removed with their content wherever they are.
_REMOVE_CLASSES: Final = frozenset(
    {
        "gmail_quote",
        "gmail_extra",
        "gmail_attr",
        "gmail_quote_container",
        "yahoo_quoted",
        "moz-cite-prefix",
    }
)
#: Classes of elements from which everything to the end is quoted history (Lotus Notes).
_CUT_CLASSES: Final = frozenset({"domino-section"})
#: Elements from which everything to the end of the document is quoted history.
_CUT_IDS: Final = frozenset(
    {
        "divrplyfwdmsg",
        "stopspelling",
        "olk_src_body_section",
        "appendonsend",
        "mail-editor-reference-message-container",
        "x_divrplyfwdmsg",
    }
)
_OUTLOOK_BORDER_RE: Final = re.compile(r"border-top:\s*solid\s+#(?:b5c4df|e1e1e1)", _I)
_VOID_TAGS: Final = frozenset(
    {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr", "source", "embed"}
)
_BREAK_TAGS: Final = frozenset(
    {
        "br",
        "p",
        "div",
        "blockquote",
        "hr",
        "li",
        "ul",
        "ol",
        "tr",
        "td",
        "table",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "body",
        "html",
        "section",
        "article",
        "header",
        "footer",
    }
)
_SKIP_TEXT_TAGS: Final = frozenset({"style", "script", "head", "title"})


@dataclass(slots=True)
class _TextLine:
    start: int  # offset of the markup that opened the line
    text: str
    hr_before: int | None  # offset of an <hr> directly before the line, if any


class _QuoteFinder(HTMLParser):
    """Collects the ranges of quoted history in an HTML body, plus its text lines."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html = html
        self._line_offsets = [0]
        for m in re.finditer("\n", html):
            self._line_offsets.append(m.end())
        self.remove: list[tuple[int, int]] = []
        self.cut_at: int | None = None
        self.blockquotes: list[tuple[int, int, bool]] = []  # (start, end, explicit cite)
        self.lines: list[_TextLine] = []
        self._stack: list[tuple[str, int, str | None]] = []  # (tag, start, role)
        self._skip_depth = 0
        self._cur_start: int | None = None
        self._cur_text: list[str] = []
        self._line_hr: int | None = None

    # offsets ---------------------------------------------------------------------------------

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._line_offsets[line - 1] + col

    def _tag_end(self, start: int) -> int:
        end = self.html.find(">", start)
        return len(self.html) if end < 0 else end + 1

    # text lines -------------------------------------------------------------------------------

    def _break(self, offset: int) -> None:
        text = " ".join("".join(self._cur_text).split())
        if text and self._cur_start is not None:
            self.lines.append(_TextLine(self._cur_start, text, self._line_hr))
            self._line_hr = None
        self._cur_text = []
        self._cur_start = offset

    # parser callbacks ---------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start = self._offset()
        if tag in _SKIP_TEXT_TAGS:
            self._skip_depth += 1
        if tag in _BREAK_TAGS:
            self._break(start)
        if tag == "hr":
            self._line_hr = start
        amap = {k.lower(): (v or "") for k, v in attrs}
        classes = set(amap.get("class", "").lower().split())
        ident = amap.get("id", "").lower()
        role: str | None = None
        if ident in _CUT_IDS or ident.startswith("divrplyfwdmsg") or classes & _CUT_CLASSES:
            self._cut(start)
        elif tag == "div" and _OUTLOOK_BORDER_RE.search(amap.get("style", "")):
            role = "outlook-border"
        if classes & _REMOVE_CLASSES or ident.startswith("yahoo_quoted"):
            role = "remove"
        elif tag == "blockquote":
            role = "cite" if amap.get("type", "").lower() == "cite" else "blockquote"
        if tag not in _VOID_TAGS:
            self._stack.append((tag, start, role))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS and self._stack and self._stack[-1][0] == tag:
            self._stack.pop()

    def handle_endtag(self, tag: str) -> None:
        start = self._offset()
        end = self._tag_end(start)
        if tag in _SKIP_TEXT_TAGS and self._skip_depth:
            self._skip_depth -= 1
        if tag in _BREAK_TAGS:
            self._break(end)
        for k in range(len(self._stack) - 1, -1, -1):
            if self._stack[k][0] == tag:
                for open_tag, open_start, role in reversed(self._stack[k:]):
                    self._close(open_tag, open_start, role, end if open_tag == tag else start)
                del self._stack[k:]
                break

    def _close(self, tag: str, start: int, role: str | None, end: int) -> None:
        if role == "remove":
            self.remove.append((start, end))
        elif role in ("cite", "blockquote"):
            self.blockquotes.append((start, end, role == "cite"))
        elif role == "outlook-border":
            self._outlook_border(start)

    def _outlook_border(self, start: int) -> None:
        # Outlook puts the "From:/Sent:" block of the quoted message in a div with a top
        # border; only treat it as the quote when it really holds such a block.
        texts = [ln.text for ln in self.lines if ln.start >= start][:6]
        a = _Analysis(texts)
        if any(a.field_block_start(k) is not None for k in range(len(a))):
            self._cut(start)

    def _cut(self, offset: int) -> None:
        if self.cut_at is None or offset < self.cut_at:
            self.cut_at = offset

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if data.strip() and self._cur_start is None:
            self._cur_start = self._offset()
        self._cur_text.append(data)

    def finish(self) -> None:
        self.close()
        self._break(len(self.html))
        for tag, start, role in reversed(self._stack):
            self._close(tag, start, role, len(self.html))
        self._stack.clear()


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _inside(offset: int, ranges: list[tuple[int, int]]) -> bool:
    return any(s <= offset < e for s, e in ranges)


def _is_attribution(text: str) -> bool:
    return bool(_Analysis([text]).header_end(0)) or bool(_BANNER_RE.match(text))


def _cut_html(html: str) -> str:
    finder = _QuoteFinder(html)
    finder.feed(html)
    finder.finish()
    cut = finder.cut_at if finder.cut_at is not None else len(html)

    # Quoted blocks: marked ones (Gmail, Yahoo, cite) always go, a plain <blockquote> only
    # when nothing of the author's follows it.
    quotes = list(finder.remove) + [(s, e) for s, e, cite in finder.blockquotes if cite]
    lines = [ln for ln in finder.lines if ln.start < cut]
    for start, end, cite in sorted(finder.blockquotes):
        if cite or start >= cut or _inside(start, quotes):
            continue
        if not any(ln.start >= end and not _inside(ln.start, quotes) for ln in lines):
            quotes.append((start, end))
    visible = [ln for ln in lines if not _inside(ln.start, quotes)]

    # Our own marker: everything from it on is our notification (unless nothing is above it).
    for k, ln in enumerate(visible):
        if REPLY_MARKER in ln.text:
            if k > 0:
                first = k - 1 if _is_attribution(visible[k - 1].text) else k
                cut = min(cut, visible[first].start) if first > 0 else cut
            break

    # Text-level detection on what is still visible: an Outlook header block ("From: ...
    # Sent: ...", in any of the supported languages) or a forward banner starts the quote.
    a = _Analysis([ln.text for ln in visible])
    for k in range(len(a)):
        block = a.field_block_start(k)
        if block is not None or _BANNER_RE.match(a.raw[k]):
            head = visible[k if block is None else block]
            cut = min(cut, head.hr_before if head.hr_before is not None else head.start)
            break

    # The attribution line ("On ..., X wrote:") just above a quote goes with it.
    remove: list[tuple[int, int]] = []
    for start, end in quotes:
        before = [ln for ln in visible if ln.start < start]
        if before and _is_attribution(before[-1].text):
            start = before[-1].start
        remove.append((start, end))

    out: list[str] = []
    pos = 0
    for start, end in _merge([r for r in remove if r[0] < cut]):
        out.append(html[pos:start])
        pos = min(end, cut)
    out.append(html[pos:cut])
    return "".join(out)


def cut_html_quote(html: str) -> str:
    """Return ``html`` with the quoted history removed, ready for conversion to text.

    Removes Gmail ``gmail_quote``/``gmail_extra`` blocks, Outlook's ``divRplyFwdMsg`` (and the
    older bordered ``From:/Sent:`` block, Hotmail's ``stopSpelling`` rule, Outlook for Mac's
    ``OLK_SRC_BODY_SECTION``) and everything after them, ``<blockquote type="cite">`` (Apple
    Mail, Thunderbird) with Thunderbird's ``moz-cite-prefix`` attribution, Yahoo's
    ``yahoo_quoted`` block, and a trailing plain ``<blockquote>`` with the "On ... wrote:" line
    above it.  Never raises: on error the input is returned unchanged.
    """
    try:
        if not isinstance(html, str):
            html = "" if html is None else str(html)
        return _cut_html(html)
    except Exception:  # defensive: malformed markup must not lose a message
        log.exception("cut_html_quote failed; keeping the full body")
        return html if isinstance(html, str) else ""
