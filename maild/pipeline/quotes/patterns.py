"""The patterns of plain-text quote stripping: our reply marker, quote headers in many
languages, signature delimiters and mobile signatures, and the limits that bound the search.
"""

from __future__ import annotations

import re
from typing import Final

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
