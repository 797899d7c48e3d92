"""Benchmark SMTP intake: ticketd (SQLite, real daemon) against a bare aiosmtpd that only says 250.

Sends N messages (new tickets and replies mixed) from several concurrent clients to each server,
and prints: both acceptance rates and their ratio, ticketd's end-to-end rate (until every message
is stored on a ticket), and the median and p99 time from 250 to the ticket message being stored,
under that burst (mostly time queued behind the worker) and for messages sent one at a time.
Runs ticketd twice: with acknowledgements (file transport) and without.

    .venv/bin/python bench/intake.py [-n 2000] [--clients 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import smtplib
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from email.utils import make_msgid
from pathlib import Path

from aiosmtpd.controller import Controller
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mailgen import make_mail  # noqa: E402
from tests.servers.daemon import DaemonProcess, free_port  # noqa: E402


def messages(n: int) -> list[tuple[str, bytes]]:
    """N messages: every fourth one a reply (by In-Reply-To) to an earlier new one."""
    out: list[tuple[str, bytes]] = []
    firsts: list[str] = []
    for i in range(n):
        mid = make_msgid(domain="bench.test")
        if i % 4 == 3 and firsts:
            raw = make_mail(
                subject=f"Re: question {i}",
                message_id=mid,
                in_reply_to=firsts[i % len(firsts)],
                sender=f"c{i % 50}@bench.test",
                body="Thanks, one more detail.\n\n> quoted\n",
            )
        else:
            raw = make_mail(
                subject=f"Question {i}",
                message_id=mid,
                sender=f"Customer {i} <c{i}@bench.test>",
                body="Hello,\n" * 20,
            )
            firsts.append(mid)
        out.append((mid.strip("<>"), raw))
    return out


def send_all(port: int, batch: list[tuple[str, bytes]], clients: int) -> tuple[float, dict]:
    """Send from ``clients`` threads; return (seconds, {message_id: utc time of 250})."""
    acked: dict[str, dt.datetime] = {}
    lock = threading.Lock()
    chunks = [batch[i::clients] for i in range(clients)]

    def client(chunk: list[tuple[str, bytes]]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            for mid, raw in chunk:
                smtp.sendmail("c@bench.test", ["support@example.com"], raw)
                now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                with lock:
                    acked[mid] = now

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
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


def ticketd(batch: list[tuple[str, bytes]], clients: int, acknowledge: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="ticketd-bench-"))
    port = free_port()
    config = {
        "instance": {
            "ticket_prefix": "BENCH",
            "support_addresses": ["support@example.com"],
            "data_dir": "var",
        },
        "database": {"url": "sqlite:///var/ticketd.db"},
        "smtp_in": {"host": "127.0.0.1", "port": port},
        "smtp_out": {"transport": "file", "directory": "var/sent"},
        "notify": {"acknowledge": acknowledge},
        "loop": {"auto_replies_per_hour": 1000000},
        "rules_dir": "rules",  # empty: the figure is intake and storage, not routing
        "templates_dir": str(ROOT / "templates"),
        "log_level": "warning",
    }
    (tmp / "rules").mkdir()
    path = tmp / "config.yaml"
    with path.open("w") as fh:
        YAML().dump(config, fh)
    daemon = DaemonProcess(path, port, tmp / "daemon.log").start()
    try:
        start = time.perf_counter()
        seconds, acked = send_all(port, batch, clients)
        db = sqlite3.connect(tmp / "var" / "ticketd.db", timeout=30)
        while db.execute("SELECT count(*) FROM message WHERE direction = 'in'").fetchone()[0] < len(
            batch
        ):
            time.sleep(0.05)
        total = time.perf_counter() - start
        stored = dict(
            db.execute(
                "SELECT message_id, created_at FROM message WHERE direction = 'in'"
            ).fetchall()
        )
        single = one_at_a_time(port, db, samples=50)
        db.close()
    finally:
        daemon.stop()
    latencies = sorted(
        (dt.datetime.fromisoformat(stored[mid]) - acked[mid]).total_seconds() for mid in acked
    )
    return {
        "accept_rate": len(batch) / seconds,
        "end_to_end_rate": len(batch) / total,
        "median": statistics.median(latencies),
        "p99": latencies[int(0.99 * (len(latencies) - 1))],
        "single_median": statistics.median(single),
        "single_p99": single[int(0.99 * (len(single) - 1))],
    }


def one_at_a_time(port: int, db: sqlite3.Connection, samples: int) -> list[float]:
    """Seconds from 250 to the ticket message being stored, one message at a time (no queue)."""
    out = []
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        for i in range(samples):
            mid = make_msgid(domain="bench.test")
            raw = make_mail(subject=f"Single {i}", message_id=mid, sender=f"s{i}@bench.test")
            smtp.sendmail("c@bench.test", ["support@example.com"], raw)
            acked = time.perf_counter()
            while not db.execute(
                "SELECT 1 FROM message WHERE message_id = ?", (mid.strip("<>"),)
            ).fetchone():
                time.sleep(0.001)
            out.append(time.perf_counter() - acked)
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    batch = messages(args.n)
    base = bare(batch, args.clients)
    print(f"bare aiosmtpd (250 only):   {base:8.1f} msg/s")
    for acknowledge in (False, True):
        r = ticketd(batch, args.clients, acknowledge)
        label = "ticketd, acks on (file)" if acknowledge else "ticketd, acks off"
        print(
            f"{label + ':':27} {r['accept_rate']:8.1f} msg/s accepted "
            f"(ratio to bare {r['accept_rate'] / base:.3f}), "
            f"{r['end_to_end_rate']:.1f} msg/s stored end to end; "
            f"250 -> stored under that load: median {r['median'] * 1000:.0f} ms, "
            f"p99 {r['p99'] * 1000:.0f} ms; one message at a time: median "
            f"{r['single_median'] * 1000:.0f} ms, p99 {r['single_p99'] * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
