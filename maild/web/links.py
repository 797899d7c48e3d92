"""Requester status links: ``{public_url}/t/{REF}?k={token}``, one per ticket and recipient.

:func:`status_url` is what outgoing mail puts in the template variable ``status_url``: a link
only for the ticket's requester and watchers (anyone else gets an empty string), and only when
the HTTP server is enabled. :func:`viewer_of` is the other half, used by the status page: who a
token lets in, or None for a tampered, expired, revoked or other-ticket token.
"""

from __future__ import annotations

import datetime as dt

from maild.app import App
from maild.store.models import StatusLinkRevocation, Ticket, Watcher
from maild.web.tokens import TokenError, issue_status_token, read_status_token


def epoch(value: dt.datetime) -> float:
    return value.replace(tzinfo=dt.UTC).timestamp()


def base_url(app: App) -> str:
    http = app.config.http
    return (http.public_url or f"http://{http.host}:{http.port}").rstrip("/")


def participants(ticket: Ticket) -> dict[str, str]:
    """Lower-cased address -> name of everyone a status link may be for."""
    people = {ticket.requester.email.lower(): ticket.requester.name}
    for watcher in Watcher.select().where(Watcher.ticket == ticket).order_by(Watcher.email):
        people.setdefault(watcher.email.lower(), watcher.name)
    return people


def status_url(app: App, ticket: Ticket, email: str) -> str:
    """The signed status link of ``email`` for ``ticket``, or "" when there is none to give."""
    if not app.config.http.enabled or email.lower() not in participants(ticket):
        return ""
    token = issue_status_token(app.secret, ticket.id, email, epoch(app.clock.now()))
    return f"{base_url(app)}/t/{app.config.prefix}-{ticket.id}?k={token}"


def viewer_of(app: App, number: int, token: str) -> tuple[Ticket, str, str] | None:
    """(ticket, address, name) of the person ``token`` names for ticket ``number``, or None."""
    now = epoch(app.clock.now())
    try:
        claim = read_status_token(app.secret, token, now=now, max_days=app.config.http.link_days)
    except TokenError:
        return None
    if claim.ticket != number:
        return None
    ticket = Ticket.get_or_none(Ticket.id == number)
    if ticket is None:
        return None
    revoked = StatusLinkRevocation.get_or_none(StatusLinkRevocation.ticket == ticket)
    if revoked is not None and claim.issued < epoch(revoked.revoked_at):
        return None
    for email, name in participants(ticket).items():
        if claim.is_for(app.secret, email):
            return ticket, email, name
    return None


def revoke(ticket: Ticket, at: dt.datetime) -> None:
    """Invalidate every status link of ``ticket`` issued up to ``at`` (inside a transaction)."""
    updated = (
        StatusLinkRevocation.update(revoked_at=at)
        .where(StatusLinkRevocation.ticket == ticket)
        .execute()
    )
    if not updated:
        StatusLinkRevocation.create(ticket=ticket, revoked_at=at)
