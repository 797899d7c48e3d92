"""The signals, one function each: auto-submitted and list headers, the sender and reverse
path, the subject, X-Failed-Recipients, multipart/report parts, bounce and challenge wording.
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import email.utils
import re
from email.message import Message

from maild.pipeline.classify.dsn import _judge_dsn, _parse_delivery_status
from maild.pipeline.classify.evidence import _DsnRecipient, _Evidence
from maild.pipeline.classify.headers import (
    _addresses,
    _has_header,
    _headers,
    _local_part,
    _message_ids,
    _raw_headers,
    _token,
)
from maild.pipeline.classify.parts import (
    _content_param,
    _content_type,
    _fields_text,
    _notification_part,
    _notification_text,
    _own_parts,
    _part_text,
    _subparts,
)
from maild.pipeline.classify.patterns import (
    _ADDR_RE,
    _AUTO_HEADERS,
    _AUTOACK_SUBJECT_RE,
    _AUTOREPLY_SUBJECT_RE,
    _BOUNCE_BODY_RE,
    _BOUNCE_SUBJECT_RE,
    _CHALLENGE_RE,
    _DAEMON_DISPLAY_RE,
    _DAEMON_LOCAL_PARTS,
    _DS_TYPES,
    _HEADERS_TYPES,
    _LIST_HEADERS,
    _MDN_TYPES,
    _MESSAGE_TYPES,
    _NOREPLY_LOCAL_RE,
    _POSTMASTER_LOCAL_PARTS,
    _URL_RE,
)
from maild.pipeline.classify.verdict import AUTO_GENERATED, AUTOREPLY, LIST

# --------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------


def _check_auto_headers(msg: Message, ev: _Evidence) -> None:
    """RFC 3834 / vendor auto-response fields, Precedence and list fields."""
    for value in _headers(msg, "Auto-Submitted"):
        token = _token(value)
        if token and token != "no":
            hint = AUTOREPLY if token == "auto-replied" else AUTO_GENERATED
            ev.add(f"Auto-Submitted: {token}", hint, "auto-submitted")
    for value in _headers(msg, "Precedence"):
        token = _token(value)
        if token in ("bulk", "list", "junk"):
            ev.add(f"Precedence: {token}", "precedence-junk" if token == "junk" else "precedence")
    for name in _LIST_HEADERS:
        if _has_header(msg, name):
            ev.add(name, LIST)
    if _has_header(msg, "X-Auto-Response-Suppress"):
        ev.add("X-Auto-Response-Suppress", "suppress")
    for name, hint in _AUTO_HEADERS:
        for value in _headers(msg, name):
            if _token(value) not in ("no", "false", "0"):
                ev.add(name, AUTOREPLY if "reply" in value.lower() else hint)
    if _has_header(msg, "Feedback-ID"):
        ev.add("Feedback-ID (bulk sender)", "bulk-sender")


def _reverse_path(msg: Message, envelope_from: str) -> str | None:
    """The reverse path: ``""`` when null, ``None`` when unknown."""
    value = envelope_from.strip()
    if not value:
        values = _raw_headers(msg, "Return-Path")
        if not values:
            return None
        value = values[0]
    if re.fullmatch(r"<?\s*>?", value):
        return ""
    match = _ADDR_RE.search(value)
    return match.group(0).lower() if match else value.strip("<> ").lower()


def _check_sender(msg: Message, ev: _Evidence, envelope_from: str) -> None:
    """Null reverse path, MAILER-DAEMON, postmaster and no-reply senders."""
    reverse = _reverse_path(msg, envelope_from)
    if reverse == "":
        ev.add("null sender", "null-sender")
    elif reverse is not None and _local_part(reverse) in _DAEMON_LOCAL_PARTS:
        ev.add("MAILER-DAEMON sender", "daemon")
    for name, addr in _addresses(_headers(msg, "From")):
        local = _local_part(addr)
        if local in _DAEMON_LOCAL_PARTS or (not addr and _DAEMON_DISPLAY_RE.match(name)):
            ev.add("MAILER-DAEMON sender", "daemon")
        elif local in _POSTMASTER_LOCAL_PARTS or _DAEMON_DISPLAY_RE.match(name):
            ev.add("postmaster sender", "postmaster")
        elif _NOREPLY_LOCAL_RE.match(local):
            ev.add("no-reply sender", "noreply")


def _check_subject(msg: Message, ev: _Evidence) -> None:
    ev.subject = " ".join(_headers(msg, "Subject")[:1])
    for pattern, what, hint in (
        (_AUTOREPLY_SUBJECT_RE, "auto-reply subject", "subject-autoreply"),
        (_AUTOACK_SUBJECT_RE, "auto-reply-like subject", "subject-autoack"),
        (_BOUNCE_SUBJECT_RE, "bounce subject", "subject-bounce"),
    ):
        match = pattern.search(ev.subject)
        if match and not (hint == "subject-autoack" and ev.has("subject-autoreply")):
            ev.add(f'{what} ("{match.group(0).strip()[:40]}")', hint)


def _check_failed_recipients(msg: Message, ev: _Evidence) -> None:
    values = [v for v in _headers(msg, "X-Failed-Recipients") if v]
    if values:
        ev.add("X-Failed-Recipients", "failed-recipients")
        for value in values:
            ev.recipients.extend(a.lower() for a in _ADDR_RE.findall(value))


def _enclosed_ids(part: Message, ctype: str) -> list[str]:
    """Message-IDs of an enclosed original message or of its headers."""
    if ctype in _MESSAGE_TYPES:
        ids: list[str] = []
        for inner in _subparts(part):
            ids.extend(_message_ids(_raw_headers(inner, "Message-ID")))
        return ids
    text = _part_text(part).lstrip("\r\n")
    parser = email.parser.HeaderParser(policy=email.policy.compat32)
    try:
        return _message_ids(_raw_headers(parser.parsestr(text), "Message-ID"))
    except Exception:
        return _message_ids(re.findall(r"^message-id[ \t]*:[ \t]*(.*)$", text, re.I | re.M))


def _check_report(msg: Message, ev: _Evidence) -> None:
    """multipart/report and its machine-readable parts; enclosed original messages."""
    top_type = _content_type(msg)
    report_type = _content_param(msg, "report-type") if top_type == "multipart/report" else ""
    if top_type == "multipart/report":
        ev.add(f"multipart/report; report-type={report_type or '(none)'}", "report")
    records: list[_DsnRecipient] = []
    has_ds = report_type == "delivery-status"
    for ctype, part in _own_parts(msg):
        if ctype in _DS_TYPES:
            has_ds = True
            records.extend(_parse_delivery_status(_fields_text(part)))
        elif ctype in _MDN_TYPES:
            ev.add("disposition-notification (MDN)", "mdn")
            ev.original_ids.extend(_mdn_original_ids(part))
        elif ctype == "message/feedback-report":
            ev.add("feedback-report (ARF)", "arf")
        elif (ctype in _MESSAGE_TYPES or ctype in _HEADERS_TYPES) and part is not msg:
            ev.hints.add("enclosed")
            ev.original_ids.extend(_enclosed_ids(part, ctype))
    if report_type == "disposition-notification":
        ev.add("disposition-notification (MDN)", "mdn")
    elif report_type == "feedback-report":
        ev.add("feedback-report (ARF)", "arf")
    if has_ds:
        _judge_dsn(records, ev)


def _mdn_original_ids(part: Message) -> list[str]:
    text = _fields_text(part)
    return _message_ids(re.findall(r"^original-message-id[ \t]*:[ \t]*(.*)$", text, re.I | re.M))


def _check_text(msg: Message, ev: _Evidence) -> None:
    """Bounce and challenge-response wording in the notification text."""
    ev.text = _notification_text(msg)
    if not ev.text:
        return
    if _CHALLENGE_RE.search(ev.text) and _URL_RE.search(ev.text):
        ev.add("challenge-response wording", "challenge")
    if _BOUNCE_BODY_RE.search(_notification_part(ev.text)):
        ev.add("bounce wording", "body-bounce")
    if not ev.has("dsn-failed", "dsn-delivered") and "final-recipient:" in ev.text.lower():
        records = _parse_delivery_status(ev.text)
        if records:
            _judge_dsn(records, ev)


def _check_reply_ids(msg: Message, ev: _Evidence) -> None:
    ev.reply_ids = _message_ids(_headers(msg, "In-Reply-To"))
    ev.reply_ids.extend(_message_ids(_headers(msg, "References"))[-1:])
