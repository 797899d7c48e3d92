"""Loop protection: who may receive an automatic mail from us, and bounce suppression.

No automatic mail goes to a robot (the classifier's verdict), to a null, MAILER-DAEMON, postmaster
or no-reply sender, to our own support addresses, to an address that bounced recently, or to one
that already had ``loop.auto_replies_per_hour`` automatic mails in the last hour.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from maild.config import LoopConfig
from maild.pipeline.addresses import is_support_address
from maild.store.models import OutboxEntry, Suppression

ROBOT_LOCALPART = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|"
    r"noreply[-_.].*|.*[-_.]noreply|notifications?|daemon|root)(\+.*)?$",
    re.IGNORECASE,
)


def robot_address(address: str, extra: Sequence[str] = ()) -> str | None:
    """Why ``address`` must never get automatic mail, or None."""
    address = address.strip().strip("<>").lower()
    if not address or "@" not in address:
        return "null or invalid sender"
    local = address.partition("@")[0]
    if ROBOT_LOCALPART.match(local):
        return f"robot sender address ({local})"
    for pattern in extra:
        if re.search(pattern, address):
            return f"matches loop.extra_robot_senders {pattern!r}"
    return None


def refusal(
    address: str, *, support: Sequence[str], config: LoopConfig, now: dt.datetime
) -> str | None:
    """Why no automatic mail may go to ``address`` now, or None when it may."""
    why = robot_address(address, config.extra_robot_senders)
    if why:
        return why
    if is_support_address(address, support):
        return "one of our own support addresses"
    if (
        Suppression.select()
        .where((Suppression.email == address.lower()) & (Suppression.until > now))
        .exists()
    ):
        return "suppressed after a bounce"
    recent = (
        OutboxEntry.select()
        .where(
            (OutboxEntry.auto_to == address.lower())
            & (OutboxEntry.created_at > now - dt.timedelta(hours=1))
        )
        .count()
    )
    if recent >= config.auto_replies_per_hour:
        return f"rate limit: {recent} automatic mails in the last hour"
    return None


def suppress(addresses: Sequence[str], *, days: float, now: dt.datetime, reason: str) -> list[str]:
    """No automatic mail to these addresses for ``days`` (inside the caller's transaction)."""
    until = now + dt.timedelta(days=days)
    done = []
    for address in addresses:
        address = address.lower()
        (
            Suppression.insert(email=address, until=until, reason=reason[:500])
            .on_conflict(
                conflict_target=[Suppression.email],
                update={Suppression.until: until, Suppression.reason: reason[:500]},
            )
            .execute()
        )
        done.append(address)
    return done
