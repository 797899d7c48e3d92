"""Testing a condition against one message, with the reason in words: what ``rules explain`` shows.

Fields and operators are described in :mod:`maild.routing.conditions`.

Regex policy: a pattern cannot hang the worker. Python's ``re`` cannot be interrupted, so patterns
are compiled with the ``regex`` package and every search runs with ``timeout=`` (REGEX_TIMEOUT
seconds), which really stops the matcher; one evaluation has a total regex budget (REGEX_BUDGET) so
many slow patterns cannot add up either; and every text a condition sees is cut to MAX_TEXT_CHARS,
which bounds the work of the other operators too. A search that times out counts as "no match", is
named in the trace and logged.

:class:`MatchContext` holds one evaluation's inputs and computes each field's values once (cut,
lower-cased), for this module and for the compiled predicates of :mod:`maild.routing.predicates`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Literal

import regex

from maild.pipeline.message import InboundMessage
from maild.pipeline.sentiment import MISSING, message_sentiment, message_text
from maild.pipeline.sentiment import available as sentiment_available
from maild.pipeline.spam import MtaVerdict, mta_verdict
from maild.routing.schema import (
    SPAM_FIELDS,
    AllOf,
    AnyOf,
    AttachmentCond,
    BusinessHours,
    BusinessHoursCond,
    Condition,
    ExistsTest,
    FieldCond,
    FieldTest,
    HasAttachments,
    Not,
    PredictionCond,
    RegexTest,
    ScoreCond,
    TextTest,
    TicketView,
)

log = logging.getLogger("ticketd.rules")
Predictor = Callable[[str], "dict[str, Any] | None"]  # text -> maild.triage prediction

MAX_TEXT_CHARS = 100_000  # the part of a body or header any operator looks at
REGEX_TIMEOUT = 0.1  # seconds for one search
REGEX_BUDGET = 1.0  # seconds for all searches of one evaluation
# The two characters that match an ASCII letter under IGNORECASE but do not lower-case to it.
FOLD = {0x131: "i", 0x17F: "s"}


class Outcome:
    """Whether a condition held, and the part of it that decided, in words.

    The words are rendered only when asked for (``reason``), so evaluating a thousand rules does
    not format a thousand explanations nobody reads; the values they quote are immutable.
    """

    __slots__ = ("_why", "matched")

    def __init__(self, matched: bool, why: str | Callable[[], str]) -> None:
        self.matched = matched
        self._why = why

    @property
    def reason(self) -> str:
        if not isinstance(self._why, str):
            self._why = self._why()
        return self._why

    def __repr__(self) -> str:
        return f"Outcome({self.matched}, {self.reason!r})"


_CLOSE = Outcome(True, ")")


class MatchContext:
    """One evaluation's inputs, with field values computed once, and the regex budget."""

    def __init__(
        self,
        msg: InboundMessage,
        ticket: TicketView | None,
        now: dt.datetime,
        business_hours: BusinessHours | None = None,
        *,
        regex_timeout: float = REGEX_TIMEOUT,
        regex_budget: float = REGEX_BUDGET,
        extracted: Mapping[str, str] | None = None,
        authserv_id: str = "",
        triage: Predictor | None = None,
    ) -> None:
        self.authserv_id = authserv_id
        self.triage = triage
        self._prediction: dict[str, Any] | None = None
        self._predicted = False
        self._mta: MtaVerdict | None = None
        self.extracted: Mapping[str, str] = extracted or {}
        self.msg = msg
        self.ticket = ticket
        self.now = now
        self.business_hours = business_hours
        self.regex_timeout = regex_timeout
        self.regex_left = regex_budget
        self.timeouts: list[str] = []
        self._values: dict[tuple[str, str | None], tuple[str, ...]] = {}
        self._lowered: dict[tuple[str, str | None], tuple[str, ...]] = {}
        self._folded: dict[tuple[str, str | None], tuple[str, ...]] = {}
        self._open: bool | None = None
        self._attachments: int | None = None
        self._sentiment: float | None = None
        self._sentiment_done = False

    def values(self, field: str, header: str | None = None) -> tuple[str, ...]:
        key = (field, header)
        found = self._values.get(key)
        if found is None:
            found = tuple(v[:MAX_TEXT_CHARS] for v in self._compute(field, header) if v is not None)
            self._values[key] = found
        return found

    def lowered(self, field: str, header: str | None = None) -> tuple[str, ...]:
        key = (field, header)
        found = self._lowered.get(key)
        if found is None:
            found = tuple(v.lower() for v in self.values(field, header))
            self._lowered[key] = found
        return found

    def folded(self, field: str, header: str | None = None) -> tuple[str, ...]:
        """The values as :func:`maild.routing.predicates.fold` makes them (for literal tests)."""
        key = (field, header)
        found = self._folded.get(key)
        if found is None:
            found = tuple(v.translate(FOLD) for v in self.lowered(field, header))
            self._folded[key] = found
        return found

    def attachment_count(self) -> int:
        """Attachments that are not inline parts (a signature logo is not an attachment)."""
        if self._attachments is None:
            self._attachments = sum(1 for a in self.msg.attachments if not a.inline)
        return self._attachments

    def mta(self) -> MtaVerdict:
        """What our MTA's own headers say (maild.pipeline.spam), worked out once."""
        if self._mta is None:
            msg = self.msg
            sender = (msg.from_addr.email if msg.from_addr else msg.envelope_from).lower()
            self._mta = mta_verdict(
                msg.headers, authserv_id=self.authserv_id, domain=sender.rpartition("@")[2]
            )
        return self._mta

    def prediction(self) -> dict[str, Any] | None:
        """The triage model's prediction for the message (maild.triage), None without a model."""
        if not self._predicted:
            self._predicted = True
            if self.triage is not None:
                self._prediction = self.triage(message_text(self.msg))
        return self._prediction

    def sentiment(self) -> float | None:
        """The message's sentiment score (maild.pipeline.sentiment), None without the package."""
        if not self._sentiment_done:
            self._sentiment = message_sentiment(self.msg)
            self._sentiment_done = True
        return self._sentiment

    def _compute(self, field: str, header: str | None) -> Sequence[str | None]:
        msg, ticket = self.msg, self.ticket
        if field in SPAM_FIELDS:
            return self.mta().field(field)
        if field in ("from", "from_domain"):
            sender = (msg.from_addr.email if msg.from_addr else msg.envelope_from).lower()
            if not sender:
                return ()
            return (sender,) if field == "from" else (sender.rpartition("@")[2],)
        if field == "to":
            return [a.email.lower() for a in msg.to]
        if field == "cc":
            return [a.email.lower() for a in msg.cc]
        if field == "recipients":
            return msg.recipients
        if field == "subject":
            return (msg.subject,)
        if field == "body":
            return (msg.text,)
        if field == "header":
            return msg.header_all(header or "")
        if field == "field":
            stored = ticket.field(header or "") if ticket is not None else None
            return (stored if stored is not None else self.extracted.get(header or ""),)
        if ticket is None:
            return ()
        if field == "tags":
            return ticket.tags
        return (getattr(ticket, field),)

    def search(
        self, pattern: regex.Pattern[str], text: str
    ) -> regex.Match[str] | Literal[False] | None:
        """The match, None when there is none, False when the search ran out of time."""
        if self.regex_left <= 0:
            self.timeouts.append(pattern.pattern)
            return False
        started = time.perf_counter()
        try:
            return pattern.search(
                text, timeout=min(self.regex_timeout, self.regex_left), concurrent=True
            )
        except TimeoutError:
            self.timeouts.append(pattern.pattern)
            return False
        finally:
            self.regex_left -= time.perf_counter() - started

    def in_business_hours(self) -> bool:
        if self._open is None:
            bh = self.business_hours
            self._open = bh is None or in_business_hours(bh, self.now)
        return self._open


