"""Nothing acknowledged is lost and nothing is doubled when the worker process or the whole daemon
is killed with SIGKILL at random moments of a burst, again and again (issue 13).

Four SMTP clients send without pause while the test kills, 24 times at random intervals, either the
worker process (the daemon restarts it) or the daemon itself (the test starts it again; its
orphaned worker notices and stops). At the end every message that got 250 is stored exactly once,
no message is stored twice, every new ticket has exactly one acknowledgement queued, and the spool
is empty.
"""

from __future__ import annotations

import os
import random
import signal
import smtplib
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

from ruamel.yaml import YAML

from tests.conftest import base_config
from tests.mailgen import make_mail
from tests.servers.daemon import DaemonProcess, free_port, wait_until

KILLS = 24


def children_of(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(name))
    return found


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_sigkill_of_worker_or_daemon_during_a_burst_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    port = free_port()
    data = base_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'var' / 'ticketd.db'}",
        smtp_in={"host": "127.0.0.1", "port": port},
        worker={"poll_seconds": 0.2},
        loop={"auto_replies_per_hour": 1000000},
        notify={"acknowledge": True},
    )
    config = tmp_path / "config.yaml"
    with config.open("w") as fh:
        YAML().dump(data, fh)
    daemon = DaemonProcess(config, port, tmp_path / "daemon.log").start()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    orphans: list[int] = []

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                    while not stop.is_set():
                        mid, sender = f"k{n}-{i}@customer.test", f"c{n}-{i}@customer.test"
                        i += 1
                        raw = make_mail(subject=f"c{n} m{i}", message_id=f"<{mid}>", sender=sender)
                        smtp.sendmail(sender, ["support@example.com"], raw)
                        with lock:
                            acknowledged.append(mid)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.05)  # the server died under us: that message was never acknowledged

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    rng = random.Random(13)
    kills = Counter()
    try:
        while sum(kills.values()) < KILLS:
            time.sleep(rng.uniform(0.3, 1.5))
            assert daemon.proc is not None
            workers = children_of(daemon.proc.pid)
            if workers and rng.random() < 0.5:
                os.kill(workers[0], signal.SIGKILL)
                kills["worker"] += 1
                continue
            orphans.extend(workers)
            daemon.kill()
            kills["daemon"] += 1
            try:
                daemon.start()
            except RuntimeError as exc:
                raise AssertionError(f"no restart: {exc}\n{daemon.output()[-4000:]}") from None
        stop.set()
        for t in threads:
            t.join()
        db = sqlite3.connect(tmp_path / "var" / "ticketd.db", timeout=30)

        def settled() -> bool:
            pending = db.execute(
                "SELECT count(*) FROM spool_entry WHERE status != 'done'"
            ).fetchone()[0]
            stored = db.execute("SELECT count(*) FROM message WHERE direction = 'in'").fetchone()[0]
            return pending == 0 and stored >= len(acknowledged)

        try:
            wait_until(settled, timeout=60)
        except TimeoutError:
            left = db.execute(
                "SELECT status, claimed_by, attempts, count(*) FROM spool_entry"
                " WHERE status != 'done' GROUP BY 1, 2, 3"
            ).fetchall()
            raise AssertionError(f"not settled: {left}\n{daemon.output()[-3000:]}") from None
        assert daemon.proc is not None
        pid = daemon.proc.pid
        # After a last kill of the worker the daemon restarts it (an orphan may have done the rest).
        last_workers = wait_until(lambda: children_of(pid), timeout=20)
        assert len(last_workers) == 1, last_workers
    finally:
        stop.set()
        code = daemon.stop()
    assert code == 0, daemon.output()[-3000:]
    assert kills["worker"] >= 5 and kills["daemon"] >= 5, kills
    stored = Counter(
        row[0] for row in db.execute("SELECT message_id FROM message WHERE direction = 'in'")
    )
    acks = Counter(
        row[0] for row in db.execute("SELECT ticket_id FROM outbox_entry WHERE kind = 'auto'")
    )
    tickets = [row[0] for row in db.execute("SELECT id FROM ticket")]
    db.close()
    assert len(acknowledged) > 100
    missing = [mid for mid in acknowledged if stored[mid] != 1]
    assert not missing, missing[:10]
    assert max(stored.values()) == 1
    assert sorted(acks) == sorted(tickets) and set(acks.values()) == {1}
    log = daemon.output()
    assert "worker process" in log and "restarting it" in log
    assert gone(last_workers[0])  # SIGTERM stopped the worker process with the daemon
    wait_until(lambda: all(gone(pid) for pid in orphans), timeout=30)  # orphans stop by themselves
