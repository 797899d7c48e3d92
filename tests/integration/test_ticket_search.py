"""``tickets list --search`` through its index (maild/store/search.py), on SQLite and PostgreSQL:
the index stays current as mail arrives, tickets merge and people are erased; the user's text is
literal whatever FTS or LIKE syntax it holds; an upgrade indexes the rows already stored; and
the queries of search, ``--sort priority``, ``--team`` and ``--field`` read their indexes."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from maild.app import App
from maild.ops.privacy import erase
from maild.store import listing, migrations
from maild.store.db import is_sqlite
from maild.store.listing import Filters, list_page
from maild.store.models import Contact, Message, SchemaVersion, Ticket, TicketField
from tests.agentkit import MX, agents_app, deliver, new_ticket
from tests.conftest import PG_ADMIN_DSN, base_config
from tests.mailgen import make_mail


@pytest.fixture
def desk(app_factory: Callable[..., App], any_db_url: str, tmp_path: Path) -> tuple[App, Path]:
    """An App with agents and rules, and the config file the CLI reads."""
    app = agents_app(app_factory, any_db_url)
    path = tmp_path / "config.yaml"
    with path.open("w") as fh:
        YAML().dump(base_config(tmp_path, any_db_url, agents={"authserv_id": MX}), fh)
    return app, path


CLI = (sys.executable, "-m", "maild.cli.main")


def search(config: Path, text: str) -> list[str]:
    out = subprocess.run(
        [
            *CLI,
            "tickets",
            "list",
            "--json",
            "--limit",
            "0",
            "--search",
            text,
            "--config",
            str(config),
        ],
        capture_output=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stderr
    return [row["ref"] for row in json.loads(out.stdout)]


def found(text: str) -> list[int]:
    """The ids that ``--search text`` selects, newest first (in process, the real query)."""
    page = list_page("ACME", Filters(search=text), limit=0)
    return [int(row["ref"].rpartition("-")[2]) for row in page.rows]


def test_a_reply_stored_after_the_ticket_is_found_by_its_text(desk: tuple[App, Path]) -> None:
    app, config = desk
    ticket = new_ticket(app, "Printer jammed", body="Hello,\n\nit jams on every page.\n")
    assert search(config, "QX-4471") == []
    first = Message.get(Message.ticket == ticket)
    deliver(
        app,
        make_mail(
            subject=f"Re: [ACME-{ticket.id}] Printer jammed",
            body="The gasket qx-4471 cracked as well.\n",
            in_reply_to=first.message_id,
            references=first.message_id,
        ),
    )
    assert Message.select().where(Message.ticket == ticket).count() >= 2
    assert search(config, "QX-4471") == [f"ACME-{ticket.id}"]  # case ignored
    assert search(config, "printer JAMMED") == [f"ACME-{ticket.id}"]  # the subject


def test_messages_merged_into_another_ticket_are_found_on_it(desk: tuple[App, Path]) -> None:
    app, config = desk
    old = new_ticket(app, "Toner smears", body="Serial ZZ-9001 smears every page.\n")
    into = new_ticket(app, "Toner again", body="The other printer, serial YY-1.\n")
    assert search(config, "zz-9001") == [f"ACME-{old.id}"]
    out = subprocess.run(
        [*CLI, "tickets", "merge", f"ACME-{old.id}", f"ACME-{into.id}", "--config", str(config)],
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert search(config, "zz-9001") == [f"ACME-{into.id}"]
    assert f"ACME-{old.id}" in search(config, "toner smears")  # its subject stays its own


def test_erased_text_is_no_longer_found(desk: tuple[App, Path]) -> None:
    app, config = desk
    gone = new_ticket(
        app, "Dan's invoice WX-77", sender="Dan <dan@customer.test>", body="Dan's IBAN QQ-5521.\n"
    )
    kept = new_ticket(app, "Carol's invoice WX-78", body="Carol's IBAN QQ-5522.\n")
    assert search(config, "QQ-552") == [f"ACME-{kept.id}", f"ACME-{gone.id}"]
    erase(app, "dan@customer.test", actor="admin")
    assert search(config, "QQ-552") == [f"ACME-{kept.id}"]
    assert search(config, "WX-7") == [f"ACME-{kept.id}"]
    if is_sqlite(app.db):  # nor is any of it left in the index's own pages
        raw = Path(app.db.database).read_bytes()
        assert b"QQ-5521" not in raw and b"q-5521" not in raw.lower()


HOSTILE = [
    '"',
    '""',
    '"NEAR(a b)"',
    "NEAR(a b)",
    "AND *",
    "OR NOT",
    "^y col:z",
    "col:z",
    "-x",
    "*",
    "%",
    "_",
    "50%_off",
    "5_%",
    "a%b",
    "a\\b",
    "\\",
    "'single'",
    "(paren)",
    ")",
    "x OR y",
    "Größe",
    "😀 ok",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_search_text_is_literal_whatever_syntax_it_holds(app: App, text: str) -> None:
    carol = Contact.create(email="carol@customer.test", name="Carol")
    texts = {
        'Quote "NEAR(a b)" AND * OR -x ^y col:z': "it said x or y",
        "Discount": "50%_off, a\\b and a (paren) with 'single' quotes",
        "Plain subject": "nothing here, OR NOT there",
        "Größe 😀 ok": "Überweisung",
        "Wildcards": "a5x%",
    }
    made = {}
    for subject, body in texts.items():
        ticket = Ticket.create(subject=subject, requester=carol)
        Message.create(
            ticket=ticket,
            direction="in",
            kind="customer",
            message_id=f"{ticket.id}@customer.test",
            dedup_key=f"{ticket.id}@customer.test",
            body=body,
        )
        made[ticket.id] = f"{subject}\n{body}".lower()
    expected = sorted((n for n, hay in made.items() if text.lower() in hay), reverse=True)
    assert found(text) == expected


def test_the_cli_takes_fts_syntax_as_text(desk: tuple[App, Path]) -> None:
    app, config = desk
    ticket = new_ticket(app, 'Error "E42" (NEAR the tray) *', body="Hello.\n")
    new_ticket(app, "Something else", body="Hello.\n")
    for text in ('"E42"', "(NEAR the", "tray) *", '" (N', ") *"):
        assert search(config, text) == [f"ACME-{ticket.id}"], text


def seed(count: int) -> list[Ticket]:
    carol = Contact.create(email="carol@customer.test", name="Carol")
    made = []
    for n in range(count):
        ticket = Ticket.create(
            subject=f"Problem {n}",
            requester=carol,
            priority=("low", "normal", "high", "urgent")[n % 4],
            team="Billing" if n % 2 else "tech",
        )
        Message.create(
            ticket=ticket,
            direction="in",
            kind="customer",
            message_id=f"m{n}@customer.test",
            dedup_key=f"m{n}@customer.test",
            body=f"serial SN-{n:04d}",
        )
        TicketField.create(ticket=ticket, name="product", value="Laser" if n % 3 else "inkjet")
        made.append(ticket)
    return made


def _downgrade_to_version_2(app: App) -> None:
    """What a version-2 database lacks: the search index and the expression indexes."""
    db = app.db
    if is_sqlite(db):
        for name in ("ticket", "message"):
            for event in ("insert", "delete", "update"):
                db.execute_sql(f"DROP TRIGGER {name}_search_{event}")
            db.execute_sql(f"DROP TABLE {name}_search")
    else:
        db.execute_sql("DROP INDEX ticket_subject_trgm")
        db.execute_sql("DROP INDEX message_body_trgm")
    for index in ("ticket_priority_rank", "ticket_team_lower", "ticket_field_name_value_lower"):
        db.execute_sql(f"DROP INDEX {index}")
    SchemaVersion.update(version=2).execute()


def test_upgrade_to_version_3_indexes_the_tickets_already_stored(app: App) -> None:
    tickets = seed(12)
    _downgrade_to_version_2(app)
    Message.create(  # stored by a version-2 ticketd, never seen by a trigger
        ticket=tickets[3],
        direction="in",
        kind="customer",
        message_id="late@customer.test",
        dedup_key="late@customer.test",
        body="a late word: kumquat",
    )
    assert migrations.upgrade(app.db) == migrations.CURRENT_VERSION
    assert found("SN-0007") == [tickets[7].id]
    assert found("kumquat") == [tickets[3].id]
    assert found("problem 1") == [t.id for t in reversed(tickets) if "Problem 1" in t.subject]
    if is_sqlite(app.db):  # the FTS tables themselves hold the old rows (a rebuild, not a scan)
        (count,) = app.db.execute_sql(
            "SELECT count(*) FROM message_search WHERE message_search MATCH '\"kumquat\"'"
        ).fetchone()
        assert count == 1


def _plan(app: App, filters: Filters, sort: str | None = None, *, correlated: bool = True) -> str:
    """The plan of the page's query (``sort``: its ORDER BY and LIMIT; None: neither)."""
    query = Ticket.select(Ticket.id)
    for clause in listing.where_clauses(filters, correlated=correlated):
        query = query.where(clause)
    if sort is not None:
        query = query.order_by(*listing.order_by(sort)).limit(50)
    sql, params = query.sql()
    if is_sqlite(app.db):
        rows = app.db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return "\n".join(str(row[-1]) for row in rows)
    with app.db.atomic():  # a dozen rows: tell PostgreSQL to prefer any index to a scan
        app.db.execute_sql("SET LOCAL enable_seqscan = off")
        rows = app.db.execute_sql(f"EXPLAIN {sql}", params).fetchall()
    return "\n".join(row[0] for row in rows)


