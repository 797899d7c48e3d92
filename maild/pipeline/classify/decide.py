"""The decision: the kind of a message from the evidence, strongest first, and
:func:`classify`, which gathers the evidence and decides.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import Message

from maild.pipeline.classify.evidence import _Evidence
from maild.pipeline.classify.headers import _dedupe, _headers
from maild.pipeline.classify.patterns import _REPLY_PREFIX_RE, _WEAK_ROBOT_HINTS
from maild.pipeline.classify.recipients import _text_recipients
from maild.pipeline.classify.signals import (
    _check_auto_headers,
    _check_failed_recipients,
    _check_reply_ids,
    _check_report,
    _check_sender,
    _check_subject,
    _check_text,
)
from maild.pipeline.classify.verdict import (
    AUTO_GENERATED,
    AUTOREPLY,
    BOUNCE,
    HUMAN,
    LIST,
    Classification,
)

# --------------------------------------------------------------------------
# Decision
# --------------------------------------------------------------------------


def _is_reply(msg: Message, subject: str) -> bool:
    return any(_headers(msg, "In-Reply-To")) or bool(_REPLY_PREFIX_RE.match(subject))


def _decide(msg: Message, ev: _Evidence) -> str:
    """Pick the kind from the collected hints, strongest evidence first."""
    robot_cue = ev.has("report", "null-sender", "noreply", "auto-submitted", AUTOREPLY)
    if ev.has("challenge") and (robot_cue or _is_reply(msg, ev.subject)):
        return AUTOREPLY
    if ev.has("mdn", "arf"):
        return AUTO_GENERATED
    if ev.has("dsn-failed", "failed-recipients"):
        return BOUNCE
    if ev.has("dsn-delivered"):
        return AUTO_GENERATED
    if ev.has("daemon") and not ev.has("subject-autoreply"):
        return BOUNCE
    robot_sender = ev.has("null-sender", "postmaster", "auto-submitted")
    if ev.has("subject-bounce") and robot_sender:
        return BOUNCE
    if ev.has("postmaster") and ev.has("body-bounce", "report"):
        return BOUNCE
    if ev.has("noreply") and ev.has("body-bounce") and ev.has("enclosed", "subject-bounce"):
        return BOUNCE
    if ev.has("report"):
        return AUTO_GENERATED
    if ev.has(AUTOREPLY, "subject-autoreply"):
        return AUTOREPLY
    if ev.has("subject-autoack") and ev.has(*_WEAK_ROBOT_HINTS, "noreply", AUTO_GENERATED):
        return AUTOREPLY
    if ev.has(AUTO_GENERATED) or (ev.has("suppress") and _is_reply(msg, ev.subject)):
        # "Auto-Submitted: auto-generated" answering a message is an auto-reply.
        return AUTOREPLY if _is_reply(msg, ev.subject) else AUTO_GENERATED
    if ev.has(LIST, "precedence"):
        return LIST
    if ev.has(*_WEAK_ROBOT_HINTS, "subject-autoack"):
        return AUTO_GENERATED
    return HUMAN


def _collect(msg: Message, envelope_from: str) -> _Evidence:
    """Run every check; a check that fails on odd input is noted and skipped."""
    ev = _Evidence()
    checks: tuple[Callable[[], None], ...] = (
        lambda: _check_auto_headers(msg, ev),
        lambda: _check_sender(msg, ev, envelope_from),
        lambda: _check_failed_recipients(msg, ev),
        lambda: _check_report(msg, ev),
        lambda: _check_subject(msg, ev),
        lambda: _check_text(msg, ev),
        lambda: _check_reply_ids(msg, ev),
    )
    for check in checks:
        try:
            check()
        except Exception as exc:  # pragma: no cover - defensive
            ev.add(f"unreadable input ({type(exc).__name__})")
    return ev


def _result(msg: Message, ev: _Evidence, kind: str) -> Classification:
    recipients: tuple[str, ...] = ()
    if kind == BOUNCE:
        found = ev.recipients or _text_recipients(msg, ev.text, ev.original_ids)
        recipients = _dedupe(found)
    ids: list[str] = []
    if kind not in (HUMAN, LIST):
        ids = ev.original_ids
        if not ids and kind in (AUTOREPLY, BOUNCE):
            ids = ev.reply_ids
    return Classification(
        kind=kind,
        reasons=tuple(ev.reasons),
        bounced_recipients=recipients,
        original_message_ids=_dedupe(ids),
    )


def classify(msg: Message, *, envelope_from: str = "") -> Classification:
    """Classify ``msg`` as written by a person or sent by a robot.

    ``msg`` is normally ``email.message_from_bytes(raw, policy=email.policy.default)``.
    ``envelope_from`` is the SMTP reverse path: ``"<>"`` for a null sender,
    ``""`` when unknown.  Pure and never raises.
    """
    try:
        ev = _collect(msg, envelope_from or "")
        return _result(msg, ev, _decide(msg, ev))
    except Exception as exc:  # pragma: no cover - defensive
        return Classification(kind=HUMAN, reasons=(f"classifier error: {type(exc).__name__}",))