def in_business_hours(bh: BusinessHours, now: dt.datetime) -> bool:
    """Whether ``now`` (naive means UTC) falls inside the opening hours, holidays excluded."""
    if bh.always:
        return True
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    local = now.astimezone(bh.zone)
    if local.date() in bh.holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in bh.week[local.weekday()])


def shown(values: Sequence[str], limit: int = 60) -> str:
    """A short rendering of a field's values for a trace."""
    if not values:
        return "nothing"
    parts = []
    for value in values[:3]:
        one = " ".join(value.split())
        parts.append(repr(one if len(one) <= limit else one[: limit - 1] + "…"))
    more = f" (+{len(values) - 3} more)" if len(values) > 3 else ""
    return ", ".join(parts) + more


def _operands(test: TextTest | RegexTest) -> str:
    if isinstance(test, RegexTest):
        return ", ".join(f"/{p.pattern}/" for p in test.patterns)
    items = test.operands
    return repr(items[0]) if len(items) == 1 else "[" + ", ".join(map(repr, items)) + "]"


def _text_hit(op: str, lowered: tuple[str, ...], operands: tuple[str, ...]) -> str | None:
    """The first operand that fits one of the values, or None."""
    for value in lowered:
        if op == "equals":
            if value in operands:
                return value
            continue
        for operand in operands:
            if op == "contains":
                if operand in value:
                    return operand
            elif value.startswith(operand) if op == "starts_with" else value.endswith(operand):
                return operand
    return None


