"""IMAP intake benchmark: ticketd draining Dovecot, against bare imapclient and SMTP intake.

All in one run, on loopback, each part on its own SQLite database:

1. drain: N messages queued in a Dovecot INBOX, spooled by ``MailboxPoller.sync_once`` (fetch,
   spool, commit, flag \\Seen);
2. bare: the same N messages fetched with plain imapclient (BODY.PEEK[] in batches of 100);
3. smtp: N messages sent over one smtplib connection to ticketd's SMTP intake (spooled before 250);
4. latency: APPEND to spool row and APPEND to ticket stored, with the poller in IDLE and a worker
   woken by it (median and p99 over ``--samples`` messages, one at a time).

The goal is that draining costs no more than SMTP intake: the drain/smtp ratio should be >= 1.
Needs Dovecot (``apt-get install -y dovecot-imapd``) and root. Run: ``python bench/imap.py``.
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maild.app import App  # noqa: E402
from maild.config import config_from_dict  # noqa: E402
from maild.intake.imap import MailboxPoller, parse_mailboxes  # noqa: E402
from maild.intake.smtp import IntakeController  # noqa: E402
from maild.store.models import SpoolEntry, Ticket, database_proxy  # noqa: E402
from tests.mailgen import make_mail  # noqa: E402
from tests.servers.daemon import free_port  # noqa: E402
from tests.servers.dovecot import Dovecot, available  # noqa: E402

SUPPORT = "support@example.com"


@contextmanager
def opened_app(base: Path, **overrides: Any) -> Iterator[App]:
    """An App on a fresh SQLite file under ``base``."""
    base.mkdir(parents=True)
    (base / "rules").mkdir()  # no rules: the figure is intake and storage, not routing
    data: dict[str, Any] = {
        "instance": {"support_addresses": [SUPPORT], "data_dir": "var"},
        "rules_dir": "rules",
        "database": {"url": "sqlite:///var/ticketd.db"},
        "smtp_out": {"transport": "file", "directory": "var/sent"},
        **overrides,
    }
    app = App.open(config_from_dict(data, base_dir=base))
    try:
        yield app
    finally:
        app.close()
        database_proxy.initialize(None)


def mailbox(server: Dovecot, user: str, secret: Path, **over: Any) -> dict[str, Any]:
    secret.write_text(server.passwords[user], encoding="utf-8")
    return {
        "name": "support",
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": user,
        "password_file": str(secret),
        **over,
    }


def poller_of(app: App, **kwargs: Any) -> MailboxPoller:
    (mb,) = parse_mailboxes(app.config.imap.mailboxes, app.config.source)
    return MailboxPoller(app, mb, **kwargs)


def timed(run: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = run()
    return count, time.perf_counter() - started


# -- the parts ----------------------------------------------------------------------------------


def bench_bare(server: Dovecot, user: str) -> tuple[int, float]:
    def fetch_all() -> int:
        with server.client(user) as client:
            client.select_folder("INBOX", readonly=True)
            uids = client.search(["UID", "1:*"])
            fetched = 0
            for start in range(0, len(uids), 100):
                data = client.fetch(uids[start : start + 100], ["BODY.PEEK[]"])
                fetched += sum(1 for v in data.values() if b"BODY[]" in v)
            return fetched

    return timed(fetch_all)


def bench_drain(server: Dovecot, user: str, base: Path) -> tuple[int, float]:
    box = mailbox(server, user, base.with_suffix(".pw"))
    with opened_app(base, imap={"mailboxes": [box]}) as app:
        poller = poller_of(app)
        try:
            return timed(poller.sync_once)
        finally:
            poller.close()


def bench_smtp(messages: list[bytes], base: Path) -> tuple[int, float]:
    port = free_port()
    with opened_app(base, smtp_in={"host": "127.0.0.1", "port": port}) as app:
        controller = IntakeController(app)
        controller.start()
        try:

            def send_all() -> int:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                    for raw in messages:
                        client.sendmail("carol@customer.test", [SUPPORT], raw)
                return SpoolEntry.select().count()

            return timed(send_all)
        finally:
            controller.stop()


def bench_latency(server: Dovecot, samples: int, base: Path) -> dict[str, list[float]]:
    """Seconds from APPEND to spool row and to ticket, one message at a time, IDLE waking."""
    from maild.worker import make_worker

    user = server.add_user()
    box = mailbox(server, user, base.with_suffix(".pw"), poll_seconds=600)
    spooled, processed, stop = threading.Event(), threading.Event(), threading.Event()
    spooled_at: list[float] = []

    def on_spooled() -> None:
        spooled_at.append(time.perf_counter())
        spooled.set()

    with opened_app(base, imap={"mailboxes": [box]}) as app:
        poller = poller_of(app, on_spooled=on_spooled)
        worker = make_worker(app)

        def work() -> None:
            app.db.connect(reuse_if_open=True)
            while not stop.is_set():
                if spooled.wait(0.5):
                    spooled.clear()
                    worker.run_once()
                    processed.set()
            app.db.close()

        threads = [
            threading.Thread(target=poller.run, args=(stop,), daemon=True),
            threading.Thread(target=work, daemon=True),
        ]
        for thread in threads:
            thread.start()
        to_spool: list[float] = []
        to_ticket: list[float] = []
        try:
            for i in range(samples):
                if not poller.idling.wait(30):
                    raise RuntimeError("the poller did not enter IDLE")
                processed.clear()
                started = time.perf_counter()
                server.append(user, "INBOX", [make_mail(subject=f"latency {i}")])
                while Ticket.select().count() < i + 1:
                    if not processed.wait(30):
                        raise RuntimeError(f"message {i} did not become a ticket")
                    processed.clear()
                to_ticket.append(time.perf_counter() - started)
                to_spool.append(spooled_at[-1] - started)
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
    return {"spool": to_spool, "ticket": to_ticket}


# -- report -------------------------------------------------------------------------------------


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=50, help="IDLE latency samples")
    args = parser.parse_args(argv)
    if not available():
        print(
            "bench/imap.py needs dovecot (apt-get install -y dovecot-imapd) and root",
            file=sys.stderr,
        )
        return 2
    messages = [make_mail(subject=f"bench {i}") for i in range(args.messages)]
    with tempfile.TemporaryDirectory(prefix="ticketd-bench-") as tmp, Dovecot() as server:
        work = Path(tmp)
        user = server.add_user()
        appended, append_s = timed(lambda: server.append(user, "INBOX", messages) or len(messages))
        bare, bare_s = bench_bare(server, user)
        drained, drain_s = bench_drain(server, user, work / "drain")
        sent, smtp_s = bench_smtp(messages, work / "smtp")
        try:
            latency = bench_latency(server, args.samples, work / "latency")
        except ImportError as exc:
            latency = {}
            print(f"latency: skipped, the worker cannot be imported: {exc}", file=sys.stderr)
    assert bare == drained == sent == appended == args.messages, (bare, drained, sent, appended)
    rates = {"drain": drained / drain_s, "bare imapclient": bare / bare_s, "smtp": sent / smtp_s}
    size = sum(map(len, messages)) / len(messages)
    print(f"{args.messages} messages of {size:.0f} bytes; APPEND {appended / append_s:,.0f}/s")
    for name, rate in rates.items():
        print(f"  {name:<16} {rate:>9,.0f} messages/s")
    print(f"  drain / bare imapclient = {rates['drain'] / rates['bare imapclient']:.2f}")
    print(f"  drain / smtp            = {rates['drain'] / rates['smtp']:.2f}  (goal: >= 1)")
    for what, values in latency.items():
        print(
            f"  APPEND -> {what:<7} median {statistics.median(values) * 1000:6.0f} ms, "
            f"p99 {p99(values) * 1000:6.0f} ms ({len(values)} samples, IDLE)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
