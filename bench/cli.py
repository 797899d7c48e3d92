"""Benchmark the CLI's start-up: two read commands against a bare Python process running their SQL.

    .venv/bin/python bench/cli.py [--tickets 200] [--runs 15]

Builds a private instance (a copy of the shipped config, rules and templates in a temp folder)
and fills it through ``ticketd inject``: ``--tickets`` new tickets, the first with five customer
replies. Then, for each of

- ``ticketd tickets show ACME-1 --json``
- ``ticketd tickets list --json --limit 50``

it records every SQL statement the command sends (peewee's debug log, in a process of its own),
and times, interleaved, the real command as a subprocess and a bare ``python3 -I`` process that
connects with sqlite3, runs exactly those statements and prints their rows as JSON. The figure is
the ratio of the medians (the target is at most 4x), of wall-clock time and of CPU time (user +
system, which a loaded machine distorts less).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICKETD = str(Path(sys.executable).with_name("ticketd"))
# Both processes run as in a user's shell: with Python's bytecode cache. PYTHONDONTWRITEBYTECODE
# (set on some build machines) would make ticketd compile its own modules at every start.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

COMMANDS = (
    ("tickets show ACME-1 --json", ["tickets", "show", "ACME-1", "--json"]),
    ("tickets list --json --limit 50", ["tickets", "list", "--json", "--limit", "50"]),
)

# Runs the command in this process with peewee's query log captured; writes the statements.
RECORD = """
import json, logging, sys
from maild.cli.main import main
queries = []
class Capture(logging.Handler):
    def emit(self, record):
        if isinstance(record.msg, tuple):
            sql, params = record.msg
            queries.append([sql, list(params or ())])
log = logging.getLogger("peewee")
log.setLevel(logging.DEBUG)
log.addHandler(Capture())
log.propagate = False
out = sys.stdout
sys.stdout = open("/dev/null", "w")
status = main(sys.argv[2:])
sys.stdout = out
json.dump(queries, open(sys.argv[1], "w"))
sys.exit(status)
"""

# The baseline: stdlib sqlite3 with the same pragmas, the same statements, rows printed as JSON.
BARE = """
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=5)
for pragma in ("journal_mode=wal", "busy_timeout=5000", "foreign_keys=1", "synchronous=full"):
    con.execute("PRAGMA " + pragma)
out = []
for sql, params in json.load(open(sys.argv[2])):
    out.append(con.execute(sql, params).fetchall())
con.commit()
print(json.dumps(out, indent=2, default=str))
"""


def mail(n: int, *, subject: str, reply_to_ref: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {n % 37} <customer{n % 37}@customer{n % 5}.test>"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"Re: [{reply_to_ref}] {subject}" if reply_to_ref else subject
    msg["Message-ID"] = f"<bench-{n}-{reply_to_ref or 'new'}@customer.test>"
    msg["Date"] = "Thu, 03 Dec 2026 10:00:00 +0000"
    msg.set_content(
        f"Hello,\n\nthis is message {n}. The export to CSV stops half-way and the file it leaves "
        "behind cannot be opened. It worked last week.\n\nThanks,\nA customer\n"
    )
    return msg.as_bytes()


def build_instance(tmp: Path, tickets: int) -> Path:
    for folder in ("rules", "templates"):
        shutil.copytree(ROOT / folder, tmp / folder)
    shutil.copy(ROOT / "config.yaml", tmp / "config.yaml")
    mails = tmp / "mail"
    mails.mkdir()
    files = []
    for n in range(tickets):
        path = mails / f"{n:05d}.eml"
        path.write_bytes(mail(n, subject=f"Export stops half-way ({n})"))
        files.append(str(path))
    for n in range(5):
        path = mails / f"reply-{n}.eml"
        path.write_bytes(mail(1000 + n, subject="Export stops half-way (0)", reply_to_ref="ACME-1"))
        files.append(str(path))
    config = str(tmp / "config.yaml")
    subprocess.run([TICKETD, "inject", "--config", config, *files], check=True, capture_output=True)
    return tmp / "config.yaml"


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ticketd-bench-cli-") as name:
        tmp = Path(name)
        config = build_instance(tmp, opts.tickets)
        db = tmp / "var" / "ticketd.db"
        print(f"{opts.tickets} tickets; median of {opts.runs} runs each, interleaved")
        if "PYTHONDONTWRITEBYTECODE" in os.environ:
            print("(PYTHONDONTWRITEBYTECODE is set here; the timed processes run without it)")
        for label, args in COMMANDS:
            sql = tmp / f"{label.split()[1]}.json"
            cli = [TICKETD, *args[:2], "--config", str(config), *args[2:]]
            subprocess.run([sys.executable, "-c", RECORD, str(sql), *cli[1:]], cwd=tmp, check=True)
            count = len(json.loads(sql.read_text()))
            bare = [sys.executable, "-I", "-c", BARE, str(db), str(sql)]
            timed(cli, tmp), timed(bare, tmp)  # warm the page cache
            cli_s, bare_s = [], []
            for _ in range(opts.runs):
                cli_s.append(timed(cli, tmp))
                bare_s.append(timed(bare, tmp))
            for i, what in ((0, "wall"), (1, "cpu ")):
                c = statistics.median(r[i] for r in cli_s)
                b = statistics.median(r[i] for r in bare_s)
                print(
                    f"{what} ticketd {label:<32} {c * 1000:7.1f} ms   bare python "
                    f"({count} statements) {b * 1000:6.1f} ms   ratio {c / b:5.2f}x"
                )


if __name__ == "__main__":
    main()
