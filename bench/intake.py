"""Benchmark SMTP intake end to end: ticketd (real daemon) against a bare aiosmtpd that says 250.

One run, the conditions of issue 13: the shipped rules (``rules/``), acknowledgements on (file
transport), 8 concurrent SMTP clients, 1,500 messages of which 500 are replies (In-Reply-To an
earlier new one), on SQLite and then on PostgreSQL. For each database it prints, with the ratio
to the bare server that this script runs itself:

- SMTP acceptance while the worker is busy (messages / seconds until the last 250);
- end to end (messages / seconds until every message is stored on a ticket, its ack queued);
- the p99 (and median) from a message's 250 to the moment it is visible in the database, under
  that burst and at a paced 100 msg/s (``--paced``).

"Visible" is seen by polling the database from outside (every 20 ms), so it includes the commit.

    .venv/bin/python bench/intake.py [-n 1500] [--clients 8] [--no-postgres]
"""

from __future__ import annotations

import argparse
import shutil
import smtplib
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from email.utils import make_msgid
from pathlib import Path

from aiosmtpd.controller import Controller
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mailgen import make_mail  # noqa: E402
from tests.servers.daemon import DaemonProcess, free_port  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
SUPPORT = "support@example.com"


def messages(n: int, tag: str) -> list[tuple[str, bytes]]:
    """N messages: every third one a reply (by In-Reply-To) to an earlier new one."""
    out: list[tuple[str, bytes]] = []
    firsts: list[str] = []
    for i in range(n):
        mid = make_msgid(domain=f"{tag}.bench.test")
        if i % 3 == 2 and firsts:
            raw = make_mail(
                subject=f"Re: question {i}",
                message_id=mid,
                in_reply_to=firsts[(i * 7) % len(firsts)],
                sender=f"c{i % 50}@bench.test",
                to=SUPPORT,
                body="Thanks, one more detail.\n\n> quoted\n",
            )
        else:
            topic = ("invoice refund", "pricing quote", "login error")[i % 3]
            raw = make_mail(
                subject=f"Question {i}: {topic}",
                message_id=mid,
                sender=f"Customer {i} <c{i}@bench.test>",
                to=SUPPORT,
                body=f"Hello,\nI have a question about {topic}.\n" * 10,
            )
            firsts.append(mid)
        out.append((mid.strip("<>"), raw))
    return out