def test_search_sort_team_and_field_read_their_indexes(app: App) -> None:
    seed(12)
    if not is_sqlite(app.db):
        app.db.execute_sql("ANALYZE")
    plan = _plan(app, Filters(search="SN-0007"))
    if is_sqlite(app.db):
        assert "message_search VIRTUAL TABLE" in plan and "ticket_search VIRTUAL TABLE" in plan
    else:
        assert "message_body_trgm" in plan and "ticket_subject_trgm" in plan, plan
    plan = _plan(app, Filters(), "priority:desc")
    assert "ticket_priority_rank" in plan, plan
    plan = _plan(app, Filters(team="BILLING"))
    assert "ticket_team_lower" in plan, plan
    inkjet = Filters(fields=(("product", "INKJET"),))
    plan = _plan(app, inkjet, correlated=False)
    assert "ticket_field_name_value_lower" in plan, plan
    assert len(list_page("ACME", inkjet, limit=0).rows) == 4
    assert len(list_page("ACME", Filters(team="BILLING"), limit=0).rows) == 6


@pytest.fixture
def unprivileged_pg_url(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database whose role may create tables but not extensions."""
    import psycopg

    suffix = uuid.uuid4().hex[:8]
    role, name = f"ticketd_plain_{suffix}", f"ticketd_plain_{suffix}"
    admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}", autocommit=True) as db:
        db.execute(f'GRANT CREATE ON SCHEMA public TO "{role}"')
    try:
        yield f"postgresql://{role}@127.0.0.1:5432/{name}"
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()


def test_without_the_right_to_create_pg_trgm_search_works_unindexed(
    app_factory: Callable[..., App], unprivileged_pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ticketd.store"):
        app = app_factory(unprivileged_pg_url)
    assert "search stays unindexed" in caplog.text and "pg_trgm" in caplog.text
    assert SchemaVersion.get().version == migrations.CURRENT_VERSION
    tickets = seed(5)
    assert found("sn-0003") == [tickets[3].id]
    assert found("PROBLEM 4") == [tickets[4].id]
    assert "ticket_priority_rank" in _plan(app, Filters(), "priority:desc")
