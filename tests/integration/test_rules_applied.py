"""The rules in the worker: decisions applied to tickets, audited, and the mail they ask for queued.

Real SQLite and PostgreSQL (``any_db_url``), the real worker and outbox; the daemon test edits the
rules folder of a running ``ticketd run`` while mail flows in over SMTP.
"""

from __future__ import annotations

import json
import signal
import smtplib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from maild import spool
from maild.app import App
from maild.pipeline.addresses import Signer
from maild.routing.reload import RulesHolder
from maild.store.models import Event, OutboxEntry, SpoolEntry, Ticket
from maild.worker import make_worker
from tests.conftest import base_config
from tests.mailgen import make_mail
from tests.servers.daemon import DaemonProcess, free_port

PEOPLE = """\
agents:
  - {email: alice@example.com, name: Alice, teams: [billing]}
  - {email: bob@example.com, name: Bob, teams: [billing, tech]}
teams:
  billing: {assign: round_robin}
  tech: {assign: least_open}
"""

ROUTING = """\
rules:
  - name: Spam
    when: {header: {X-Spam-Flag: {equals: "YES"}}}
    then: {spam: true, tags: [spam]}
    stop: true
  - name: Acknowledge
    then: {reply: ack}
  - name: Billing
    when: {subject: {contains: [invoice, refund]}}
    then:
      team: billing
      priority: high
      tags: [billing]
      notify: {template: notify_new, to: [team]}
  - name: Outage
    when: {subject: {contains: [outage]}}
    then: {team: tech, priority: urgent, forward: oncall@example.com}
  - name: Reply to assignee
    on: customer_reply
    when: {status: {equals: pending}}
    then: {notify: {template: notify_reply, to: [assignee]}, tags: {remove: [waiting]}}
"""


def write_rules(app: App, routing: str = ROUTING) -> None:
    rules = app.config.rules_dir
    (rules / "10-people.yaml").write_text(PEOPLE)
    (rules / "20-routing.yaml").write_text(routing)


def deliver(app: App, raw: bytes) -> SpoolEntry:
    entry_id = spool.enqueue(app.db, raw, source="pipe")
    make_worker(app).run_once(ids=[entry_id])
    return SpoolEntry.get_by_id(entry_id)


def queued(ticket: Ticket) -> list[tuple[str, list[str]]]:
    rows = OutboxEntry.select().where(OutboxEntry.ticket == ticket).order_by(OutboxEntry.id)
    return [(r.kind, json.loads(r.rcpt_tos)) for r in rows]


def events(ticket: Ticket, action: str) -> list[Event]:
    return list(
        Event.select().where((Event.ticket == ticket) & (Event.action == action)).order_by(Event.id)
    )


@pytest.fixture
def ruled(app: App) -> App:
    write_rules(app)
    return app


def test_new_ticket_routed_assigned_tagged_and_mailed(ruled: App) -> None:
    entry = deliver(ruled, make_mail(subject="Refund for invoice 42"))
    assert entry.status == "done", entry.last_error
    ticket = Ticket.get()
    assert (ticket.team, ticket.priority, ticket.assignee) == (
        "billing",
        "high",
        "alice@example.com",
    )
    assert [t.tag for t in ticket.tag_rows] == ["billing"]
    # The rule's ack replaces the built-in acknowledgement: exactly one mail to the customer.
    assert queued(ticket) == [
        ("auto", ["carol@customer.test"]),
        # One mail per team member, each with the member's own signed Reply-To.
        ("notify", ["alice@example.com"]),
        ("notify", ["bob@example.com"]),
    ]
    team = events(ticket, "team")[0]
    assert team.actor == "rule:Billing"
    assert json.loads(team.detail) == {"old": None, "new": "billing"}
    assert json.loads(events(ticket, "assignee")[0].detail)["strategy"] == "round_robin"
    assert json.loads(events(ticket, "rules")[0].detail)["matched"] == ["Acknowledge", "Billing"]
    # The notification carries the customer's words and the ticket's signed Reply-To.
    note = OutboxEntry.select().where(OutboxEntry.kind == "notify").first()
    raw = bytes(note.raw).decode()
    assert "my printer is on fire" in raw
    signer = Signer(ruled.config.prefix, ruled.secret)
    own = signer.agent_reply_address("support@example.com", ticket.id, "alice@example.com")
    assert f"Reply-To: Test Support <{own}>" in raw
    # No person wrote it: vacation responders stay quiet; no rate limit counts it, though.
    assert "Auto-Submitted: auto-generated" in raw and note.auto_to is None


