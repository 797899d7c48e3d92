"""The token of a "that solved it" link: itsdangerous, under the instance secret with its own
salt; it names the ticket, the article and an HMAC of the requester's address (the link shows no
address), and expires after ``kb.solved_link_days``."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from maild.store.models import Ticket

SALT = "ticketd.kb.solved"


class SolvedTokenError(Exception):
    """A link token that is not ours, not for this ticket, or too old (words for the log)."""


def _mac(secret: bytes, email: str) -> str:
    return hmac.new(
        secret, b"kb-solved:" + email.strip().lower().encode(), hashlib.sha256
    ).hexdigest()[:20]


def issue_token(secret: bytes, ticket: int, email: str, slug: str, now: float) -> str:
    return URLSafeSerializer(secret, salt=SALT).dumps([ticket, _mac(secret, email), slug, int(now)])


@dataclass(frozen=True)
class SolvedClaim:
    ticket: int
    slug: str


def read_token(secret: bytes, token: str, *, now: float, max_days: float) -> SolvedClaim:
    try:
        ticket, mac, slug, issued = URLSafeSerializer(secret, salt=SALT).loads(token)
        claim = SolvedClaim(int(ticket), str(slug))
        mac, issued = str(mac), int(issued)
    except (BadSignature, TypeError, ValueError) as exc:
        raise SolvedTokenError(f"bad solved token: {exc}") from None
    if now - issued > max_days * 86400:
        raise SolvedTokenError("solved token expired")
    found = Ticket.get_or_none(Ticket.id == claim.ticket)
    if found is None or not hmac.compare_digest(mac, _mac(secret, found.requester.email)):
        raise SolvedTokenError("solved token not for this ticket's requester")
    return claim
