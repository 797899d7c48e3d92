"""Choosing the SLA policy and storing due times, with pauses while pending, on SQLite and PostgreSQL.

The worker (with the rules hook and the SLA hook) creates the tickets; status and priority change
through ``maild.sla.lifecycle``. Berlin times in the comments; the database stores naive UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from maild.app import App
from maild.sla import lifecycle
from maild.store import migrations
from maild.store.db import write_tx
from maild.store.models import SchemaVersion, SlaFiring, SlaPause, Ticket
from tests.mailgen import make_mail
from tests.slakit import ROUTING, SLA, deliver, events, fresh, write_rules

MONDAY_10 = dt.datetime(2026, 11, 2, 9, 0)  # Monday 10:00 in Berlin
H = dt.timedelta(hours=1)


def ticket_of(entry_result: str) -> Ticket:
    ref = entry_result.split()[1]
    return Ticket.get_by_id(int(ref.split("-")[1]))


def new_ticket(app: App, holder, at: dt.datetime = MONDAY_10, **mail: str) -> Ticket:
    return ticket_of(deliver(app, holder, make_mail(**mail), at).result)


def test_policy_by_priority_by_rule_and_by_default(app: App) -> None:
    holder = write_rules(app)
    plain = new_ticket(app, holder)
    outage = new_ticket(app, holder, subject="Outage of the shop")
    gold = new_ticket(app, holder, sender="Gil <gil@gold.test>")

    # standard counts business hours: 4 h from Monday 10:00 is 14:00; 2d (48 business hours)
    # runs to Tuesday of the next week, 10:00.
    assert (plain.sla_policy, plain.first_response_due, plain.resolution_due) == (
        "standard",
        dt.datetime(2026, 11, 2, 13, 0),
        dt.datetime(2026, 11, 10, 9, 0),
    )
    # urgent counts around the clock (business_hours: false).
    assert (outage.priority, outage.sla_policy) == ("urgent", "urgent")
    assert (outage.first_response_due, outage.resolution_due) == (MONDAY_10 + H, MONDAY_10 + 4 * H)
    # gold has no `when` and a rule names it: never chosen automatically, kept when named.
    assert gold.sla_policy == "gold"
    assert events(gold, "sla_policy")[-1]["actor"] == "rule:Gold customers"
    assert events(plain, "sla_policy")[-1]["actor"] == "sla"
    assert events(plain, "sla_due")[-1]["first_response_due"] == "2026-11-02T13:00:00+00:00"

    # A priority change chooses again: standard -> urgent. A named policy stays.
    later = MONDAY_10 + 10 * dt.timedelta(minutes=1)
    with write_tx(app.db):
        assert lifecycle.set_priority(
            app, holder.rules, plain, "urgent", actor="alice@example.com", at=later
        )
        lifecycle.set_priority(
            app, holder.rules, gold, "urgent", actor="alice@example.com", at=later
        )
    plain, gold = fresh(plain), fresh(gold)
    assert (plain.sla_policy, plain.first_response_due) == ("urgent", MONDAY_10 + H)
    assert (gold.sla_policy, gold.first_response_due) == (
        "gold",
        MONDAY_10 + 30 * dt.timedelta(minutes=1),
    )
    # Back to normal: the automatic choice follows again.
    with write_tx(app.db):
        lifecycle.set_priority(
            app, holder.rules, plain, "normal", actor="alice@example.com", at=later
        )
    assert fresh(plain).sla_policy == "standard"


def test_pending_pauses_the_clocks_and_resuming_adds_the_paused_time(app: App) -> None:
    holder = write_rules(app)
    ticket = new_ticket(app, holder)
    assert ticket.first_response_due == dt.datetime(2026, 11, 2, 13, 0)  # Monday 14:00
    with write_tx(app.db):
        lifecycle.set_status(
            app, holder.rules, ticket, "pending", actor="alice@example.com", at=MONDAY_10 + H
        )
    ticket = fresh(ticket)
    assert ticket.first_response_due == dt.datetime(2026, 11, 2, 13, 0)  # unchanged so far
    assert [(p.status, p.started_at, p.ended_at) for p in SlaPause.select()] == [
        ("pending", MONDAY_10 + H, None)
    ]

    # The customer answers on Tuesday 10:00: 11:00-17:00 Monday and 09:00-10:00 Tuesday (7 business
    # hours) were paused, so first response is due Tuesday 13:00 and resolution 7 hours later.
    reply = make_mail(subject=f"Re: [ACME-{ticket.id}] Printer on fire", body="Here is the log.")
    deliver(app, holder, reply, dt.datetime(2026, 11, 3, 9, 0))
    ticket = fresh(ticket)
    assert ticket.status == "open"
    assert ticket.first_response_due == dt.datetime(2026, 11, 3, 12, 0)
    assert ticket.resolution_due == dt.datetime(2026, 11, 10, 16, 0)
    pause = SlaPause.get()
    assert (pause.started_at, pause.ended_at) == (MONDAY_10 + H, dt.datetime(2026, 11, 3, 9, 0))
    assert events(ticket, "status")[-1]["reason"] == "customer replied"


def test_resolution_freezes_due_times_and_a_reply_reopens(app: App) -> None:
    holder = write_rules(app)
    ticket = new_ticket(app, holder, subject="Outage of the shop")
    resolved_at = MONDAY_10 + 2 * H
    with write_tx(app.db):
        lifecycle.record_first_response(ticket, actor="alice@example.com", at=MONDAY_10 + H / 2)
        lifecycle.set_status(
            app, holder.rules, ticket, "resolved", actor="alice@example.com", at=resolved_at
        )
    ticket = fresh(ticket)
    assert (ticket.resolved_at, ticket.resolution_due) == (resolved_at, MONDAY_10 + 4 * H)
    assert ticket.first_response_at == MONDAY_10 + H / 2

    # An ordinary reply (our last mail was the survey, but this is no rating) re-opens; the
    # resolved stretch is paused time, so resolution is due 3 hours later than before.
    reply = make_mail(
        subject=f"Re: [ACME-{ticket.id}] Outage", body="Good morning, it is down again."
    )
    deliver(app, holder, reply, resolved_at + 3 * H)
    ticket = fresh(ticket)
    assert (ticket.status, ticket.resolved_at) == ("open", None)
    assert ticket.resolution_due == MONDAY_10 + 7 * H
    assert ticket.first_response_due == MONDAY_10 + H  # met before: frozen


def test_a_status_set_by_a_rule_stops_the_clocks_too(app: App) -> None:
    routing = (
        ROUTING
        + """\
  - name: Notices
    when: {subject: {starts_with: "FYI"}}
    then: {status: pending}
"""
    )
    holder = write_rules(app, SLA, routing)
    ticket = new_ticket(app, holder, subject="FYI: new address")
    assert ticket.status == "pending"
    assert SlaPause.get().status == "pending"


def test_upgrade_to_version_2_stops_the_clocks_of_waiting_tickets(
    app_factory: Callable[..., App], any_db_url: str
) -> None:
    app = app_factory(any_db_url)
    holder = write_rules(app)
    waiting = new_ticket(app, holder)
    running = new_ticket(app, holder)
    with write_tx(app.db):
        lifecycle.set_status(
            app, holder.rules, waiting, "pending", actor="bob@example.com", at=MONDAY_10 + H
        )
    # Back to a version-1 database: no SLA tables.
    app.db.drop_tables([SlaFiring, SlaPause])
    SchemaVersion.update(version=1).execute()

    assert migrations.upgrade(app.db) == migrations.CURRENT_VERSION
    assert [(p.ticket_id, p.status, p.started_at) for p in SlaPause.select()] == [
        (waiting.id, "pending", MONDAY_10 + H)
    ]
    assert running.status == "new"
    assert migrations.upgrade(app.db) == migrations.CURRENT_VERSION  # idempotent
    assert SlaPause.select().count() == 1
