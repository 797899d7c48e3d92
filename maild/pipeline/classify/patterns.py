"""The patterns robots give themselves away by: auto-reply and bounce subjects and wording in
several languages, challenge-response text, daemon senders, list and auto-submitted headers, and
the MIME types of reports.
"""

from __future__ import annotations

import re

from maild.pipeline.classify.verdict import AUTO_GENERATED, AUTOREPLY

# --------------------------------------------------------------------------
# Patterns
# --------------------------------------------------------------------------

_URL_RE = re.compile(r"https?://", re.I)
_ADDR_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.ASCII)
_MSGID_RE = re.compile(r"<([^<>\s]+)>")
_REPLY_PREFIX_RE = re.compile(r"^\s*(?:(?:re|aw|sv|vs|antw|odp|r|fwd?|wg|tr|rv)\s*:\s*)+", re.I)

# Markers only auto-replies put at the start of a subject ("Automatic reply: ...").
_AUTOREPLY_MARKER = r"""(?:
    auto(?:matic|matische?)?[\s_-]*(?:reply|response|antwort|answer|respon[sd]\w*)
    | autoreply | autoresponder | out\s+of\s+(?:the\s+)?office
    | abwesenheits?(?:notiz|meldung|nachricht)
    | automatische\s+(?:antwort|r[üu]ckantwort)
    | r[ée]ponse\s+automatique | absence\s+du\s+bureau
    | risposta\s+automatica | respuesta\s+autom[áa]tica
    | resposta\s+autom[áa]tica | automatisch\s+antwoord
    | automatyczna\s+odpowied[źz] | automatick[áa]\s+odpov[eě]ď
    | automatiskt?\s+svar | automaattinen\s+vastaus
)"""
# Auto-reply subjects: a marker followed by ":" / "]" or standing alone; "... (Automatic
# Response)"; Lotus Notes' "[AUTO:] Jane Doe is out of the office" (not after "Re:").
_AUTOREPLY_SUBJECT_RE = re.compile(
    rf"""^\s*\[?\s*{_AUTOREPLY_MARKER}(?:\s+auto-?reply)?\s*(?:[:\]]|$)
    | \((?:automatic|auto)[\s-]*(?:response|reply|antwort)\)
    | ^\s*(?:auto\s*:\s*)?[^:]{{0,80}}\bis\s+out\s+of\s+(?:the\s+)?office\b
    """,
    re.I | re.X,
)
# Subjects people may write too ("Auto: ..." is also German for car): they only make an
# auto-reply together with another robot cue.
_AUTOACK_SUBJECT_RE = re.compile(
    r"""^\s*\[?\s*(?:
        auto | on\s+vacation | vacation(?:\s+(?:reply|notice|message|response))?
        | away\s+from\s+(?:the\s+|my\s+)?(?:office|desk|e-?mail)
    )\s*(?:[:\]]|$)
    | ^\s*thank\s+you\s+for\s+(?:your\s+)?(?:e-?mail|message|contacting)
    | ^\s*we\s+(?:have\s+)?received\s+your\s+(?:e-?mail|message|request)
    """,
    re.I | re.X,
)
_BOUNCE_SUBJECT_RE = re.compile(
    r"""^\s*(?:
        undeliver(?:able|ed)\s*(?::|mail|message|e-?mail\b)
        | undelivered\s+mail\s+returned\s+to\s+sender
        | delivery\s+status\s+notification\s*\((?:failure|delay)\)
        | delivery\s+(?:status\s+)?notification\s*:\s*(?:delivery\s+has\s+)?failed
        | delivery\s+(?:failure|failed|problem)
        | delivery\s+to\s+the\s+following\s+recipients?\s+failed
        | returned\s+mail\s*(?::|$)
        | return(?:ed)?\s+to\s+sender
        | mail\s+delivery\s+(?:failed|failure|problem|subsystem|system)
        | mail\s+(?:system\s+error|failure)
        | message\s+(?:delivery\s+has\s+failed|not\s+delivered|undeliverable)
        | message\s+status\s*-\s*undeliverable
        | non[\s-]?deliver(?:y|able)
        | failure\s+notice
        | delayed\s+mail | delivery\s+delay(?:ed)?
        | warning\s*:\s*(?:could\s+not\s+send|message\s+.*delayed|delayed)
        | could\s+not\s+send\s+message
        | (?:e-?mail\s+)?bounce\s+notification
        | unzustellbar | nicht\s+zustellbar | non\s+remis | non\s+recapitabile
        | onbestelbaar | no\s+se\s+puede\s+entregar | n[ãa]o\s+entregue
        | notification\s+d'[ée]tat\s+de\s+remise
    )""",
    re.I | re.X,
)
# Wording of non-delivery notifications (searched in the notification text).
_BOUNCE_BODY_RE = re.compile(
    r"""
    this\s+is\s+the\s+mail\s+system\s+at\s+host
    | (?:could\s+not|couldn't|cannot|can\s?not|was\s+not|wasn't\s+able\s+to)\s+be\s+delivered
    | (?:could\s+not|couldn't|was\s+unable\s+to|wasn't\s+able\s+to)\s+deliver\s+(?:your|the|this)
    | delivery\s+to\s+the\s+following\s+recipients?\s+(?:failed|has\s+been\s+delayed)
    | delivery\s+has\s+failed\s+to\s+these\s+recipients
    | did\s+not\s+reach\s+(?:some\s+or\s+all\s+of\s+)?(?:the\s+|its\s+)?intended\s+recipient
    | following\s+(?:addresses|recipients?)\s+(?:had|failed|could)
    | permanent\s+fatal\s+errors
    | created\s+automatically\s+by\s+mail\s+delivery\s+software
    | (?:message|mail)\s+(?:was\s+)?(?:rejected|returned|undeliverable|not\s+delivered)
    | returned\s+(?:mail|message) | undeliver(?:able|ed)\s+(?:mail|message)
    | delivery\s+(?:status\s+notification|failure|failed|problem)
    | user\s+unknown | unknown\s+user | no\s+such\s+user | mailbox\s+(?:is\s+)?(?:full|unavailable)
    | recipient\s+address\s+rejected | host\s+or\s+domain\s+name\s+not\s+found
    | \b[45]\d\d[\s-]+[45]\.\d{1,3}\.\d{1,3}\b
    | (?:could\s+not|cannot|unable\s+to)\s+(?:send|deliver)\s+(?:message|mail)
    | will\s+(?:continue\s+to\s+)?(?:be\s+)?retr(?:y|ied)
    """,
    re.I | re.X,
)
# Challenge-response systems asking the sender to get on an allow list.  Only counts
# with a link in the text and another robot cue (see _decide).
_CHALLENGE_RE = re.compile(
    r"""
    add\s+(?:yourself|your\s+(?:e-?mail\s+)?address)\s+to\s+my\s+
        (?:[\w-]+\s+)?(?:guest|allowed|approved|safe|white|sender)[\s-]*(?:list|senders)
    | have\s+your\s+(?:e-?mail\s+)?address\s+added\s+to\s+the\s+recipient'?s?\s+
        (?:allowed|approved|safe|white)[\s-]*(?:list|senders)
    | (?:your\s+message|the\s+message\s+you\s+sent)\s+(?:about\s+.{0,120}?\s+)?
        (?:has\s+been|was|is)\s+(?:waitlisted|held\s+pending\s+verification)
    | (?:verify|confirm)\s+that\s+you\s+are\s+(?:a\s+)?
        (?:human|real\s+person|not\s+a\s+(?:robot|spammer))
    | this\s+(?:account|mailbox|e-?mail\s+address)\s+is\s+protected\s+by
    | confirm\s+that\s+you(?:'re|\s+are)\s+(?:now\s+)?listed\s+on\s+my\s+
        (?:[\w-]+\s+){0,2}(?:guest|allowed|approved|safe|white)[\s-]*list
    """,
    re.I | re.X,
)
# Where the returned original message starts inside a plain-text bounce.
_RETURNED_MESSAGE_RE = re.compile(
    r"""^.*(?:
        copy\s+of\s+(?:the|your)\s+(?:original\s+)?message
        | (?:original|returned|undelivered|bounced)\s+(?:message|mail|e-?mail)
            \s*(?:follows|headers?|:|-|$)
        | below\s+this\s+line\s+is\s+a\s+copy
        | header\s+of\s+the\s+original\s+message
        | message\s+(?:headers?\s+)?follows
        | original\s+message\s+header
    ).*$""",
    re.I | re.X | re.M,
)
# Lines of a bounce text that name addresses other than the failed recipients.
_HEADER_LINE_RE = re.compile(
    r"^\s*(?:from|sender|reply-to|return-path|message-id|references|in-reply-to|"
    r"x-[\w-]+|dkim-signature|authentication-results|received-spf)\s*:",
    re.I,
)
_NOT_RECIPIENT_LINE_RE = re.compile(
    r"message-?id|\bid\s*[:=<]|\b(?:contact|assistance|questions?|help|helpdesk)\b", re.I
)
# "... to the following recipients:" introducing a list of (possibly bare) mailboxes.
_RECIPIENT_LIST_RE = re.compile(r"\b(?:recipients?|address(?:es)?)\b.*:\s*$", re.I)
_BARE_LOCAL_RE = re.compile(r"^\s+([\w.+-]+)\s*$")

