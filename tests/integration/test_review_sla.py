"""Review: lifecycle mail (surveys, pending reminders) to requesters that are robots."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from maild.app import App
from maild.sla import lifecycle
from maild.store.db import write_tx
from maild.store.models import Ticket
from tests.mailgen import make_mail
from tests.slakit import Cli, deliver, events, fresh, outbox, write_config, write_rules

T0 = dt.datetime(2026, 11, 2, 9, 0)
DAY = dt.timedelta(days=1)
H = dt.timedelta(hours=1)
BULK = {"Precedence": "bulk", "List-Id": "<alerts.monitor.test>"}


def robot_ticket(app: App, holder) -> Ticket:
    raw = make_mail(
        sender="Monitor <alerts@monitor.test>",
        subject="Disk full on web1",
        body="Disk / is 98% full.",
        headers=BULK,
    )
    result = deliver(app, holder, raw, T0).result
    return Ticket.get_by_id(int(result.split()[1].split("-")[1]))


def test_no_survey_to_a_ticket_opened_by_bulk_mail(app: App) -> None:
    holder = write_rules(app)
    ticket = robot_ticket(app, holder)
    with write_tx(app.db):
        lifecycle.set_status(
            app, holder.rules, fresh(ticket), "resolved", actor="bob@example.com", at=T0 + H
        )
    assert outbox(ticket, "survey") == []


def test_no_pending_reminder_to_a_ticket_opened_by_bulk_mail(app: App, tmp_path: Path) -> None:
    holder = write_rules(app)
    cli = Cli(app, write_config(app, tmp_path))
    ticket = robot_ticket(app, holder)
    with write_tx(app.db):
        lifecycle.set_status(
            app, holder.rules, fresh(ticket), "pending", actor="bob@example.com", at=T0 + H
        )
    cli.sla_check(T0 + 4 * DAY)
    assert outbox(ticket, "reminder") == []
    assert [e["template"] for e in events(ticket, "auto_reply_suppressed")] == ["pending_reminder"]
