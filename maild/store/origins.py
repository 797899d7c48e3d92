"""Which HTTP channel a ticket came in through, so that its answers go back there.

Recorded when the ticket is created (``TicketOrigin``, ``""`` for mail and the web form), from the spool row's API intake row and,
for Slack, the first Message-ID ``slack.<name>.<channel id>.<ts>@domain`` (maild.web.slack). A
merge moves messages between tickets but never an origin: answers on a mail ticket that took in an
older chat ticket still go by mail. Tickets from before the table existed are read from their
first message, as then.
"""

from __future__ import annotations

from dataclasses import dataclass

from maild.store.models import ApiIntake, Message, SpoolEntry, Ticket, TicketOrigin

HTTP_SOURCES = frozenset({"api", "slack"})


@dataclass(frozen=True)
class Origin:
    """Where a ticket came in, when it was an HTTP channel."""

    channel: str
    slack_channel: str | None = None  # Slack's channel id and the thread's ts, for Slack
    thread_ts: str | None = None


def of_message(message: Message) -> Origin | None:
    """The HTTP channel ``message`` came through (API intake rows outlive the spool), or None."""
    if message.spool_entry is None:
        return None
    intake = ApiIntake.get_or_none(ApiIntake.spool_id == message.spool_entry)
    if intake is None:
        return None
    local = message.message_id.partition("@")[0]
    parts = local.split(".", 3)
    if parts[0] == "slack" and len(parts) == 4 and parts[1] == intake.channel:
        return Origin(intake.channel, parts[2], parts[3].replace("-", "."))
    return Origin(intake.channel)


def record(ticket: Ticket, entry: SpoolEntry, first: Message) -> None:
    """Remember where a ticket just created by ``first`` came in (``""``: mail or a form)."""
    found = of_message(first) if entry.source in HTTP_SOURCES else None
    TicketOrigin.create(
        ticket=ticket,
        channel=found.channel if found else "",
        slack_channel=found.slack_channel if found else None,
        thread_ts=found.thread_ts if found else None,
    )


def origin(ticket: Ticket) -> Origin | None:
    """The HTTP channel of ``ticket``, or None (mail, the web form)."""
    row = TicketOrigin.get_or_none(TicketOrigin.ticket == ticket.id)
    if row is not None:
        return Origin(row.channel, row.slack_channel, row.thread_ts) if row.channel else None
    # A ticket made before origins were recorded: its first message tells, as it did then.
    first = ticket.messages.order_by(Message.created_at, Message.id).first()
    return of_message(first) if first is not None else None
