"""Benchmark ``ticketd tickets list`` and ``tickets show`` over 100,000 tickets.

    .venv/bin/python bench/tickets.py [--tickets 100000] [--runs 5] [--pg [ADMIN_DSN]]

Builds an instance with ``--tickets`` tickets (bulk inserts): 2,000 requesters, three teams, ten
agents, every other ticket tagged, a custom field on every ticket, one customer message each with
a serial number in its text; ACME-1 has 500 messages with their events. Then, in one run and
interleaved, it times

- each command in this process (``maild.cli.main.main``, output to a buffer): argument parsing,
  config, opening the database, the queries and the JSON; Python's own start-up is not counted
  (``bench/cli.py`` measures that);
- against a bare ``SELECT`` of the same rows: the page's SQL (the same WHERE, ORDER BY and LIMIT)
  sent as text and fetched, and for ``show`` the ticket's messages and events.

The target is under 200 ms per command, on SQLite and PostgreSQL; the ratio to the bare SELECT
says how much the command adds to reading its rows.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maild.app import App  # noqa: E402
from maild.cli.main import main as ticketd  # noqa: E402
from maild.config import load_config  # noqa: E402
from maild.store import listing  # noqa: E402
from maild.store.models import (  # noqa: E402
    Contact,
    Event,
    Message,
    Ticket,
    TicketField,
    TicketTag,
    database_proxy,
)

TEAMS = ("billing", "tech", "sales")
AGENTS = [f"agent{n}@example.com" for n in range(10)]
FILTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("(no filter)", ()),
    ("--status open", ("--status", "open")),
    ("--team billing", ("--team", "billing")),
    ("--assignee me --as agent3", ("--assignee", "me", "--as", "agent3@example.com")),
    ("--tag vip", ("--tag", "vip")),
    ("--priority urgent", ("--priority", "urgent")),
    ("--since 7d", ("--since", "7d")),
    ("--search SN-077777", ("--search", "SN-077777")),
    ("--field product=inkjet", ("--field", "product=inkjet")),
    ("--sort priority:desc", ("--sort", "priority:desc")),
)
BATCH = 2000


def fill(n: int, now: dt.datetime) -> None:
    rnd = random.Random(18)
    db = database_proxy.obj
    with db.atomic():
        Contact.insert_many(
            [{"email": f"c{i}@customer{i % 50}.test", "name": f"Customer {i}"} for i in range(2000)]
        ).execute()
        contacts = [c.id for c in Contact.select(Contact.id)]
        rows = []
        for i in range(n):
            created = now - dt.timedelta(minutes=rnd.uniform(0, 90 * 24 * 60))
            rows.append(
                {
                    "subject": f"Problem {i} with the {rnd.choice(['printer', 'invoice', 'login'])}",
                    "status": rnd.choice(("new", "open", "open", "pending", "resolved", "closed")),
                    "priority": rnd.choice(("low", "normal", "normal", "normal", "high", "urgent")),
                    "team": rnd.choice(TEAMS),
                    "assignee": rnd.choice([*AGENTS, None, None]),
                    "requester": rnd.choice(contacts),
                    "created_at": created,
                    "updated_at": created,
                }
            )
        for start in range(0, n, BATCH):
            Ticket.insert_many(rows[start : start + BATCH]).execute()
        ids = [t.id for t in Ticket.select(Ticket.id).order_by(Ticket.id)]
        for start in range(0, n, BATCH):
            chunk = ids[start : start + BATCH]
            TicketTag.insert_many(
                [{"ticket": t, "tag": "vip"} for t in chunk if t % 2 == 0]
            ).execute()
            TicketField.insert_many(
                [
                    {"ticket": t, "name": "product", "value": rnd.choice(("laser", "inkjet"))}
                    for t in chunk
                ]
            ).execute()
            Message.insert_many(
                [
                    {
                        "ticket": t,
                        "direction": "in",
                        "kind": "customer",
                        "message_id": f"m{t}@customer.test",
                        "dedup_key": f"m{t}@customer.test",
                        "from_addr": "c1@customer1.test",
                        "body": f"Hello, the device with serial SN-{t:06d} stopped working.",
                        "created_at": now,
                    }
                    for t in chunk
                ]
            ).execute()
        first = ids[0]
        for start in range(0, 500, 100):
            Message.insert_many(
                [
                    {
                        "ticket": first,
                        "direction": "in" if k % 2 else "out",
                        "kind": "customer" if k % 2 else "agent",
                        "message_id": f"long{k}@customer.test",
                        "dedup_key": f"long{k}@customer.test",
                        "from_addr": "c1@customer1.test",
                        "body": "A longer exchange about the same problem. " * 8,
                        "created_at": now + dt.timedelta(minutes=k),
                    }
                    for k in range(start, start + 100)
                ]
            ).execute()
            Event.insert_many(
                [
                    {"ticket": first, "action": "message", "actor": "c1@customer1.test", "at": now}
                    for _ in range(100)
                ]
            ).execute()
    db.execute_sql("ANALYZE")


def command(config: Path, *args: str) -> int:
    out, old = io.StringIO(), sys.stdout
    sys.stdout = out
    try:
        code = ticketd([*args, "--config", str(config)])
    finally:
        sys.stdout = old
        if not database_proxy.obj.is_closed():
            database_proxy.obj.close()
    assert code == 0, out.getvalue()[:300]
    return len(out.getvalue())


def bare_list(app: App, args: tuple[str, ...], config: Path) -> Callable[[], Any]:
    """The page's own SELECT (same WHERE, ORDER BY, LIMIT), as SQL text, fetched."""
    from maild.cli.main import build_parser
    from maild.cli.tickets import filters_of

    parsed = build_parser("tickets").parse_args(
        ["tickets", "list", "--json", "--limit", "50", *args, "--config", str(config)]
    )
    filters = filters_of(parsed)
    assert isinstance(filters, listing.Filters)
    query = Ticket.select(Ticket, Contact).join(Contact, on=(Ticket.requester == Contact.id))
    for clause in listing.where_clauses(filters):
        query = query.where(clause)
    sql, params = query.order_by(*listing.order_by(parsed.sort)).limit(50).sql()
    return lambda: app.db.execute_sql(sql, params).fetchall()


