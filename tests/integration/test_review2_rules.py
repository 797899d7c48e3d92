"""Review: rule forwards cannot ping-pong with the address they forward to, and the mail the rules
send is audited under the rule's name (README: "each action the rules take ... actor rule:NAME").

Real SQLite and PostgreSQL (``app``), the real worker.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from maild.app import App
from maild.store.models import Event, OutboxEntry, Ticket
from tests.integration.test_rules_applied import PEOPLE, deliver, events
from tests.mailgen import make_mail

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
