"""The line classifier: one pass over a reply's lines that marks quotes, quote headers
(also when wrapped over several lines), signature delimiters and fields of Outlook header blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from maild.pipeline.quotes.patterns import (
    _BANNER_RE,
    _DELIMITER_RE,
    _DISCLAIMER_START_RE,
    _EMAIL,
    _FROM_FIELD_RE,
    _I,
    _MARKDOWN_LINK_RE,
    _MAX_HEADER_LINE,
    _MAX_HEADER_LINES,
    _MOBILE_SIGNATURE_RES,
    _OPENERS,
    _OTHER_FIELD_RE,
    _QUOTE_PREFIX_RE,
    _QUOTE_RE,
    _SIG_DELIMITER_RE,
    _STRICT_QUOTE_RE,
    _UNDERSCORE_RULE_RE,
    REPLY_MARKER,
    _is_header,
)


@dataclass(frozen=True, slots=True)
class _Line:
    """One physical line and what it looks like."""

    text: str
    empty: bool
    quote: bool
    strict_quote: bool


def _normalize(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _unquote(line: str) -> str:
    return _QUOTE_PREFIX_RE.sub("", line).strip()


def _is_mobile_signature(line: str) -> bool:
    s = _MARKDOWN_LINK_RE.sub(r"\1", line).strip().strip("*_").strip()
    if not s or len(s) > 100:
        return False
    return any(r.match(s) for r in _MOBILE_SIGNATURE_RES)


def _is_lazy_continuation(prev: str, line: str) -> bool:
    """A quoted line re-wrapped by a mail client loses its ">": an unquoted line that goes on
    with a lower-case word right after a non-empty quoted line still belongs to the quote."""
    return bool(_unquote(prev)) and bool(re.match(r"\s*[a-zà-ÿ]", line))


def _is_field(line: str) -> bool:
    return bool(_FROM_FIELD_RE.match(line) or _OTHER_FIELD_RE.match(line))


def _looks_like_header_start(line: str) -> bool:
    """Whether a line may begin a quote header that is wrapped over several lines."""
    s = line.lstrip(" ->*")
    if _strong_header_start(s):
        return True
    return bool(re.search(_EMAIL, s)) or s.rstrip().endswith("<")


def _strong_header_start(line: str) -> bool:
    """An opener word ("On", "Le", "Am", ...) or a date at the very start of the line."""
    s = line.lstrip(" ->*")
    return bool(
        re.match(rf"{_OPENERS}\b", s, _I)
        or re.match(r"\W*\d", s)
        or re.match(r"\w{1,12}[.,]?\s+\d", s)
    )


class _Analysis:
    """Line classification of one plain-text body."""

    def __init__(self, lines: list[str]) -> None:
        self.raw = lines
        self.lines: list[_Line] = []
        for ln in lines:
            quote = bool(_QUOTE_RE.match(ln))
            strict = bool(_STRICT_QUOTE_RE.match(ln))
            prev = self.lines[-1] if self.lines else None
            if (
                not quote
                and prev is not None
                and prev.strict_quote
                and _is_lazy_continuation(prev.text, ln)
            ):
                quote = strict = True
            self.lines.append(_Line(ln, not ln.strip(), quote, strict))
        self._header_cache: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.lines)

    # -- quote headers ------------------------------------------------------------------------

    def header_end(self, i: int) -> int:
        """If a quote header starts on line ``i``, the index just past it; else 0."""
        cached = self._header_cache.get(i)
        if cached is not None:
            return cached
        result = self._header_end(i)
        self._header_cache[i] = result
        return result

    def _header_end(self, i: int) -> int:
        first = self.lines[i]
        if first.empty:
            return 0
        head = _unquote(first.text)
        if not head or len(head) > _MAX_HEADER_LINE:
            return 0
        if _BANNER_RE.match(first.text):
            return i + 1
        if _is_header(head):
            return i + 1
        if not _looks_like_header_start(head):
            return 0
        # A header wrapped over several lines: join them and test again.  Blank lines inside
        # are allowed only when the first line carries a date (Gmail's "<\nmailto:...\n> wrote:").
        allow_blank = bool(re.search(r"\d", head))
        parts = [head]
        j = i + 1
        while j < len(self.lines) and j < i + _MAX_HEADER_LINES:
            line = self.lines[j]
            if line.empty:
                if not allow_blank:
                    break
                j += 1
                continue
            raw = line.text.strip()
            if re.match(r">+\s*[:：]\s*$", raw):
                parts[-1] += raw  # "...<someone@example.com" + ">:"
            else:
                parts.append(_unquote(line.text))
            joined = " ".join(p for p in parts if p)
            if len(joined) > _MAX_HEADER_LINE * 2:
                break
            if _is_header(joined):
                # "Some text.\nOp 16 aug. 2014 schreef X het\nvolgende geschreven:" - the
                # header starts at the later line that opens one by itself.
                if self._later_start(i, j + 1):
                    return 0
                return j + 1
            j += 1
        return 0

    def _later_start(self, i: int, end: int) -> bool:
        """Whether the header ending at ``end`` really starts after line ``i``: at a later line
        that opens a header by itself, with no date on the lines before it ("On this day" /
        "Le problème persiste." above "Le 4 janv. 2016 ..., X a écrit :")."""
        for k in range(i + 1, end):
            if re.search(r"\d", self.lines[k - 1].text):
                return False
            if _strong_header_start(_unquote(self.lines[k].text)) and self.header_end(k) == end:
                return True
        return False

    # -- Outlook header blocks ----------------------------------------------------------------

    def field_block_start(self, i: int) -> int | None:
        """If an Outlook-style header block ("From:/Sent:/To:") covers line ``i``, where it
        starts; else None."""
        text = self.lines[i].text
        if _FROM_FIELD_RE.match(text):
            fields = 0
            j = i + 1
            misses = 0
            while j < len(self.lines) and j <= i + 5 and misses <= 2:
                nxt = self.lines[j]
                if nxt.empty:
                    break
                if _is_field(nxt.text):
                    fields += 1
                else:
                    misses += 1
                j += 1
            # "From: Berlin / To: Paris" in prose is not a header block: want an address or a
            # third field.
            has_address = any("@" in ln.text for ln in self.lines[i:j])
            if fields >= 2 or (fields == 1 and has_address):
                return self._extend_up(i)
            return None
        if _OTHER_FIELD_RE.match(text):
            run = 1
            j = i + 1
            while j < len(self.lines) and _is_field(self.lines[j].text):
                run += 1
                j += 1
            if run >= 3:
                return self._extend_up(i)
        return None

    def _extend_up(self, i: int) -> int:
        while i > 0 and not self.lines[i - 1].empty and _is_field(self.lines[i - 1].text):
            i -= 1
        return i

    def field_block_end(self, i: int) -> int:
        """Index just past the header block starting at ``i`` (fields plus wrapped lines)."""
        j = i
        while j < len(self.lines) and not self.lines[j].empty:
            j += 1
        return j

    # -- generic helpers ----------------------------------------------------------------------

    def skip_empty(self, i: int) -> int:
        while i < len(self.lines) and self.lines[i].empty:
            i += 1
        return i

    def skip_quote(self, i: int, *, strict: bool = False) -> int:
        """Skip a block of quoted (and blank) lines starting at ``i``."""
        j = i
        last = i
        while j < len(self.lines):
            line = self.lines[j]
            if line.empty:
                j += 1
                continue
            if line.strict_quote or (line.quote and not strict):
                j += 1
                last = j
                continue
            break
        return last

    def cut_kind(self, i: int) -> str | None:
        """What kind of cut point line ``i`` is, if any."""
        line = self.lines[i]
        if line.empty:
            return None
        if REPLY_MARKER in line.text:
            return "marker"
        if self.header_end(i):
            return "header"
        if self.field_block_start(i) is not None:
            return "fields"
        if _SIG_DELIMITER_RE.match(line.text) or _UNDERSCORE_RULE_RE.match(line.text):
            return "signature"
        if not line.quote and _is_mobile_signature(line.text):
            return "signature"
        return None

    def is_interleaved(self, i: int) -> bool:
        """A header whose ">"-quote is followed by more of the author's own text (an inline or
        bottom-posted answer): only the header line should go."""
        end = self.header_end(i)
        if not end:
            return False
        q_start = self.skip_empty(end)
        if q_start >= len(self.lines) or not self.lines[q_start].strict_quote:
            return False
        after = self.skip_empty(self.skip_quote(q_start, strict=True))
        if after >= len(self.lines):
            return False
        nxt = self.lines[after]
        if nxt.quote or self.cut_kind(after) is not None or _DELIMITER_RE.match(nxt.text):
            return False
        return not _DISCLAIMER_START_RE.match(nxt.text)
