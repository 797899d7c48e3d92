"""Quote and signature stripping for inbound replies.

A customer's reply usually carries the whole conversation below (or, for bottom-posters, above)
the few lines they actually typed, plus a signature.  Before a reply is appended to a ticket we
keep only that new text:

* :func:`visible_text` takes the plain-text body of a reply and returns what the person wrote;
* :func:`cut_html_quote` takes an HTML body and removes the quoted history, so that the worker
  can convert what is left to text (with ``inscriptis``).

Plain text is handled in layers, cheapest and most certain first:

1. everything from our own :data:`REPLY_MARKER` line on is dropped (unless nothing is written
   above it: then the reply is looked for below the quoted notification);
2. a reply that *starts* with a quote header ("On ... wrote:", a forwarded-message banner, an
   Outlook ``From:``/``Sent:`` block) followed by the quote is a bottom-post or a bare forward:
   the header and the quote under it are skipped and the text after them is used;
3. the maintained ``mail-parser-reply`` library finds the first reply header it knows (it covers
   many languages); our own line classifier finds what the library misses (Dutch/French/Nordic/
   Russian/Gmail-localised headers split over several lines, Outlook header blocks in more
   languages, ``-----Original Message-----`` variants, ``-- `` signature delimiters, "Sent from
   my iPhone" lines) and overrules the library where it is known to be wrong (the header of an
   inline reply, prose such as "From: Berlin / To: Paris"); the text is cut at the earliest
   remaining point;
4. trailing ``>``-quoted lines, delimiter lines and left-over header fragments are trimmed.

If nothing is left (a reply that is only a quote), the whole text is returned, stripped.  Sign-off
lines such as "Thanks," or "Best regards," and whatever follows them are kept on purpose: they
are often followed by real content, and losing a customer's words is worse than keeping a name.

Both public functions never raise: on any internal error they fall back to returning their input
(stripped for :func:`visible_text`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Final

from mailparser_reply import EmailReplyParser

__all__ = ["REPLY_MARKER", "cut_html_quote", "visible_text"]

log = logging.getLogger(__name__)

REPLY_MARKER: str = "##- Please type your reply above this line -##"

#: Languages handed to mail-parser-reply (it silently ignores codes it does not know).
LIBRARY_LANGUAGES: Final[tuple[str, ...]] = (
    "en",
    "de",
    "fr",
    "nl",
    "es",
    "it",
    "pl",
    "sv",
    "da",
    "cs",
    "ja",
    "ko",
    "zh",
)

#: Bodies longer than this are not given to the library (its regexes are not linear-time);
#: our own line classifier still runs on them.
_LIBRARY_MAX_CHARS: Final = 100_000
#: Only this many lines are searched for the end of the author's text; a reply whose own part
#: is longer is kept whole (it is a pasted log or a digest, not a reply with a quote).
_MAX_SCAN_LINES: Final = 5_000
#: Lines longer than this are never taken for a quote header.
_MAX_HEADER_LINE: Final = 400
#: How many physical lines a wrapped quote header may span.
_MAX_HEADER_LINES: Final = 5

# --------------------------------------------------------------------------------------------
# Line patterns
# --------------------------------------------------------------------------------------------

_I = re.IGNORECASE

#: A quoted line: "> text", ">> text", and the supercite form "Name> text".
_QUOTE_RE: Final = re.compile(r"^\s*(?:>|[A-Za-z]{1,12}>(?:\s|$))")
#: Strict quote marker (only ">"), used where a quote must be unambiguous.
_STRICT_QUOTE_RE: Final = re.compile(r"^\s*>")
_QUOTE_PREFIX_RE: Final = re.compile(r"^[\s>]*")

#: The RFC 3676 signature delimiter ("-- ") and its common mangled forms ("--", "__").
_SIG_DELIMITER_RE: Final = re.compile(r"^\s*(?:--|__)\s*$")
#: A long rule of underscores: Outlook's separator above the quoted header, mailing-list footers.
_UNDERSCORE_RULE_RE: Final = re.compile(r"^\s*_{10,}\s*$")
#: Zero-width/tracking characters some webmails add to the end of a message (Gmail add-ons
#: append U+1427 "ᐧ" as the alt text of a tracking pixel).
_TRACKER_CHARS: Final = "\u1427\u200b\u200c\u200d\u2060\ufeff"
#: A line made only of punctuation used as a visual delimiter ("***", "====", "-----", "ᐧ").
_DELIMITER_RE: Final = re.compile(rf"^[\s\-_=+~#*.,:|/\\{_TRACKER_CHARS}]+$")

_MARKDOWN_LINK_RE: Final = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_WORD: Final = r"[\w'’.&+-]+"

#: "Sent from my iPhone" and friends; matched against a whole (stripped) line.
_MOBILE_SIGNATURE_RES: Final[tuple[re.Pattern[str], ...]] = tuple(
    re.compile(p, _I)
    for p in (
        # English: "Sent from my <1-5 words>", optionally ", please excuse ..." or a link.
        rf"^[(<]*sent (?:from|with|via|by|using) my(?: {_WORD}){{1,5}}[.!]?"
        r"(?:[,.;]? +(?:please )?(?:excuse|pardon|sorry)\b.*)?[)>]*$",
        # English: "Sent from <app>" / "Sent with <app>" (no "my"), optional link.
        rf"^[(<]*sent (?:from|with|via|by|using)(?: {_WORD}){{1,6}}\s*(?:<[^>]*>|\([^)]*\))?[)>]*$",
        r"^get outlook for \S+.*$",
        rf"^from my(?: {_WORD}){{1,3}}$",
        # French
        r"^envoy[ée] (?:depuis|de|à partir de|avec) .{1,60}$",
        r"^t[ée]l[ée]charger outlook pour .*$",
        # German
        r"^von meine[mr]? .{1,40} gesendet\.?$",
        r"^gesendet (?:von|mit) .{1,60}$",
        r"^diese nachricht wurde von .{1,80} gesendet\.?$",
        # Spanish / Portuguese
        r"^enviado (?:desde|do|de|con|com) .{1,60}$",
        # Italian
        r"^inviato (?:da|dal|con) .{1,60}$",
        # Dutch
        r"^(?:verzonden|verstuurd) (?:met|vanaf|van|via) .{1,60}$",
        # Danish / Norwegian / Swedish
        r"^(?:sendt|skickat|sänt) (?:fra|från|med|via) .{1,60}$",
        r"^hent outlook til .*$",
        # Polish
        r"^wys[łl]an[eo] (?:z|ze|przy użyciu) .{1,60}$",
        # Russian / Ukrainian
        r"^отправлено (?:с|из|через) .{1,60}$",
        r"^надіслано (?:з|із) .{1,60}$",
        # Chinese / Japanese
        r"^(?:從我的|从我的|发自我的|發自我的) ?.{1,30}$",
        r"^.{1,30}から送信$",
    )
)

# Quote headers ("On <date>, <name> wrote:") ---------------------------------------------------

#: "wrote" and friends: in English the verb ends the header ("On <date>, <name> wrote:").
_EN_VERBS: Final = r"(?:wrote|writes|said|says)"
#: Other languages; there the name may follow the verb ("Am <date> schrieb <name>:").
_XX_VERBS: Final = (
    r"(?:schrieb(?:en)?|geschrieben|schreef|geschreven|"
    r"a\s+écrit|écrit|nous\s+a\s+dit|escribió|escreveu|ha\s+scritto|scritto|"
    r"napisa[łl](?:\(a\)|a)?|pisze|написал(?:\(а\)|а)?|пише|написав|skrev|kirjoitti|"
    r"napsal(?:\(a\)|a)?|írta|写道|寫道|작성|のメッセージ)"
)
_VERBS: Final = rf"(?:{_EN_VERBS}|{_XX_VERBS})"
#: Words a quote header starts with ("On", "Le", "Am", "Op", ...).
_OPENERS: Final = r"(?:on|at|le|am|op|el|il|em|den|dnia|w dniu|dňa|dne|in data|in message|在)"
_EMAIL: Final = r"[^\s<>@()\[\]\"']+@[^\s<>@()\[\]\"']+\.[^\s<>@()\[\]\"']+"

#: Patterns a (possibly wrapped and re-joined) quote header matches as a whole.
_HEADER_RES: Final[tuple[re.Pattern[str], ...]] = tuple(
    re.compile(p, _I)
    for p in (
        # "On <...> wrote:" in many languages; colon required here.
        rf"^[-\s]*{_OPENERS}\b.{{2,{_MAX_HEADER_LINE}}}?(?:\b{_EN_VERBS}|{_XX_VERBS}"
        r"(?:\s+am\b.{0,60}?)?(?:\s+\S+){0,3}?)\s*[:：]\s*-*$",
        # "On <date> <name> wrote" without colon (Zoho "---- On ... wrote ----") needs a digit.
        rf"^[-\s]*(?:on|at)\s(?=.*\d).{{2,{_MAX_HEADER_LINE}}}?\b(?:wrote|writes)\b\s*-*$",
        # "Am <date>, schrieb <any name>:" (Thunderbird puts the verb before the name).
        rf"^[-\s]*{_OPENERS}\s(?=[^:]*\d).{{2,{_MAX_HEADER_LINE}}}?\s{_XX_VERBS}\s[^:]{{1,120}}"
        r"[:：]$",
        # "<date> ... <name> <verb>:" (Gmail localised: Russian, Polish, Norwegian, ...).
        rf"^(?=.*\d).{{2,{_MAX_HEADER_LINE}}}?\s{_XX_VERBS}(?:\s+am\b.{{0,60}}?|"
        rf"\s[^:]{{0,120}}?(?:<\s*{_EMAIL}\s*>|\({_EMAIL}\))|(?:\s+\S+){{1,3}})?\s*[:：]$",
        # "<name> <email> wrote:" / "<name> <email> schrieb am <date>:".
        rf"^.{{1,200}}{_EMAIL}.{{0,120}}?\s{_VERBS}(?:\s+(?:am|on)\b.{{0,80}}?)?\s*[:：]$",
        # "<name> via <list> wrote:".
        rf"^.{{1,100}}\svia\s.{{1,100}}\s{_VERBS}\s*[:：]$",
        # "<date>, <time>, <name> <email>:" (Gmail, Yandex, Mail.ru, Apple "30.09.2017, ...").
        rf"^(?=.*\d).{{0,250}}<\s*(?:mailto:)?{_EMAIL}\s*>\s*[:：]$",
        rf"^(?=.*\d).{{0,250}}\({_EMAIL}\)\s*[:：]$",
        # Gmail ISO form "2016-03-03 17:21 GMT+01:00 Some One" (with or without the address).
        r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}\s+\d{1,2}:\d{2}\s+GMT[+-]\d{1,2}:\d{2}\s.{1,200}$",
        # Old Gmail "2013/7/20 Some One <someone@example.com>".
        rf"^\d{{4}}/\d{{1,2}}/\d{{1,2}}\s.{{1,200}}<{_EMAIL}>\s*:?$",
        # Chinese Apple Mail "在 2016年12月12日，下午8:45，Name <addr> 写道：".
        r"^在.{2,300}(?:写道|寫道)[：:]?$",
    )
)

#: Every quote header holds one of these (a verb's stem, an address, Gmail's "GMT"): a cheap
#: substring test before the regexes of _HEADER_RES.
_HEADER_HINTS: Final[tuple[str, ...]] = (
    "@",
    "gmt",
    "wrote",
    "writes",
    "said",
    "says",
    "schrieb",
    "geschrieben",
    "schreef",
    "geschreven",
    "écrit",
    "nous a dit",
    "escribió",
    "escreveu",
    "scritto",
    "napisa",
    "pisze",
    "написа",
    "пише",
    "skrev",
    "kirjoitti",
    "napsal",
    "írta",
    "写道",
    "寫道",
    "작성",
    "のメッセージ",
)


def _is_header(text: str) -> bool:
    low = text.lower()
    return any(h in low for h in _HEADER_HINTS) and any(r.match(text) for r in _HEADER_RES)


#: Forward / original-message banners (single line).
_BANNER_RE: Final = re.compile(
    r"^[\s>*_]*(?:[-_=]{2,}\s*)?(?:"
    r"original message|forwarded message|reply message|original|"
    r"ursprüngliche nachricht|weitergeleitete nachricht|originalnachricht|"
    r"message d'origine|message d’origine|message transféré|message original|"
    r"mensaje original|mensaje reenviado|mensagem original|mensagem encaminhada|"
    r"messaggio originale|messaggio inoltrato|"
    r"oorspronkelijk bericht|origineel bericht|doorgestuurd bericht|"
    r"oprindelig (?:meddelelse|besked)|videresendt (?:meddelelse|besked)|"
    r"opprinnelig melding|videresendt melding|"
    r"originalmeddelande|ursprungligt meddelande|vidarebefordrat meddelande|"
    r"wiadomość oryginalna|oryginalna wiadomość|przekazana wiadomość|"
    r"původní zpráva|přeposlaná zpráva|alkuperäinen viesti|"
    r"исходное сообщение|пересылаемое сообщение|переслане повідомлення|"
    r"原始邮件|原始郵件|转发邮件"
    r")(?:\s*[-_=]{2,})?[\s*_]*$|"
    r"^[\s>]*(?:begin forwarded message|début du message transféré|"
    r"anfang der weitergeleiteten nachricht|inicio del mensaje reenviado|"
    r"início da mensagem reencaminhada)\s*:?\s*$",
    _I,
)


def _label_re(labels: str) -> re.Pattern[str]:
    return re.compile(rf"^[\s>*]*(?:{labels})[\s*]*[:：]", _I)


#: Outlook-style header fields that open a quoted message ("From:" in many languages).
_FROM_FIELD_RE: Final = _label_re(
    r"from|von|de|van|da|från|fra|od|от|від|lähettäjä|feladó|expéditeur|remitente|"
    r"发件人|寄件者|差出人|보낸 사람"
)
#: Other header fields seen in such blocks.
_OTHER_FIELD_RE: Final = _label_re(
    r"sent|date|to|cc|bcc|subject|reply-to|organization|"
    r"gesendet|datum|an|kopie|betreff|antwort an|"
    r"envoyé(?: le)?|à|a|objet|sujet|copie à|répondre à|destinataire|message du|"
    r"verzonden|aan|onderwerp|beantwoorden - aan|"
    r"inviato|oggetto|data|risposta|"
    r"skickat|till|ämne|kopia|sendt|til|emne|dato|kopi|"
    r"wysłano|do|temat|dw|"
    r"enviado(?: el)?|enviada em|para|asunto|assunto|fecha|"
    r"отправлено|кому|тема|дата|копия|надіслано|"
    r"lähetetty|vastaanottaja|aihe|elküldve|címzett|tárgy|odesláno|komu|předmět|"
    r"发送时间|收件人|主题|抄送|日期|送信日時|宛先|件名|받는 사람|보낸 날짜|제목"
)

#: Lines that close a reply but are not worth keeping when they end the text.
_DISCLAIMER_START_RE: Final = re.compile(
    r"^\s*(?:confidential|disclaimer|caution|warning|important|notice|this (?:e-?mail|message)|"
    r"if you are not the intended|to unsubscribe|you are receiving this|reply to this email)",
    _I,
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
