"""Assignment: round robin (fair, remembered across restarts, safe with concurrent writers) and
least open, on a real SQLite file and on PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from maild.app import App
from maild.routing.assign import assign_by_team, resolve_assignee
from maild.routing.engine import RuleSet
from maild.routing.schema import TEAM
from maild.store.db import connection, write_tx
from maild.store.models import Contact, KeyValue, Ticket
from tests.ruleskit import ruleset

PEOPLE = """
agents:
  - {email: ann@example.com, teams: [desk, tech]}
  - {email: ben@example.com, teams: [desk, tech]}
  - {email: cat@example.com, teams: [desk, tech]}
  - {email: dan@example.com, teams: [desk], available: false}
teams:
  desk: {assign: round_robin}
  tech: {assign: least_open}
  queue: {assign: none}
  empty: {assign: round_robin}
"""


def rules_with(tmp_path: Path, people: str = PEOPLE) -> RuleSet:
    return ruleset(tmp_path, "rules: []\n", people=people)


def assign(app: App, rules: RuleSet, team: str) -> str | None:
    with write_tx(app.db):
        return assign_by_team(app.db, rules, team).agent


def test_round_robin_is_fair_over_100_tickets(
    tmp_path: Path, app_factory: Callable[..., App], any_db_url: str
) -> None:
    app = app_factory(any_db_url)
    rules = rules_with(tmp_path)
    chosen = [assign(app, rules, "desk") for _ in range(100)]
    assert chosen[:4] == [
        "ann@example.com",
        "ben@example.com",
        "cat@example.com",
        "ann@example.com",
    ]  # dan is not available
    counts = Counter(chosen)
    assert counts == {"ann@example.com": 34, "ben@example.com": 33, "cat@example.com": 33}
    assert all(a != b for a, b in itertools.pairwise(chosen))


def test_round_robin_continues_after_a_restart(
    tmp_path: Path, app_factory: Callable[..., App], any_db_url: str
) -> None:
    app = app_factory(any_db_url)
    before = [assign(app, rules_with(tmp_path), "desk") for _ in range(4)]
    app.close()
    app = app_factory(any_db_url)  # a new process: new App, rules loaded again
    after = [assign(app, rules_with(tmp_path), "desk") for _ in range(3)]
    assert before + after == ["ann@example.com", "ben@example.com", "cat@example.com"] * 2 + [
        "ann@example.com"
    ]
    assert KeyValue.get_by_id("assign.round_robin.desk").value == (
        '{"last": "ann@example.com", "position": 0}'
    )


def test_round_robin_when_the_last_agent_left_the_team(
    tmp_path: Path, app_factory: Callable[..., App]
) -> None:
    app = app_factory()
    assert [assign(app, rules_with(tmp_path), "desk") for _ in range(2)] == [
        "ann@example.com",
        "ben@example.com",
    ]
    without_ben = PEOPLE.replace(
        "{email: ben@example.com, teams: [desk, tech]}", "{email: ben@example.com, teams: [tech]}"
    )
    # Ben had the last turn and left; cat, who came after him, now holds his position and is next.
    got = [assign(app, rules_with(tmp_path, without_ben), "desk") for _ in range(3)]
    assert got == ["cat@example.com", "ann@example.com", "cat@example.com"]


def test_round_robin_under_concurrent_writers(
    tmp_path: Path, app_factory: Callable[..., App], any_db_url: str
) -> None:
    app = app_factory(any_db_url)
    rules = rules_with(tmp_path)
    results: list[str | None] = []
    lock = threading.Lock()

    def work() -> None:
        with connection(app.db):
            for _ in range(15):
                got = assign(app, rules, "desk")
                with lock:
                    results.append(got)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Each turn was handed out once: 30 turns over 3 agents is exactly 10 each.
    assert Counter(results) == {"ann@example.com": 10, "ben@example.com": 10, "cat@example.com": 10}


def _ticket(assignee: str | None, status: str) -> None:
    contact, _ = Contact.get_or_create(email="cust@customer.test")
    Ticket.create(subject="t", requester=contact, assignee=assignee, status=status)


def test_least_open(tmp_path: Path, app_factory: Callable[..., App], any_db_url: str) -> None:
    app = app_factory(any_db_url)
    rules = rules_with(tmp_path)
    with write_tx(app.db):
        for status in ("new", "open", "pending"):
            _ticket("ann@example.com", status)
        _ticket("ben@example.com", "open")
        _ticket("ben@example.com", "pending")
        for status in ("resolved", "closed", "closed"):  # these do not count
            _ticket("cat@example.com", status)
        _ticket("cat@example.com", "new")
        _ticket("cat@example.com", "open")
        _ticket(None, "new")
        _ticket("someone@else.test", "new")
    with write_tx(app.db):
        result = assign_by_team(app.db, rules, "tech")
    # ben and cat have 2 each; ben is declared first
    assert (result.agent, result.strategy) == ("ben@example.com", "least_open")
    assert "ann@example.com 3, ben@example.com 2, cat@example.com 2" in result.reason
    with write_tx(app.db):
        _ticket("ben@example.com", "new")
    assert assign(app, rules, "tech") == "cat@example.com"


def test_least_open_with_no_tickets_picks_the_first(
    tmp_path: Path, app_factory: Callable[..., App]
) -> None:
    app = app_factory()
    assert assign(app, rules_with(tmp_path), "tech") == "ann@example.com"


def test_resolve_assignee(tmp_path: Path, app_factory: Callable[..., App]) -> None:
    app = app_factory()
    rules = rules_with(tmp_path)
    with write_tx(app.db):
        explicit = resolve_assignee(app.db, rules, assignee="cat@example.com", team="desk")
        by_team = resolve_assignee(app.db, rules, assignee=TEAM, team="desk")
        no_team = resolve_assignee(app.db, rules, assignee=TEAM, team=None)
        queue = resolve_assignee(app.db, rules, assignee=TEAM, team="queue")
        empty = resolve_assignee(app.db, rules, assignee=TEAM, team="empty")
        gone = resolve_assignee(app.db, rules, assignee=TEAM, team="deleted")
    assert (explicit.agent, explicit.strategy) == ("cat@example.com", "explicit")
    assert (by_team.agent, by_team.strategy) == ("ann@example.com", "round_robin")
    assert (no_team.agent, queue.agent, empty.agent, gone.agent) == (None, None, None, None)
    assert empty.reason == "team empty has no available members"
    assert queue.reason == "team queue assigns nobody (assign: none)"


def test_corrupt_state_restarts_the_rotation(
    tmp_path: Path, app_factory: Callable[..., App]
) -> None:
    app = app_factory()
    with write_tx(app.db):
        KeyValue.create(key="assign.round_robin.desk", value="not json")
    assert assign(app, rules_with(tmp_path), "desk") == "ann@example.com"
