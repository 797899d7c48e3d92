"""Signed tokens for the web: the form token and the requester's status-link token.

Both are itsdangerous serializers under the instance secret, each with its own salt, carrying the
time they were made, so age checks take an injectable "now".

- Form token: served with ``GET /form``; refused when it comes back sooner than
  ``http.form_min_seconds`` (a bot fills forms at once) or later than ``http.form_max_hours``.
- Status token: names a ticket and a recipient. The recipient is stored as an HMAC of the address
  (the link shows no address); the page accepts it only while that address is still the ticket's
  requester or a watcher, before ``http.link_days`` and after the ticket's last revocation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

FORM_SALT = "ticketd.web.form"
STATUS_SALT = "ticketd.web.status"


class TokenError(Exception):
    """A token that is not valid; the text is for logs, never for the client."""


def issue_form_token(secret: bytes, now: float) -> str:
    return URLSafeSerializer(secret, salt=FORM_SALT).dumps(
        {"t": int(now * 1000), "n": secrets.token_hex(4)}
    )


def check_form_token(
    secret: bytes, token: str, now: float, *, min_seconds: float, max_seconds: float
) -> None:
    """Raise :class:`TokenError` unless ``token`` is ours and between the two ages."""
    try:
        data = URLSafeSerializer(secret, salt=FORM_SALT).loads(token)
        issued = int(data["t"]) / 1000
    except (BadSignature, KeyError, TypeError, ValueError) as exc:
        raise TokenError(f"bad form token: {exc}") from None
    age = now - issued
    if age < min_seconds:
        raise TokenError(f"form sent {age:.1f}s after it was served")
    if age > max_seconds:
        raise TokenError(f"form token {age:.0f}s old")


def recipient_mac(secret: bytes, email: str) -> str:
    return hmac.new(
        secret, b"status-rcpt:" + email.strip().lower().encode(), hashlib.sha256
    ).hexdigest()[:20]


@dataclass(frozen=True)
class StatusClaim:
    ticket: int
    recipient_mac: str
    issued: float  # epoch seconds

    def is_for(self, secret: bytes, email: str) -> bool:
        return hmac.compare_digest(self.recipient_mac, recipient_mac(secret, email))


def issue_status_token(secret: bytes, ticket: int, email: str, now: float) -> str:
    return URLSafeSerializer(secret, salt=STATUS_SALT).dumps(
        [ticket, recipient_mac(secret, email), int(now * 1000)]
    )


def read_status_token(secret: bytes, token: str, *, now: float, max_days: float) -> StatusClaim:
    """The claim of a genuine, unexpired token; raises :class:`TokenError` otherwise."""
    try:
        ticket, mac, issued = URLSafeSerializer(secret, salt=STATUS_SALT).loads(token)
        claim = StatusClaim(int(ticket), str(mac), int(issued) / 1000)
    except (BadSignature, TypeError, ValueError) as exc:
        raise TokenError(f"bad status token: {exc}") from None
    if now - claim.issued > max_days * 86400:
        raise TokenError("status token expired")
    if claim.issued > now + 300:
        raise TokenError("status token from the future")
    return claim