def test_round_robin_rotates_across_workers(ruled: App) -> None:
    for n in range(4):
        deliver(ruled, make_mail(subject=f"invoice {n}"))
    assignees = [t.assignee for t in Ticket.select().order_by(Ticket.id)]
    assert assignees == ["alice@example.com", "bob@example.com"] * 2


def test_spam_is_kept_closed_and_silent(ruled: App) -> None:
    deliver(ruled, make_mail(subject="Cheap invoice", headers={"X-Spam-Flag": "YES"}))
    ticket = Ticket.get()
    assert ticket.spam and ticket.status == "closed"
    assert ticket.team is None  # stop: true, nothing after the spam rule ran
    assert queued(ticket) == []
    assert events(ticket, "status")[0].actor == "rule:Spam"


def test_forward_and_urgent(ruled: App) -> None:
    deliver(ruled, make_mail(subject="Total outage in region 3"))
    ticket = Ticket.get()
    assert (ticket.team, ticket.priority) == ("tech", "urgent")
    assert ("forward", ["oncall@example.com"]) in queued(ticket)


def test_reply_rules_see_the_ticket_before_the_reply(ruled: App) -> None:
    first = make_mail(subject="invoice wrong", message_id="<q1@customer.test>")
    deliver(ruled, first)
    ticket = Ticket.get()
    ticket.status = "pending"
    ticket.save()
    Ticket.get_by_id(ticket.id)
    before = len(queued(ticket))
    deliver(ruled, make_mail(subject=f"Re: [ACME-{ticket.id}] invoice wrong", body="Any news?"))
    ticket = Ticket.get_by_id(ticket.id)
    assert ticket.status == "open"  # the customer's reply re-opened it
    assert queued(ticket)[before:] == [("notify", ["alice@example.com"])]
    # A second reply finds the ticket open: the rule does not match again. The assignee still
    # hears of it once, from the built-in customer-reply notification (maild.agents.notify).
    matched = len(events(ticket, "rules"))
    deliver(ruled, make_mail(subject=f"Re: [ACME-{ticket.id}] invoice wrong", body="Hello?"))
    assert len(events(ticket, "rules")) == matched
    assert queued(ticket)[before + 1 :] == [("notify", ["alice@example.com"])]


def test_broken_rules_at_start_are_refused_with_file_and_line(sqlite_app: App) -> None:
    write_rules(sqlite_app, ROUTING.replace("priority: high", "priority: hgih"))
    with pytest.raises(Exception) as info:
        make_worker(sqlite_app)
    assert "20-routing.yaml:" in str(info.value) and "hgih" in str(info.value)


def test_running_rules_survive_a_broken_edit(sqlite_app: App) -> None:
    write_rules(sqlite_app)
    holder = RulesHolder.open(sqlite_app.config.rules_dir, sqlite_app.config.templates_dir)
    worker = make_worker(sqlite_app, holder)
    write_rules(sqlite_app, ROUTING.replace("team: billing", "team: bliling"))
    assert holder.maybe_reload() is False
    assert holder.last_error is not None and "bliling" in str(holder.last_error)
    entry_id = spool.enqueue(sqlite_app.db, make_mail(subject="refund"), source="pipe")
    worker.run_once(ids=[entry_id])
    assert Ticket.get().team == "billing"  # the old rules still run


# -- the daemon: edits picked up while mail flows ------------------------------------------------


