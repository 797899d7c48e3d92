"""Rules on the MTA's spam verdict, through the worker: spam_flag, spam_score, spf/dkim/dmarc;
a mail the MTA marked as spam never gets an acknowledgement; forged headers below count for
nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from maild.app import App
from maild.store.models import Ticket, TicketTag
from tests.mailgen import make_mail
from tests.ruleskit import ruleset
from tests.servers.deskmail import deliver, events, outbox

MX = "mx.example.com"
RULES = """\
rules:
  - name: Spammy
    when: {spam_score: {above: 5}}
    then: {tags: [spammy]}
  - name: Forged sender
    when: {any: [{dkim: {equals: fail}}, {dmarc: {equals: fail}}]}
    then: {tags: [unauthenticated]}
  - name: Flagged
    when: {spam_flag: {equals: "yes"}}
    then: {tags: [flagged]}
"""
RECEIVED = "Received: from mail.customer.test by mx.example.com; Mon, 2 Nov 2026 09:30:00 +0000\n"


@pytest.fixture
def app(app_factory: Callable[..., App], any_db_url: str) -> App:
    made = app_factory(any_db_url, agents={"authserv_id": MX})
    (made.config.rules_dir / "20-routing.yaml").write_text(RULES)
    return made


def arrive(app: App, top: str = "", below: str = "") -> Ticket:
    """A mail with ``top`` headers above our MTA's Received header and ``below`` under it."""
    subject = f"hello {uuid.uuid4().hex[:6]}"
    raw = make_mail(subject=subject).decode()
    deliver(app, (top + RECEIVED + below + raw).encode())
    return Ticket.get(Ticket.subject == subject)


def tags(ticket: Ticket) -> set[str]:
    return {row.tag for row in TicketTag.select().where(TicketTag.ticket == ticket)}


def test_a_spam_marked_mail_is_tagged_by_the_rules_and_gets_no_acknowledgement(app: App) -> None:
    ticket = arrive(app, "X-Spam-Flag: YES\nX-Spam-Status: Yes, score=9.1 required=5.0\n")
    assert tags(ticket) == {"spammy", "flagged"}
    assert outbox(ticket) == []
    (suppressed,) = events(ticket, "auto_reply_suppressed")
    assert suppressed["reason"] == "our MTA marked it as spam (score 9.1)"


def test_a_clean_mail_gets_its_acknowledgement(app: App) -> None:
    ticket = arrive(app, "X-Spam-Flag: NO\nX-Spam-Status: No, score=0.2 required=5.0\n")
    assert tags(ticket) == set()
    assert [kind for kind, _r, _m in outbox(ticket)] == ["auto"]


def test_dkim_or_dmarc_failing_for_the_senders_domain_matches(app: App) -> None:
    ticket = arrive(
        app,
        f"Authentication-Results: {MX}; dkim=fail header.d=customer.test;"
        " dmarc=pass header.from=customer.test\n",
    )
    assert tags(ticket) == {"unauthenticated"}


def test_spam_headers_forged_below_the_mtas_own_count_for_nothing(app: App) -> None:
    ticket = arrive(
        app,
        "X-Spam-Flag: NO\n",
        "X-Spam-Flag: YES\nX-Spam-Score: 50\n"
        f"Authentication-Results: {MX}; dkim=fail header.d=customer.test\n",
    )
    assert tags(ticket) == set()
    assert [kind for kind, _r, _m in outbox(ticket)] == ["auto"]


def test_only_the_topmost_authentication_results_of_ours_counts(app: App) -> None:
    ticket = arrive(
        app,
        f"Authentication-Results: {MX}; dkim=pass header.d=customer.test\n"
        f"Authentication-Results: {MX}; dkim=fail header.d=customer.test\n",
    )
    assert tags(ticket) == set()


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("{spam_score: {above: high}}", "spam_score.above: expected a number, not 'high'"),
        ("{spam_score: {over: 5}}", "unknown operator 'over'"),
        ("{spam_score: {exists: 1}}", "spam_score.exists: expected true or false, not 1"),
        ("{spam_flag: {matchs: yes}}", "unknown operator 'matchs'"),
    ],
)
def test_bad_spam_conditions_are_reported_with_file_and_line(
    tmp_path: Path, when: str, message: str
) -> None:
    from maild.routing.loader import RulesError

    with pytest.raises(RulesError) as info:
        ruleset(tmp_path, f"rules:\n  - {{name: R, when: {when}, then: {{tags: [x]}}}}\n")
    (error,) = info.value.errors
    assert error.startswith(f"{tmp_path / 'rules' / '20-rules.yaml'}:2: ")
    assert message in error