_DAEMON_LOCAL_PARTS = frozenset({"mailer-daemon", "mailer_daemon", "mail-daemon", "maildaemon"})
_POSTMASTER_LOCAL_PARTS = frozenset({"postmaster", "post_master", "post-master"})
_NOREPLY_LOCAL_RE = re.compile(r"^(?:no|do[._-]?not)[._-]?reply(?:[._+-].*)?$", re.I)
_DAEMON_DISPLAY_RE = re.compile(
    r"^\s*(?:mail(?:er)?[\s-]*daemon|mail\s+delivery\s+(?:subsystem|system|service)|"
    r"mail\s+administrator|postmaster)\b",
    re.I,
)
# RFC 2369 / 2919 list fields and the fields of common list managers.
_LIST_HEADERS = (
    "List-Id",
    "List-Unsubscribe",
    "List-Post",
    "List-Subscribe",
    "List-Help",
    "List-Owner",
    "List-Archive",
    "Mailing-List",
    "X-Mailing-List",
    "X-MLServer",
    "X-ML-Name",
    "X-Mailman-Version",
)
_AUTO_HEADERS = (
    ("X-Autoreply", AUTOREPLY),
    ("X-Autorespond", AUTOREPLY),
    ("X-Autoresponder", AUTOREPLY),
    ("X-Autogenerated", AUTO_GENERATED),
)
_DS_FIELD_RE = re.compile(
    r"^(final-recipient|original-recipient|action|status)[ \t]*:[ \t]*(.*)$", re.I | re.M
)
# Hints that make a message a robot on their own (auto-generated unless more is known).
_WEAK_ROBOT_HINTS = ("null-sender", "precedence", "precedence-junk", "suppress", "bulk-sender")
_DSN_FAIL_ACTIONS = frozenset({"failed", "delayed"})
_DSN_OK_ACTIONS = frozenset({"delivered", "relayed", "expanded"})
_DS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_MDN_TYPES = frozenset(
    {"message/disposition-notification", "message/global-disposition-notification"}
)
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_HEADERS_TYPES = frozenset({"text/rfc822-headers", "message/global-headers"})