@pytest.fixture
def daemon(tmp_path: Path, start_daemon) -> Callable[[], DaemonProcess]:
    def start() -> DaemonProcess:
        port = free_port()
        data = base_config(
            tmp_path,
            f"sqlite:///{tmp_path / 'var' / 'ticketd.db'}",
            smtp_in={"host": "127.0.0.1", "port": port},
        )
        config = tmp_path / "config.yaml"
        config.write_text(json.dumps(data))  # JSON is YAML
        rules = tmp_path / "rules"
        (rules / "10-people.yaml").write_text(PEOPLE)
        (rules / "20-routing.yaml").write_text(ROUTING)
        return start_daemon(config, port)

    return start


def send(port: int, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("carol@customer.test", ["support@example.com"], make_mail(subject=subject))


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def worker_loads(proc: DaemonProcess) -> int:
    """How often the worker process logged a load of the rules."""
    lines = proc.output().splitlines()
    return sum("[worker]" in line and "rules: loaded" in line for line in lines)


def test_daemon_reloads_edits_and_keeps_old_rules_on_a_broken_one(
    daemon: Callable[[], DaemonProcess], tmp_path: Path
) -> None:
    import sqlite3

    proc = daemon()
    db = tmp_path / "var" / "ticketd.db"

    def team_of(subject: str) -> object:
        with sqlite3.connect(db) as conn:
            row = conn.execute(
                "SELECT team, priority FROM ticket WHERE subject = ?", (subject,)
            ).fetchone()
        return row and (row[0] or "-", row[1])

    # Mail keeps flowing from another client while the rules are edited under the daemon.
    stream = [f"stream {n}" for n in range(40)]
    flowing = threading.Thread(target=lambda: [send(proc.port, s) for s in stream])
    flowing.start()
    send(proc.port, "invoice one")
    assert wait_for(lambda: team_of("invoice one")) == ("billing", "high")
    routing = tmp_path / "rules" / "20-routing.yaml"
    # A broken edit is refused, logged with file:line, and the old rules keep running.
    routing.write_text(ROUTING.replace("priority: high", "priority: hgih"))
    wait_for(lambda: "20-routing.yaml:" in proc.output() and "hgih" in proc.output())
    send(proc.port, "invoice two")
    assert wait_for(lambda: team_of("invoice two")) == ("billing", "high")
    # A good edit is in force within seconds, without a restart.
    routing.write_text(ROUTING.replace("priority: high", "priority: low"))
    wait_for(lambda: worker_loads(proc) >= 2)  # the worker process is the one that routes mail
    send(proc.port, "invoice three")
    assert wait_for(lambda: team_of("invoice three")) == ("billing", "low")
    # SIGHUP reloads on demand (and logs it) even when nothing changed.
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: worker_loads(proc) >= 3)
    # Nothing lost or doubled across the reloads: every message is on exactly one ticket.
    flowing.join()
    wait_for(lambda: all(team_of(s) for s in stream))
    with sqlite3.connect(db) as conn:
        subjects = [r[0] for r in conn.execute("SELECT subject FROM ticket")]
    assert sorted(subjects) == sorted([*stream, "invoice one", "invoice two", "invoice three"])


# -- rule forwards cannot ping-pong with the address they forward to, and the mail the rules
# send is audited under the rule's name (README: "each action the rules take ... actor rule:NAME").
#
# Real SQLite and PostgreSQL (``app``), the real worker.


FORWARD_REPLIES = """\
rules:
  - name: Acknowledge
    then: {reply: ack}
  - name: Escalate to vendor
    on: [new_ticket, customer_reply]
    then: {forward: tickets@vendor.test}
  - name: Tell billing
    then: {notify: {template: notify_new, to: [team, watcher@partner.test]}, team: billing}
"""

OWN_ADDRESS = """\
rules:
  - name: Copy to help
    then: {forward: [help@example.org, archive@example.com]}
"""


def write(app: App, routing: str) -> None:
    (app.config.rules_dir / "10-people.yaml").write_text(PEOPLE)
    (app.config.rules_dir / "20-routing.yaml").write_text(routing)


def forwards() -> list[list[str]]:
    rows = OutboxEntry.select().where(OutboxEntry.kind == "forward").order_by(OutboxEntry.id)
    return [json.loads(r.rcpt_tos) for r in rows]


