"""``ticketd tickets list`` at scale and ``tickets set|merge`` for admins, as real subprocesses
on SQLite and PostgreSQL; the fixed number of queries per page is counted in process."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from maild.app import App
from maild.store.listing import Filters, list_page
from maild.store.models import Contact, Event, Message, Ticket, TicketField, TicketTag
from tests.conftest import base_config, counted_statements

PEOPLE = """\
agents:
  - {email: alice@example.com, name: Alice, teams: [billing]}
  - {email: bob@example.com, name: Bob, teams: [tech]}
teams:
  billing: {assign: none}
  tech: {assign: none}
"""
T0 = dt.datetime(2026, 11, 1, 9, 0)


@pytest.fixture
def setup(
    app_factory: Callable[..., App], any_db_url: str, tmp_path: Path
) -> Iterator[tuple[App, Path]]:
    app = app_factory(any_db_url)
    (app.config.rules_dir / "10-people.yaml").write_text(PEOPLE)
    path = tmp_path / "config.yaml"
    with path.open("w") as fh:
        YAML().dump(base_config(tmp_path, any_db_url), fh)
    yield app, path


def seed(count: int) -> list[Ticket]:
    """``count`` tickets: every third billing (alice), every fifth urgent, tag vip on evens."""
    carol = Contact.create(email="carol@customer.test", name="Carol")
    made = []
    for n in range(count):
        ticket = Ticket.create(
            subject=f"Printer {n} on fire" if n % 7 else f"Invoice {n} wrong",
            requester=carol,
            status="open" if n % 2 else "new",
            priority="urgent" if n % 5 == 0 else "normal",
            team="billing" if n % 3 == 0 else "tech",
            assignee="alice@example.com" if n % 3 == 0 else None,
            created_at=T0 + dt.timedelta(hours=n),
            updated_at=T0 + dt.timedelta(hours=n),
        )
        Message.create(
            ticket=ticket,
            direction="in",
            kind="customer",
            message_id=f"m{n}@customer.test",
            dedup_key=f"m{n}@customer.test",
            from_addr="carol@customer.test",
            body=f"the serial number is SN-{n:04d}",
            created_at=ticket.created_at,
        )
        if n % 2 == 0:
            TicketTag.create(ticket=ticket, tag="vip")
        TicketField.create(ticket=ticket, name="product", value="laser" if n % 4 else "inkjet")
        made.append(ticket)
    return made


def ticketd(config: Path, *args: str, ok: bool = True, columns: int = 200) -> tuple[int, str, str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    out = subprocess.run(
        [sys.executable, "-m", "maild.cli.main", *args, "--config", str(config)],
        capture_output=True,
        timeout=120,
        env=env,
    )
    if ok:
        assert out.returncode == 0, out.stderr
    return out.returncode, out.stdout.decode(), out.stderr.decode()


def refs(config: Path, *args: str) -> list[str]:
    _code, out, _err = ticketd(config, "tickets", "list", "--json", *args)
    return [row["ref"] for row in json.loads(out)]


def test_each_filter_selects_what_it_says(setup: tuple[App, Path]) -> None:
    _app, config = setup
    tickets = seed(30)

    def expect(pred: Callable[[Ticket], bool]) -> list[str]:
        chosen = [t for t in reversed(tickets) if pred(t)]
        return [f"ACME-{t.id}" for t in chosen]

    assert refs(config, "--limit", "0") == expect(lambda t: True)
    assert refs(config, "--status", "new", "--limit", "0") == expect(lambda t: t.status == "new")
    assert refs(config, "--team", "Billing", "--limit", "0") == expect(
        lambda t: t.team == "billing"
    )
    assert refs(config, "--assignee", "me", "--as", "alice@example.com", "--limit", "0") == expect(
        lambda t: t.assignee == "alice@example.com"
    )
    assert refs(config, "--assignee", "none", "--limit", "0") == expect(
        lambda t: t.assignee is None
    )
    vip = {t.id for t in tickets[::2]}
    assert refs(config, "--tag", "vip", "--limit", "0") == expect(lambda t: t.id in vip)
    assert refs(config, "--priority", "urgent", "--limit", "0") == expect(
        lambda t: t.priority == "urgent"
    )
    since = (T0 + dt.timedelta(hours=25)).isoformat()
    assert refs(config, "--since", since) == expect(
        lambda t: t.created_at >= T0 + dt.timedelta(hours=25)
    )
    assert refs(config, "--search", "invoice", "--limit", "0") == expect(
        lambda t: t.subject.startswith("Invoice")
    )
    assert refs(config, "--search", "sn-0017") == [f"ACME-{tickets[17].id}"]  # the visible text
    assert refs(config, "--field", "product=inkjet", "--limit", "0") == expect(
        lambda t: t.id in {x.id for x in tickets[::4]}
    )


def test_sort_limit_and_offset_page_through_the_queue(setup: tuple[App, Path]) -> None:
    _app, config = setup
    tickets = seed(12)
    oldest_first = [f"ACME-{t.id}" for t in tickets]
    assert refs(config, "--sort", "created", "--limit", "5") == oldest_first[:5]
    assert refs(config, "--sort", "created", "--limit", "5", "--offset", "10") == oldest_first[10:]
    urgent_first = refs(config, "--sort", "priority:desc", "--limit", "0")
    assert refs(config, "--sort=-priority", "--limit", "0") == urgent_first
    assert [r for r in urgent_first[:3]] == [f"ACME-{t.id}" for t in reversed(tickets[::5])]


def test_a_page_takes_the_same_number_of_queries_whatever_its_length(
    setup: tuple[App, Path],
) -> None:
    seed(40)
    sizes = []
    for limit in (1, 10, 40):
        with counted_statements() as counted:
            page = list_page("ACME", Filters(tag=("vip",)), limit=limit)
        assert len(page.rows) == min(limit, 20) and page.total == 20
        sizes.append(len(counted))
    with counted_statements() as counted:
        uncounted = list_page("ACME", Filters(tag=("vip",)), limit=10, count=False)
    assert len(uncounted.rows) == 10 and uncounted.total is None  # what --json asks
    assert len(counted) == sizes[0] - 1 and not any("COUNT" in q for q in counted)
    assert sizes[0] == sizes[1] == sizes[2] <= 7, sizes


def test_the_table_fits_the_terminal_and_says_how_many_more(setup: tuple[App, Path]) -> None:
    _app, config = setup
    seed(8)
    for width in (60, 100, 160):
        _c, out, _e = ticketd(config, "tickets", "list", "--limit", "3", columns=width)
        lines = out.splitlines()
        titles = lines[0].split()
        assert titles[0] == "REF" and titles[-1] == "SUBJECT" and len(titles) == 8
        if width >= 100:  # narrower terminals shorten the titles too
            assert titles[4:6] == ["ASSIGNEE", "REQUESTER"]
        assert all(len(line) <= width for line in lines[:-1]), (width, lines)
        assert lines[-1] == "... 5 more (--offset 3 for the next page)"
        assert len(lines) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--assignee", "me"), "--assignee me needs --as EMAIL"),
        (("--sort", "colour"), "unknown sort key 'colour'"),
        (("--since", "yesterday"), "--since 'yesterday': expected"),
        (("--limit", "-1"), "must not be negative"),
        (("--field", "product"), "expected NAME=VALUE"),
    ],
)
def test_bad_list_options_are_one_clear_line(
    setup: tuple[App, Path], args: tuple[str, ...], message: str
) -> None:
    _app, config = setup
    code, out, err = ticketd(config, "tickets", "list", *args, ok=False)
    assert code == 64 and out == "" and message in err and "Traceback" not in err


def test_tickets_set_changes_fields_audited_with_the_admins_user_name(
    setup: tuple[App, Path],
) -> None:
    _app, config = setup
    (ticket,) = seed(1)
    TicketTag.create(ticket=ticket, tag="old")
    _c, out, _e = ticketd(
        config,
        "tickets",
        "set",
        f"ACME-{ticket.id}",
        "--priority",
        "high",
        "--team",
        "tech",
        "--assign",
        "bob@example.com",
        "--tag",
        "+new",
        "-vip",
        "--status",
        "pending",
    )
    fresh = Ticket.get_by_id(ticket.id)
    assert (fresh.priority, fresh.team, fresh.assignee, fresh.status) == (
        "high",
        "tech",
        "bob@example.com",
        "pending",
    )
    tags = {row.tag for row in TicketTag.select().where(TicketTag.ticket == ticket)}
    assert tags == {"old", "new"}
    assert "status pending" in out
    actors = {
        e.actor
        for e in Event.select().where(
            (Event.ticket == ticket) & (Event.action.in_(("priority", "team", "status")))
        )
    }
    assert actors == {getpass.getuser()}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--status", "sleeping"), "unknown status 'sleeping'"),
        (("--team", "nowhere"), "no team 'nowhere'"),
        (("--assign", "zed@example.com"), "is not an agent"),
        (("--tag", "+bad tag!"), "is not a tag"),
        ((), "nothing to change"),
    ],
)
def test_tickets_set_refuses_bad_values_and_changes_nothing(
    setup: tuple[App, Path], args: tuple[str, ...], message: str
) -> None:
    _app, config = setup
    (ticket,) = seed(1)
    before = Event.select().count()
    code, _out, err = ticketd(config, "tickets", "set", f"ACME-{ticket.id}", *args, ok=False)
    assert code != 0 and message in err and "Traceback" not in err
    assert Event.select().count() == before


def test_tickets_merge_and_its_refusals(setup: tuple[App, Path]) -> None:
    _app, config = setup
    a, b, c = seed(3)
    code, _o, err = ticketd(config, "tickets", "merge", f"ACME-{a.id}", f"ACME-{a.id}", ok=False)
    assert code == 65 and "cannot be merged into itself" in err
    code, _o, err = ticketd(config, "tickets", "merge", f"ACME-{a.id}", "ACME-999", ok=False)
    assert code == 65 and "does not exist" in err
    _c, out, _e = ticketd(config, "tickets", "merge", f"ACME-{a.id}", f"ACME-{b.id}")
    assert f"ACME-{a.id} merged into ACME-{b.id}" in out
    assert Ticket.get_by_id(a.id).status == "closed"
    (merged,) = Event.select().where((Event.ticket == b) & (Event.action == "merged"))
    assert merged.actor == getpass.getuser()
    code, _o, err = ticketd(config, "tickets", "merge", f"ACME-{b.id}", f"ACME-{a.id}", ok=False)
    assert "loop" in err
    Ticket.update(status="closed").where(Ticket.id == c.id).execute()
    code, _o, err = ticketd(config, "tickets", "merge", f"ACME-{b.id}", f"ACME-{c.id}", ok=False)
    assert "is closed" in err
    _c, out, _e = ticketd(config, "tickets", "show", f"ACME-{b.id}")
    assert f"merged from ACME-{a.id}" in out
