"""Loop protection: who may receive an automatic mail from us, and bounce suppression.

No automatic mail goes to a robot (the classifier's verdict, checked by the caller), to a null,
invalid, MAILER-DAEMON, postmaster, no-reply, bounce or list-manager address, to our own support
addresses (and their ``+tag`` forms), to an address that bounced recently, or to one that already
had ``loop.auto_replies_per_hour`` automatic mails in the last hour.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from maild.config import LoopConfig
from maild.notify.compose import valid_address
from maild.pipeline.addresses import is_support_address
from maild.store.models import OutboxEntry, Suppression

# Local parts that robots send from. People rarely use these; a "+tag" after any of them too.
ROBOT_LOCALPART = re.compile(
    r"""(?:
        mailer[-_.]?daemon | mail[-_.]?daemon | postmaster | post[-_.]master | daemon | root
        | no[-_.]?reply.* | .*[-_.]no[-_.]?reply | do[-_.]?not[-_.]?reply.*
        | bounces? | bounces?[-_+=].* | .*[-_.]bounces?
        | notifications? | notify
        | listserv | majordomo | mailman | owner-.* | .*-owner | .*-request
    )(?:\+.*)?""",
    re.IGNORECASE | re.VERBOSE,
)


def robot_address(address: str, extra: Sequence[str] = ()) -> str | None:
    """Why ``address`` must never get automatic mail, or None."""
    address = address.strip().strip("<>").lower()
    if not address or "@" not in address:
        return "null or invalid sender"
    if not valid_address(address):
        return "not a plain address we can safely send to"
    local = address.rpartition("@")[0]
    if ROBOT_LOCALPART.fullmatch(local):
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
    address = address.strip().strip("<>").lower()
    if is_support_address(address, support):
        return "one of our own support addresses"
    if (
        Suppression.select()
        .where((Suppression.email == address) & (Suppression.until > now))
        .exists()
    ):
        return "suppressed after a bounce"
    recent = (
        OutboxEntry.select()
        .where(
            (OutboxEntry.auto_to == address)
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
    for address in dict.fromkeys(a.lower() for a in addresses):
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