def bare_show(app: App, number: int) -> Callable[[], Any]:
    def run() -> int:
        db = app.db
        rows = db.execute_sql(f"SELECT * FROM ticket WHERE id = {number}").fetchall()
        rows += db.execute_sql(
            f"SELECT * FROM message WHERE ticket_id = {number} ORDER BY created_at, id"
        ).fetchall()
        rows += db.execute_sql(
            f"SELECT * FROM event WHERE ticket_id = {number} ORDER BY id"
        ).fetchall()
        return len(rows)

    return run


def interleaved(
    pairs: list[tuple[Callable[[], Any], Callable[[], Any]]], runs: int
) -> list[tuple[float, float]]:
    times: list[tuple[list[float], list[float]]] = [([], []) for _ in pairs]
    for _ in range(runs):
        for (cmd, bare), (tc, tb) in zip(pairs, times, strict=True):
            for fn, sink in ((cmd, tc), (bare, tb)):
                start = time.perf_counter()
                fn()
                sink.append(time.perf_counter() - start)
    return [(statistics.median(a), statistics.median(b)) for a, b in times]


@contextlib.contextmanager
def postgres_db(admin_dsn: str) -> Iterator[str]:
    import psycopg

    name = f"ticketd_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(admin_dsn, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_dsn.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def run(url: str, folder: Path, args: argparse.Namespace) -> list[str]:
    (folder / "rules").mkdir(exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "instance": {
                    "ticket_prefix": "ACME",
                    "support_addresses": ["support@example.com"],
                    "data_dir": str(folder / "var"),
                },
                "database": {"url": url},
                "smtp_out": {"directory": str(folder / "var" / "sent")},
                "rules_dir": str(folder / "rules"),
                "templates_dir": str(ROOT / "templates"),
            }
        )
    )
    app = App.open(load_config(config))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = time.perf_counter()
    fill(args.tickets, now)
    print(
        f"{Ticket.select().count():,} tickets, {Message.select().count():,} messages "
        f"(inserted in {time.perf_counter() - start:.1f} s)"
    )
    first = Ticket.select(Ticket.id).order_by(Ticket.id).first().id
    names: list[str] = []
    pairs: list[tuple[Callable[[], Any], Callable[[], Any]]] = []
    for name, extra in FILTERS:
        names.append(f"tickets list --json --limit 50 {name}")
        pairs.append(
            (
                lambda extra=extra: command(
                    config, "tickets", "list", "--json", "--limit", "50", *extra
                ),
                bare_list(app, extra, config),
            )
        )
    names.append(f"tickets show ACME-{first} --json (500 messages)")
    pairs.append(
        (
            lambda: command(config, "tickets", "show", f"ACME-{first}", "--json"),
            bare_show(app, first),
        )
    )
    for fn, _bare in pairs:  # warm the caches once
        fn()
    results = interleaved(pairs, args.runs)
    lines = []
    for name, (cmd_s, bare_s) in zip(names, results, strict=True):
        verdict = "ok" if cmd_s < 0.2 else "OVER 200 ms"
        lines.append(
            f"  {name:<62} {cmd_s * 1000:7.1f} ms   bare SELECT {bare_s * 1000:6.1f} ms   "
            f"{cmd_s / bare_s:6.1f}x   {verdict}"
        )
    print("\n".join(lines))
    app.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs; the median is shown")
    parser.add_argument(
        "--pg",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/test",
        metavar="ADMIN_DSN",
        help="also on PostgreSQL (a private database)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("== SQLite")
        run(f"sqlite:///{folder / 'bench.db'}", folder, args)
        if args.pg:
            print("== PostgreSQL")
            (folder / "pg").mkdir()
            with postgres_db(args.pg) as url:
                run(url, folder / "pg", args)


if __name__ == "__main__":
    main()