def _missed(label: str, test: TextTest | RegexTest, values: tuple[str, ...]) -> str:
    return f"{label} {test.op} {_operands(test)}: no ({label}: {shown(values)})"


def _field_test(
    test: FieldTest,
    label: str,
    values: tuple[str, ...],
    lowered: tuple[str, ...],
    ctx: MatchContext,
) -> Outcome:
    if isinstance(test, TextTest):
        operand = _text_hit(test.op, lowered, test.operands)
        if operand is not None:
            return Outcome(True, partial("{} {} {!r}".format, label, test.op, operand))
        return Outcome(False, partial(_missed, label, test, values))
    if isinstance(test, ExistsTest):
        present = any(values)
        if present == test.expected:
            return Outcome(True, f"{label} {'is present' if present else 'is absent'}")
        return Outcome(False, f"{label} exists {str(test.expected).lower()}: no")
    timed_out = []
    for value in values:
        for pattern in test.patterns:
            found = ctx.search(pattern, value)
            if found is False:
                timed_out.append(pattern.pattern)
            elif found is not None:
                text = found.group()
                return Outcome(
                    True,
                    partial(
                        "{} matches /{}/ (found {})".format, label, pattern.pattern, shown([text])
                    ),
                )
    if timed_out:
        return Outcome(
            False, f"{label} matches /{timed_out[0]}/: the search timed out and counts as no match"
        )
    return Outcome(False, partial(_missed, label, test, values))


def _field(cond: FieldCond, ctx: MatchContext) -> Outcome:
    label = cond.field if cond.header is None else f"{cond.field}.{cond.header}"
    if cond.field == "header":
        label = f"header {cond.header}"
    values = ctx.values(cond.field, cond.header)
    lowered = ctx.lowered(cond.field, cond.header)
    if len(cond.tests) == 1:
        return _field_test(cond.tests[0], label, values, lowered, ctx)
    held = []
    for test in cond.tests:
        outcome = _field_test(test, label, values, lowered, ctx)
        if not outcome.matched:
            return outcome
        held.append(outcome)
    return Outcome(True, partial(_joined, " and ", "", held))


def _joined(sep: str, prefix: str, outcomes: list[Outcome]) -> str:
    return prefix + sep.join(o.reason for o in outcomes)


def _attachment(cond: AttachmentCond, ctx: MatchContext) -> Outcome:
    parts = [a for a in ctx.msg.attachments if not a.inline]
    for part in parts:
        ctype, name = part.content_type.lower(), part.filename
        checks = [(t, "attachment type", ctype) for t in cond.type_tests]
        checks += [(t, "attachment name", name) for t in cond.name_tests]
        if all(_field_test(t, label, (v,), (v.lower(),), ctx).matched for t, label, v in checks):
            return Outcome(True, f"attachment {name!r} ({ctype})")
    if not parts:
        return Outcome(False, "attachment: the message has no attachments")
    listed = shown([f"{a.filename} ({a.content_type})" for a in parts])
    return Outcome(False, f"attachment: none of {listed} fits")