def send_all(
    port: int, batch: list[tuple[str, bytes]], clients: int, rate: float | None = None
) -> tuple[float, dict[str, float]]:
    """Send from ``clients`` threads (paced to ``rate`` msg/s in total if given).

    Returns (seconds until the last 250, {message_id: perf_counter() at its 250})."""
    acked: dict[str, float] = {}
    lock = threading.Lock()
    tempfails = [0]
    chunks = [batch[i::clients] for i in range(clients)]
    start = time.perf_counter()

    def client(k: int, chunk: list[tuple[str, bytes]]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
            for j, (mid, raw) in enumerate(chunk):
                if rate is not None:
                    due = start + (j * clients + k) / rate
                    time.sleep(max(0.0, due - time.perf_counter()))
                while True:  # a 4xx is retried, as a real sending server would
                    try:
                        smtp.sendmail("c@bench.test", [SUPPORT], raw)
                        break
                    except smtplib.SMTPResponseException as exc:
                        if not 400 <= exc.smtp_code < 500:
                            raise
                        with lock:
                            tempfails[0] += 1
                        time.sleep(0.1)
                now = time.perf_counter()
                with lock:
                    acked[mid] = now

    threads = [threading.Thread(target=client, args=(k, c)) for k, c in enumerate(chunks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if tempfails[0]:
        print(f"  ({tempfails[0]} temporary failures (4xx), each retried after 0.1 s)")
    return time.perf_counter() - start, acked


class Ok250:
    async def handle_DATA(self, server, session, envelope) -> str:
        return "250 OK"


def bare(batch: list[tuple[str, bytes]], clients: int) -> float:
    port = free_port()
    controller = Controller(Ok250(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        seconds, _ = send_all(port, batch, clients)
    finally:
        controller.stop()
    return len(batch) / seconds


class Watcher:
    """Polls the database for newly stored inbound messages; records when each was first seen."""

    def __init__(self, query: Callable[[int], list[tuple[int, str]]]) -> None:
        self.query = query
        self.seen: dict[str, float] = {}
        self.last = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                rows = self.query(self.last)
            except Exception:  # a locked SQLite file: look again
                rows = []
            now = time.perf_counter()
            for row_id, mid in rows:
                self.seen.setdefault(mid, now)
                self.last = max(self.last, row_id)
            time.sleep(0.02)

    def wait_for(self, mids: list[str], timeout: float = 1800) -> float:
        deadline = time.perf_counter() + timeout
        while any(m not in self.seen for m in mids):
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{sum(m not in self.seen for m in mids)} never stored")
            time.sleep(0.02)
        return max(self.seen[m] for m in mids)


def sqlite_query(path: Path) -> Callable[[int], list[tuple[int, str]]]:
    conn: list[sqlite3.Connection] = []

    def query(after: int) -> list[tuple[int, str]]:
        if not conn:
            conn.append(sqlite3.connect(path, timeout=30))
        return (
            conn[0]
            .execute(
                "SELECT id, message_id FROM message WHERE direction = 'in' AND id > ?", (after,)
            )
            .fetchall()
        )

    return query


def pg_query(url: str) -> Callable[[int], list[tuple[int, str]]]:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)

    def query(after: int) -> list[tuple[int, str]]:
        return conn.execute(
            "SELECT id, message_id FROM message WHERE direction = 'in' AND id > %s", (after,)
        ).fetchall()

    return query


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[int(p * (len(ordered) - 1))]


def ticketd(
    batch: list[tuple[str, bytes]], paced: list[tuple[str, bytes]], clients: int, db: str
) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="ticketd-bench-"))
    port = free_port()
    pg_name = None
    if db == "sqlite":
        url = "sqlite:///var/ticketd.db"
    else:
        import psycopg

        pg_name = f"ticketd_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{pg_name}"')
        url = f"postgresql://postgres@127.0.0.1:5432/{pg_name}"
    config = {
        "instance": {
            "ticket_prefix": "BENCH",
            "support_addresses": [SUPPORT],
            "data_dir": "var",
        },
        "database": {"url": url},
        "smtp_in": {"host": "127.0.0.1", "port": port},
        "smtp_out": {"transport": "file", "directory": "var/sent"},
        "notify": {"acknowledge": True},
        "loop": {"auto_replies_per_hour": 1000000},
        "rules_dir": str(tmp / "rules"),
        "templates_dir": str(ROOT / "templates"),
        "log_level": "warning",
    }
    shutil.copytree(ROOT / "rules", tmp / "rules")  # the shipped rules
    path = tmp / "config.yaml"
    with path.open("w") as fh:
        YAML().dump(config, fh)
    daemon = DaemonProcess(path, port, tmp / "daemon.log").start()
    try:
        query = sqlite_query(tmp / "var" / "ticketd.db") if db == "sqlite" else pg_query(url)
        watcher = Watcher(query)
        watcher.thread.start()
        start = time.perf_counter()
        seconds, acked = send_all(port, batch, clients)
        done = watcher.wait_for([mid for mid, _ in batch])
        total = done - start
        burst = [watcher.seen[mid] - t for mid, t in acked.items()]
        _, paced_acked = send_all(port, paced, clients, rate=100.0)
        watcher.wait_for([mid for mid, _ in paced])
        steady = [watcher.seen[mid] - t for mid, t in paced_acked.items()]
        watcher.stop.set()
        watcher.thread.join()
    finally:
        daemon.stop()
        if pg_name is not None:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (pg_name,),
                )
                admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}"')
    return {
        "accept_rate": len(batch) / seconds,
        "end_to_end_rate": len(batch) / total,
        "median": statistics.median(burst),
        "p99": percentile(burst, 0.99),
        "paced_median": statistics.median(steady),
        "paced_p99": percentile(steady, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", type=int, default=1500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--paced", type=int, default=500, help="messages sent at 100 msg/s")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    base = bare(messages(args.n, "bare"), args.clients)
    print(f"bare aiosmtpd (250 only):      {base:8.1f} msg/s")
    for db in ("sqlite",) if args.no_postgres else ("sqlite", "postgresql"):
        r = ticketd(messages(args.n, db), messages(args.paced, db + "p"), args.clients, db)
        print(
            f"ticketd {db}, acks, rules: {r['accept_rate']:8.1f} msg/s accepted while busy "
            f"({r['accept_rate'] / base:.3f}x bare), "
            f"{r['end_to_end_rate']:.1f} msg/s end to end ({r['end_to_end_rate'] / base:.3f}x); "
            f"250 -> stored in the burst: median {r['median']:.2f} s, p99 {r['p99']:.2f} s; "
            f"at 100 msg/s: median {r['paced_median'] * 1000:.0f} ms, "
            f"p99 {r['paced_p99'] * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
