"""Satisfaction surveys: the mail sent on resolution, and reading the customer's rating.

A rating is 1 to 5, given at the top of the reply's visible text, as a digit (``4``, ``4/5``,
``4 of 5``, ``4 stars``) or a word (bad 1, poor 2, okay 3, good 4, excellent 5, and a few
synonyms); the rest of that line and the lines below are the comment. A word must stand alone
(``Good, thanks`` rates, ``Good morning, it broke again`` does not). The survey's mailto links
write to the ticket's signed reply address with ``[ACME-1] Rating: N`` as the subject and the
digit as the first line, so either carries the rating.

A reply counts as a satisfaction reply only on a resolved (or since closed) ticket that was sent a
survey, only from the requester (the worker asks only then: :mod:`maild.pipeline.participants`),
and only through the survey itself: the mail arrived at the ticket's signed reply address (where
the survey's links write; only who got our mail knows it), or its In-Reply-To names the survey's
Message-ID. A rating tag in the subject of mail to the plain address proves nothing (anyone can
write ``[ACME-1] Rating: 1``). A later rating of the requester replaces the earlier one (an audit
event each). A rating word followed by a comma must be most of its line (at most
``MAX_WORDS_WITH_A_WORD_RATING`` words: ``Good, thanks`` rates, ``Ok, but the refund never came``
is a reply, not a 3; ``Not good - it took a week`` rates).
Anything else is an ordinary reply: it re-opens a resolved ticket, or starts a follow-up of a
closed one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from maild.app import App
from maild.notify.templates import Renderer
from maild.pipeline.addresses import Signer
from maild.pipeline.thread import strip_reply_prefixes
from maild.sla.mail import to_customer
from maild.store.models import Message, Ticket

SURVEY_KIND = "survey"
MAX_COMMENT_CHARS = 5000
MAX_WORDS_WITH_A_WORD_RATING = 5
LABELS = {1: "bad", 2: "poor", 3: "okay", 4: "good", 5: "excellent"}
WORDS = {
    "very bad": 1,
    "terrible": 1,
    "awful": 1,
    "horrible": 1,
    "bad": 1,
    "schlecht": 1,
    "not good": 2,
    "poor": 2,
    "mangelhaft": 2,
    "okay": 3,
    "ok": 3,
    "fine": 3,
    "average": 3,
    "neutral": 3,
    "befriedigend": 3,
    "good": 4,
    "gut": 4,
    "very good": 5,
    "excellent": 5,
    "great": 5,
    "perfect": 5,
    "outstanding": 5,
    "awesome": 5,
    "sehr gut": 5,
}
_WORD = "|".join(sorted((re.escape(w) for w in WORDS), key=len, reverse=True))
_END = r"(?=\s*$|\s*[.,;:!)*\-–—])"  # a rating stands alone or before punctuation
_DIGIT = re.compile(
    rf"^(?:rating:?\s*)?([1-5])(?:\s*(?:/\s*5|of\s+5|out\s+of\s+5|stars?))?{_END}",
    re.IGNORECASE,
)
_WORDS = re.compile(rf"^({_WORD}){_END}", re.IGNORECASE)
_SUBJECT = re.compile(r"\brating:?\s*([1-5])\b", re.IGNORECASE)
_LEADING_PUNCT = re.compile(r"^[\s.,;:!)*\-–—]+")


@dataclass(frozen=True)
class Rating:
    rating: int
    comment: str


def parse_rating(text: str) -> Rating | None:
    """The rating at the top of ``text`` and the rest as the comment, or None."""
    lines = text.strip().splitlines()
    if not lines:
        return None
    first = lines[0].strip().lstrip("*>").strip()
    found = _DIGIT.match(first)
    rating = int(found.group(1)) if found else None
    if found is None:
        found = _WORDS.match(first)
        rating = WORDS[found.group(1).lower()] if found else None
        if (
            found is not None
            and first[found.end() :].lstrip().startswith(",")
            and len(first.split()) > MAX_WORDS_WITH_A_WORD_RATING
        ):
            return None  # a sentence that starts with "Ok," or "Fine," is an answer, not a rating
    if found is None or rating is None:
        return None
    rest = _LEADING_PUNCT.sub("", first[found.end() :])
    comment = "\n".join([rest, *lines[1:]]).strip()
    return Rating(rating, comment[:MAX_COMMENT_CHARS])


def rating_in_subject(subject: str) -> int | None:
    """The rating a survey link put into the subject (``[ACME-1] Rating: 4``), or None."""
    found = _SUBJECT.search(strip_reply_prefixes(subject or ""))
    return int(found.group(1)) if found else None


def links(app: App, ticket: Ticket) -> list[dict[str, Any]]:
    """The mailto links 1..5 for the survey template: ``{rating, label, url}``."""
    signer = Signer(app.config.prefix, app.secret)
    support = ticket.support_address or app.config.support_addresses[0]
    address = signer.reply_address(support, ticket.id)
    out = []
    for rating in range(1, 6):
        subject = f"[{app.config.prefix}-{ticket.id}] Rating: {rating}"
        body = f"{rating}\r\n\r\n"
        url = f"mailto:{address}?subject={quote(subject, safe='')}&body={quote(body, safe='')}"
        out.append({"rating": rating, "label": LABELS[rating], "url": url})
    return out


def queue_survey(
    app: App, renderer: Renderer, ticket: Ticket, *, at: dt.datetime, actor: str
) -> str:
    """Mail the survey to the requester (loop protection applies); return what happened."""
    extra = {"survey": {"links": links(app, ticket), "labels": dict(LABELS)}}
    return to_customer(
        app, renderer, ticket, "survey", at=at, kind=SURVEY_KIND, actor=actor, extra=extra
    )


def satisfaction_reply(
    ticket: Ticket, subject: str, body: str, in_reply_to: Sequence[str] = (), *, signed: bool
) -> Rating | None:
    """The rating in the requester's reply to ``ticket``, if the reply is one (see above);
    ``signed``: it was sent to the ticket's signed reply address."""
    if ticket.status not in ("resolved", "closed"):
        return None
    surveys = {
        row.message_id
        for row in Message.select(Message.message_id).where(
            (Message.ticket == ticket)
            & (Message.direction == "out")
            & (Message.kind == SURVEY_KIND)
        )
    }
    if not surveys:
        return None
    if not signed and not surveys.intersection(in_reply_to):
        return None  # not through the survey: an ordinary reply
    in_subject = rating_in_subject(subject)
    parsed = parse_rating(body)
    if parsed is not None:
        return parsed
    if in_subject is not None:
        return Rating(in_subject, body.strip()[:MAX_COMMENT_CHARS])
    return None
