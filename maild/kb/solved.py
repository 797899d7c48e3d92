""" "That solved it": the requester resolves their ticket themselves, by a signed link in the
acknowledgement or by a one-word reply ("solved").

The link's token is :mod:`maild.kb.tokens`. Opening the link shows a page with one button (a GET changes nothing: mail scanners follow
links); the button's POST resolves the ticket. Either way the ticket is resolved with the reason
"self-solved" and an audit event ``self_solved`` (``via``: link or mail, ``article``), and only
while it is new, open or pending and had suggestions.
"""

from __future__ import annotations

import datetime as dt

import regex

from maild.app import App
from maild.sla import lifecycle
from maild.store import tickets as store
from maild.store.models import KbSuggestion, Message, Ticket

OPEN = ("new", "open", "pending")
# A reply that says only this (any case, with punctuation around) marks the ticket self-solved.
_SOLVED_REPLY = regex.compile(
    r"^\W*(?:solved|that solved it|this solved it|it is solved|it's solved|gelöst|résolu|resuelto)"
    r"[\W]*$",
    regex.IGNORECASE,
)


def is_solved_reply(text: str) -> bool:
    """Whether the visible text of a reply is only "solved" (or "that solved it")."""
    return len(text) <= 40 and bool(_SOLVED_REPLY.match(text.strip()))


def had_suggestions(ticket: Ticket) -> bool:
    return KbSuggestion.select().where(KbSuggestion.ticket == ticket).exists()


def mark_self_solved(
    app: App,
    ticket: Ticket,
    *,
    actor: str,
    at: dt.datetime,
    via: str,
    article: str | None = None,
    message: Message | None = None,
) -> bool:
    """Resolve ``ticket`` as self-solved (inside the caller's transaction); False if it is not
    new, open or pending, or was suggested nothing."""
    if ticket.status not in OPEN or not had_suggestions(ticket):
        return False
    lifecycle.set_status(
        app, None, ticket, "resolved", actor=actor, at=at, message=message, reason="self-solved"
    )
    store.add_event(
        ticket, "self_solved", actor=actor, at=at, message=message, via=via, article=article
    )
    return True