def score_holds(cond: ScoreCond, score: float | None) -> bool:
    if cond.exists is not None and (score is not None) != cond.exists:
        return False
    if cond.above is not None and (score is None or score <= cond.above):
        return False
    return not (cond.below is not None and (score is None or score >= cond.below))


def _score(cond: ScoreCond, ctx: MatchContext) -> Outcome:
    if cond.of == "sentiment":
        return _sentiment(cond, ctx)
    score = ctx.mta().score
    wanted = ", ".join(
        f"{k} {v:g}" if not isinstance(v, bool) else f"exists {str(v).lower()}"
        for k, v in (("above", cond.above), ("below", cond.below), ("exists", cond.exists))
        if v is not None
    )
    said = "no score from our MTA" if score is None else f"score {score:g}"
    return Outcome(score_holds(cond, score), f"spam_score {wanted} ({said})")


def _sentiment(cond: ScoreCond, ctx: MatchContext) -> Outcome:
    score = ctx.sentiment()
    wanted = ", ".join(
        f"{k} {v:g}" if not isinstance(v, bool) else f"exists {str(v).lower()}"
        for k, v in (("above", cond.above), ("below", cond.below), ("exists", cond.exists))
        if v is not None
    )
    if score is None:
        said = "no score: " + (MISSING if not sentiment_available() else "no text")
    else:
        said = f"score {score:g}"
    return Outcome(score_holds(cond, score), f"sentiment {wanted} ({said})")


def prediction_holds(cond: PredictionCond, prediction: dict[str, Any] | None) -> bool:
    if prediction is None or cond.target not in prediction:
        return False
    value, confidence = prediction[cond.target]
    return confidence >= cond.confidence and (not cond.values or value.lower() in cond.values)


def _prediction(cond: PredictionCond, ctx: MatchContext) -> Outcome:
    wanted = f"prediction {cond.target}"
    if cond.values:
        wanted += f" in {list(cond.values)}"
    wanted += f" with confidence {cond.confidence:g}"
    prediction = ctx.prediction()
    if prediction is None:
        return Outcome(False, f"{wanted} (no triage model)")
    if cond.target not in prediction:
        return Outcome(False, f"{wanted} (the model did not learn {cond.target})")
    value, confidence = prediction[cond.target]
    return Outcome(
        prediction_holds(cond, prediction), f"{wanted} (predicted {value!r} at {confidence:.2f})"
    )


def check(cond: Condition, ctx: MatchContext) -> Outcome:
    """Test ``cond``; the outcome's reason names the condition that decided."""
    if isinstance(cond, FieldCond):
        return _field(cond, ctx)
    if isinstance(cond, AllOf):
        held = []
        for item in cond.items:
            outcome = check(item, ctx)
            if not outcome.matched:
                return outcome
            held.append(outcome)
        return Outcome(True, partial(_joined, " and ", "", held))
    if isinstance(cond, AnyOf):
        missed = []
        for item in cond.items:
            outcome = check(item, ctx)
            if outcome.matched:
                return outcome
            missed.append(outcome)
        return Outcome(False, partial(_joined, "; ", "none of: ", missed))
    if isinstance(cond, Not):
        outcome = check(cond.item, ctx)
        return Outcome(not outcome.matched, partial(_joined, "", "not (", [outcome, _CLOSE]))
    if isinstance(cond, HasAttachments):
        count = ctx.attachment_count()
        said = f"{count} attachment{'s' if count != 1 else ''}"
        return Outcome(
            (count > 0) == cond.expected, f"has_attachments {str(cond.expected).lower()} ({said})"
        )
    if isinstance(cond, AttachmentCond):
        return _attachment(cond, ctx)
    if isinstance(cond, ScoreCond):
        return _score(cond, ctx)
    if isinstance(cond, PredictionCond):
        return _prediction(cond, ctx)
    if isinstance(cond, BusinessHoursCond):
        inside = ctx.in_business_hours()
        said = "inside" if inside else "outside"
        return Outcome(
            inside == cond.expected,
            f"business_hours {str(cond.expected).lower()} ({said} business hours)",
        )
    raise TypeError(f"not a condition: {cond!r}")  # pragma: no cover
