"""Sentiment: every inbound customer message is scored (VADER) and stored; rules match
``sentiment: {below: -0.5}``; ``tickets show --json`` carries the score; the report shows the
share of negative first messages; a version-2 database gains the column on start."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from maild.app import App
from maild.reports.period import Period
from maild.reports.query import build_report
from maild.store import migrations
from maild.store.models import Message, SchemaVersion, Ticket, TicketTag
from tests.conftest import base_config
from tests.mailgen import make_mail
from tests.servers.deskmail import deliver

RULES = """\
rules:
  - name: Angry customers go up
    when: {sentiment: {below: -0.5}}
    then: {priority: high, tags: [upset]}
"""
ANGRY = "This is terrible. Your awful product broke again and I am furious, I hate this."
HAPPY = "Thank you so much, the new version is great and I love it!"


@pytest.fixture
def app(app_factory: Callable[..., App], any_db_url: str) -> App:
    made = app_factory(any_db_url)
    (made.config.rules_dir / "20-routing.yaml").write_text(RULES)
    return made


def arrive(app: App, body: str, subject: str = "") -> Ticket:
    subject = subject or f"about my order {uuid.uuid4().hex[:6]}"
    deliver(app, make_mail(subject=subject, body=body))
    return Ticket.get(Ticket.subject == subject)


def test_an_angry_first_message_is_scored_and_raises_the_priority(app: App) -> None:
    angry = arrive(app, ANGRY)
    happy = arrive(app, HAPPY)
    angry_score = Message.get(Message.ticket == angry).sentiment
    happy_score = Message.get(Message.ticket == happy).sentiment
    assert angry_score is not None and angry_score < -0.5
    assert happy_score is not None and happy_score > 0.5
    assert (angry.priority, happy.priority) == ("high", "normal")
    assert [t.tag for t in TicketTag.select().where(TicketTag.ticket == angry)] == ["upset"]


def test_the_customers_reply_is_scored_without_the_quoted_history(app: App) -> None:
    ticket = arrive(app, HAPPY)
    first = Message.get(Message.ticket == ticket)
    reply = make_mail(
        subject=f"Re: [ACME-{ticket.id}] {ticket.subject}",
        body=f"{ANGRY}\n\nOn Mon, Nov 2, 2026 Support wrote:\n> {HAPPY}\n> {HAPPY}\n",
        in_reply_to=first.message_id,
    )
    deliver(app, reply)
    second = Message.select().where(Message.ticket == ticket).order_by(Message.id.desc()).get()
    assert second.sentiment is not None and second.sentiment < -0.5


def ticketd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maild.cli.main", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_tickets_show_json_carries_the_score_and_the_report_the_negative_share(
    app: App, any_db_url: str, tmp_path: Path
) -> None:
    angry = arrive(app, ANGRY)
    arrive(app, HAPPY)
    arrive(app, "Hello, where is my parcel? It was sent on Monday.")
    config = tmp_path / "config.yaml"
    with config.open("w") as fh:
        YAML().dump(base_config(tmp_path, any_db_url), fh)
    shown = ticketd(config, "tickets", "show", f"ACME-{angry.id}", "--json")
    assert shown.returncode == 0, shown.stderr
    inbound, ack = json.loads(shown.stdout)["messages"]
    assert inbound["sentiment"] < -0.5
    assert (ack["kind"], ack["sentiment"]) == ("auto", None)

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    report = build_report(app.db, Period(now - dt.timedelta(days=1), now + dt.timedelta(hours=1)))
    assert (report.sentiment.scored, report.sentiment.negative) == (3, 1)
    out = ticketd(config, "report", "--format", "json", "--since", "1d")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["sentiment"] == {
        "first_messages_scored": 3,
        "negative": 1,
        "share_negative": 0.3333,
    }
    csv = ticketd(config, "report", "--format", "csv", "--since", "1d")
    assert "sentiment,,negative,1\n" in csv.stdout
    assert "deflection,,suggested,0\n" in csv.stdout
    table = ticketd(config, "report", "--since", "1d")
    assert "Negative first messages (sentiment below -0.5): 33% (1 of 3 scored)" in table.stdout
    html = ticketd(config, "report", "--format", "html", "--since", "1d")
    assert "<h2>Self-service</h2>" in html.stdout and "33% (1 of 3 scored)" in html.stdout


def test_a_version_2_database_gains_the_sentiment_column(app: App) -> None:
    arrive(app, HAPPY)
    app.db.execute_sql("ALTER TABLE message DROP COLUMN sentiment")
    SchemaVersion.update(version=2).execute()
    assert migrations.upgrade(app.db) == migrations.CURRENT_VERSION
    assert "sentiment" in {c.name for c in app.db.get_columns("message")}
    assert Message.get().sentiment is None  # stored before: no score
    assert arrive(app, ANGRY).priority == "high"
