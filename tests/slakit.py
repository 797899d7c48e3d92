"""Helpers for the SLA and lifecycle tests: rules with SLA policies, a worker with the SLA hook,
delivering mail at a chosen time, and running ``ticketd`` commands against a config file."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from maild import spool
from maild.app import App
from maild.cli.main import main
from maild.clock import FixedClock
from maild.routing.reload import RulesHolder
from maild.sla.stage import SlaStage
from maild.store.db import bind
from maild.store.models import Event, OutboxEntry, SpoolEntry, Ticket
from maild.worker import Worker, make_worker
from tests.conftest import base_config

PEOPLE = """\
agents:
  - {email: alice@example.com, name: Alice, teams: [tech]}
  - {email: bob@example.com, name: Bob, teams: [tech]}
teams:
  tech: {assign: round_robin}
"""

ROUTING = """\
rules:
  - name: Tech
    then: {team: tech}
  - name: Outage
    when: {subject: {contains: [outage]}}
    then: {priority: urgent}
  - name: Gold customers
    when: {from_domain: {equals: gold.test}}
    then: {sla: gold}
"""

SLA = """\
business_hours:
  timezone: Europe/Berlin
  week: {mon-fri: "09:00-17:00"}
  holidays: [2026-12-24, 2026-12-25]
sla:
  - name: urgent
    when: {priority: {equals: urgent}}
    first_response: 1h
    resolution: 4h
    business_hours: false
    escalate:
      - {at: 75% first_response, notify: [assignee]}
      - {at: breach first_response, notify: [team, lead@example.com]}
      - {at: breach resolution, notify: [lead@example.com]}
  - name: gold
    first_response: 30m
    resolution: 2h
  - name: standard
    first_response: 4h
    resolution: 2d
    escalate:
      - {at: 75% first_response, notify: [assignee]}
      - {at: breach first_response, notify: [team], then: {priority: urgent}}
"""


def write_rules(app: App, sla: str = SLA, routing: str = ROUTING) -> RulesHolder:
    folder = app.config.rules_dir
    (folder / "10-people.yaml").write_text(PEOPLE)
    (folder / "20-routing.yaml").write_text(routing)
    (folder / "30-sla.yaml").write_text(sla)
    return RulesHolder.open(folder, app.config.templates_dir)


def worker(app: App, holder: RulesHolder) -> Worker:
    """The installation's worker, with the SLA stage right after the rules stage if not wired yet."""
    found = make_worker(app, holder)
    if not any(isinstance(stage, SlaStage) for stage in found.stages):
        found.stages = (found.stages[0], SlaStage(app, holder), *found.stages[1:])
    return found


def deliver(app: App, holder: RulesHolder, raw: bytes, at: dt.datetime) -> SpoolEntry:
    """Spool ``raw`` and process it with the clock at ``at``."""
    app.clock = FixedClock(at)
    entry_id = spool.enqueue(app.db, raw, source="pipe")
    worker(app, holder).run_once(ids=[entry_id])
    entry = SpoolEntry.get_by_id(entry_id)
    assert entry.status == "done", entry.last_error
    return entry


def write_config(app: App, tmp_path: Path, **overrides: Any) -> Path:
    """A config file for ``ticketd`` commands on the same database and folders as ``app``."""
    data = base_config(tmp_path, app.config.database.url, **overrides)
    path = tmp_path / "config.yaml"
    with path.open("w") as fh:
        YAML().dump(json.loads(json.dumps(data)), fh)
    return path


@dataclass
class Cli:
    app: App
    config: Path

    def __call__(self, *args: str) -> tuple[int, str]:
        """``ticketd ARGS --config ...`` in this process; (status, stdout + stderr)."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = main([*args, "--config", str(self.config)])
        bind(self.app.db)  # the command bound the models to its own connection
        self.app.db.connect(reuse_if_open=True)
        return status, out.getvalue()

    def sla_check(self, at: dt.datetime) -> list[str]:
        status, out = self("sla", "check", "--at", at.isoformat())
        assert status == 0, out
        return [line for line in out.splitlines() if not line.startswith("sla check at")]

    def show(self, ref: str) -> dict[str, Any]:
        status, out = self("tickets", "show", ref, "--json")
        assert status == 0, out
        return json.loads(out)


def events(ticket: Ticket | int, action: str) -> list[dict[str, Any]]:
    rows = Event.select().where((Event.ticket == ticket) & (Event.action == action))
    return [{"actor": e.actor, "at": e.at, **json.loads(e.detail)} for e in rows.order_by(Event.id)]


def outbox(ticket: Ticket | int, kind: str | None = None) -> list[OutboxEntry]:
    query = OutboxEntry.select().where(OutboxEntry.ticket == ticket)
    if kind is not None:
        query = query.where(OutboxEntry.kind == kind)
    return list(query.order_by(OutboxEntry.id))


def parsed(entry: OutboxEntry) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(bytes(entry.raw))
    assert isinstance(message, EmailMessage)
    return message


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.get_by_id(ticket.id)