def test_a_naive_responder_at_the_forward_address_does_not_loop(
    app_factory: Callable[..., App], any_db_url: str
) -> None:
    """The vendor's help desk answers every mail it gets with an acknowledgement that carries no
    robot headers and threads by our subject tag. With ``threading.non_participants: append``
    each one is a customer reply on our ticket (by default it is a note no rule sees); a rule
    that forwards customer replies must not send the vendor's own mail back to the vendor."""
    app = app_factory(any_db_url, threading={"non_participants": "append"})
    write(app, FORWARD_REPLIES)
    deliver(app, make_mail(subject="Card payment failed"))
    ticket = Ticket.get()
    assert forwards() == [["tickets@vendor.test"]]
    for n in range(5):
        entry = deliver(
            app,
            make_mail(
                subject=f"Re: [ACME-{ticket.id}] Card payment failed (vendor case {n})",
                sender="Vendor Desk <tickets@vendor.test>",
                body="We received your request.\n",
            ),
        )
        assert entry.status == "done", entry.last_error
    assert forwards() == [["tickets@vendor.test"]]  # one forward, no ping-pong
    skipped = events(ticket, "forward_skipped")
    assert len(skipped) == 5
    assert skipped[0].actor == "rule:Escalate to vendor"
    assert json.loads(skipped[0].detail)["to"] == "tickets@vendor.test"
    # The customer's own replies are still forwarded.
    deliver(app, make_mail(subject=f"Re: [ACME-{ticket.id}] Card payment failed", body="Any news?"))
    assert forwards() == [["tickets@vendor.test"]] * 2


def test_no_forward_to_our_own_support_addresses(app: App) -> None:
    write(app, OWN_ADDRESS)
    deliver(app, make_mail(subject="Hello"))
    ticket = Ticket.get()
    assert forwards() == [["archive@example.com"]]
    (skipped,) = events(ticket, "forward_skipped")
    assert skipped.actor == "rule:Copy to help"
    assert json.loads(skipped.detail)["to"] == "help@example.org"


def test_rule_mail_is_audited_under_the_rule_name(app: App) -> None:
    write(app, FORWARD_REPLIES)
    deliver(app, make_mail(subject="Card payment failed"))
    ticket = Ticket.get()
    queued = list(
        Event.select()
        .where((Event.ticket == ticket) & (Event.action == "mail_queued"))
        .order_by(Event.id)
    )
    by_kind = {}
    for event in queued:
        detail = json.loads(event.detail)
        by_kind.setdefault(detail["kind"], set()).add(event.actor)
    assert by_kind["auto"] == {"rule:Acknowledge"}
    assert by_kind["forward"] == {"rule:Escalate to vendor"}
    assert by_kind["notify"] >= {"rule:Tell billing"}
    forwarded = [json.loads(e.detail) for e in queued if e.actor == "rule:Escalate to vendor"]
    assert [d["to"] for d in forwarded] == [["tickets@vendor.test"]]


def test_a_loop_through_a_third_address_stops_at_the_hourly_cap(
    app_factory: Callable[..., App], any_db_url: str
) -> None:
    """The vendor answers from noreply-desk@ (not the forward address, no robot headers): each
    answer is forwarded once (with ``threading.non_participants: append``), but a ticket
    forwards at most loop.auto_replies_per_hour an hour."""
    app = app_factory(any_db_url, threading={"non_participants": "append"})
    write(app, FORWARD_REPLIES)
    deliver(app, make_mail(subject="Card payment failed"))
    ticket = Ticket.get()
    for n in range(15):
        deliver(
            app,
            make_mail(
                subject=f"Re: [ACME-{ticket.id}] Card payment failed ({n})",
                sender="Vendor <desk-answers@vendor.test>",
                body="We received your request.\n",
            ),
        )
    assert len(forwards()) == 10  # the default cap
    reasons = {json.loads(e.detail)["reason"] for e in events(ticket, "forward_skipped")}
    assert reasons == {"10 forwards of this ticket in the last hour (loop.auto_replies_per_hour)"}
