"""Two ``ticketd run`` instances sharing one PostgreSQL database, as DESIGN.md's scale section has it.

Each instance listens on its own port; mail arrives at both at once, some of it twice (the same
Message-ID delivered to each, as a secondary MX would). Every message ends on exactly one ticket
once, and every acknowledgement is sent exactly once, whichever instance claimed it.
"""

from __future__ import annotations

import smtplib
import threading
from pathlib import Path

import psycopg
from ruamel.yaml import YAML

from tests.conftest import _truncate_pg, base_config
from tests.mailgen import make_mail
from tests.servers.daemon import free_port, wait_until

MESSAGES = 40
TWICE = 10  # the first ten go to both instances


def test_two_instances_on_one_postgresql_store_and_send_everything_once(
    tmp_path: Path, pg_url: str, start_daemon
) -> None:
    _truncate_pg(pg_url)
    configs = []
    for n in (1, 2):
        port = free_port()
        data = base_config(
            tmp_path,
            pg_url,
            smtp_in={"host": "127.0.0.1", "port": port},
            worker={"poll_seconds": 0.2},
        )
        path = tmp_path / f"config{n}.yaml"
        with path.open("w") as fh:
            YAML().dump(data, fh)  # the same data_dir: one signing secret, one sent folder
        configs.append((path, port, tmp_path / f"daemon{n}.log"))
    daemons = [start_daemon(*c) for c in configs]  # the first creates the schema and the secret
    try:
        mails = [
            make_mail(
                subject=f"Question {i}",
                message_id=f"<q{i}@customer.test>",
                sender=f"Customer {i} <c{i}@customer.test>",
            )
            for i in range(MESSAGES)
        ]

        def send(port: int, batch: list[bytes]) -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                for raw in batch:
                    client.sendmail("c@customer.test", ["support@example.com"], raw)

        senders = [
            threading.Thread(target=send, args=(daemons[0].port, mails[0::2] + mails[1:TWICE:2])),
            threading.Thread(target=send, args=(daemons[1].port, mails[1::2] + mails[0:TWICE:2])),
        ]
        for t in senders:
            t.start()
        for t in senders:
            t.join()

        def settled() -> tuple[int, int, int] | None:
            with psycopg.connect(pg_url) as conn:
                pending = conn.execute(
                    "SELECT count(*) FROM spool_entry WHERE status <> 'done'"
                ).fetchone()[0]
                queued = conn.execute(
                    "SELECT count(*) FROM outbox_entry WHERE status <> 'sent'"
                ).fetchone()[0]
                sent = conn.execute("SELECT count(*) FROM outbox_entry").fetchone()[0]
            return (pending, queued, sent) if not pending and not queued and sent else None

        wait_until(settled, timeout=60)
        with psycopg.connect(pg_url) as conn:
            spooled = conn.execute("SELECT count(*) FROM spool_entry").fetchone()[0]
            stored = conn.execute(
                "SELECT message_id, count(*) FROM message WHERE direction = 'in' GROUP BY 1"
            ).fetchall()
            tickets = conn.execute("SELECT count(*) FROM ticket").fetchone()[0]
            acks = conn.execute(
                "SELECT ticket_id, count(*) FROM outbox_entry WHERE kind = 'auto' GROUP BY 1"
            ).fetchall()
    finally:
        for d in daemons:
            assert d.stop() == 0, d.output()
    assert spooled == MESSAGES + TWICE  # every 250 was spooled ...
    assert sorted(count for _, count in stored) == [1] * MESSAGES  # ... and stored once
    assert tickets == MESSAGES
    assert sorted(count for _, count in acks) == [1] * MESSAGES  # one acknowledgement each
    sent_files = list((tmp_path / "var" / "sent").glob("*.eml"))
    assert len(sent_files) == MESSAGES  # delivered once, by whichever instance claimed it
    split = [d.output().count(" new ACME-") for d in daemons]
    assert sum(split) == MESSAGES  # each ticket created by exactly one of the two
    print(f"\ntickets created per instance: {split}")
