"""Archive import benchmark: ``ticketd import mbox --archive`` against ``ticketd inject``.

In one run, each on its own SQLite database in a temporary folder:

1. import: a generated mbox of N messages (default 10,000; a conversation every few messages, so
   threading appends as well as opens tickets) through ``ticketd import mbox PATH --archive``;
2. inject: the same N messages as files, through one ``ticketd inject FILE...`` (the pipe intake
   with the full pipeline: rules, SLA, acknowledgements).

Prints messages per second of each and the ratio import/inject. Both are real subprocesses of the
CLI, timed from start to exit. Run: ``python bench/import.py [--count N]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from email.utils import format_datetime
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import base_config  # noqa: E402
from tests.mailgen import make_mail  # noqa: E402


def messages(count: int) -> list[bytes]:
    start = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
    out = []
    for n in range(count):
        thread = n - n % 4  # every 4 messages: one question and three replies
        headers = {}
        if n != thread:
            headers = {"In-Reply-To": f"<bench{thread}@customer.test>"}
        msg = make_mail(
            subject=f"Case {thread}" if n == thread else f"Re: Case {thread}",
            sender=f"Customer {thread % 200} <c{thread % 200}@customer.test>",
            message_id=f"<bench{n}@customer.test>",
            headers=headers,
            body=f"Message {n} of the benchmark.\n",
        ).replace(b"\r\n", b"\n")
        head, _, body = msg.partition(b"\n\n")
        lines = [x for x in head.split(b"\n") if not x.lower().startswith(b"date:")]
        lines.append(b"Date: " + format_datetime(start + dt.timedelta(minutes=n)).encode())
        out.append(b"\n".join(lines) + b"\n\n" + body)
    return out


def setup(folder: Path) -> Path:
    folder.mkdir(parents=True)
    data = base_config(folder, f"sqlite:///{folder / 'var' / 'ticketd.db'}")
    config = folder / "config.yaml"
    with config.open("w") as fh:
        YAML().dump(data, fh)
    return config


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "maild.cli.main", *args], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed: {done.stderr[-2000:]}")
    print(f"  {' '.join(args[:2])}: {done.stdout.strip().splitlines()[-1]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    mails = messages(args.count)
    with tempfile.TemporaryDirectory(prefix="ticketd-bench-import-") as tmp:
        root = Path(tmp)
        config = setup(root / "import")
        mbox = root / "archive.mbox"
        with mbox.open("wb") as fh:
            for raw in mails:
                fh.write(b"From bench@customer.test Tue Jan  1 00:00:00 2019\n" + raw + b"\n")
        importing = timed(["import", "mbox", str(mbox), "--archive", "--config", str(config)])
        config = setup(root / "inject")
        files = root / "files"
        files.mkdir()
        paths = []
        for n, raw in enumerate(mails):
            path = files / f"{n:06d}.eml"
            path.write_bytes(raw)
            paths.append(str(path))
        injecting = timed(["inject", "--config", str(config), *paths])
    rate_import = args.count / importing
    rate_inject = args.count / injecting
    print(f"messages: {args.count}")
    print(f"import --archive: {importing:.1f} s, {rate_import:.1f} messages/s")
    print(f"inject:           {injecting:.1f} s, {rate_inject:.1f} messages/s")
    print(f"ratio import/inject: {rate_import / rate_inject:.2f}")


if __name__ == "__main__":
    main()
