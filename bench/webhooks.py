"""Benchmark webhook delivery: events delivered per second to a real receiver on loopback
(tests/servers/receiver.py, which verifies every signature with ``standardwebhooks``), against a
bare aiohttp client posting the same bodies to the same receiver with the same concurrency, in
one run.

ticketd's figure covers everything the daemon's sender does: fanning the pending events out into
deliveries (payload built from the ticket), claiming the head of each hook and ticket, signing,
posting and recording the answer, on SQLite. The events come from N tickets made by the real
worker beforehand (not timed).

    .venv/bin/python bench/webhooks.py [-n 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

# bench/http.py would shadow the standard library's ``http`` package: drop this folder from the path.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def make_app(tmp: Path, url: str):
    from maild.app import App
    from maild.config import config_from_dict
    from tests.conftest import base_config

    os.environ["TICKETD_BENCH_WEBHOOK_SECRET"] = SECRET
    hook = {
        "name": "bench",
        "url": url,
        "secret_env": "TICKETD_BENCH_WEBHOOK_SECRET",
        "allow_private": True,
        "events": ["ticket.created"],
    }
    data = base_config(tmp, f"sqlite:///{tmp / 'var' / 'ticketd.db'}", webhooks=[hook])
    (tmp / "var").mkdir(exist_ok=True)
    return App.open(config_from_dict(data, base_dir=tmp))


def fill(app, n: int) -> None:
    from maild import spool
    from maild.worker import make_worker
    from tests.mailgen import make_mail

    for i in range(n):
        spool.enqueue(
            app.db,
            make_mail(subject=f"Bench ticket {i}", message_id=f"<bench{i}@customer.test>"),
            source="pipe",
        )
    make_worker(app).run_once()


async def bare(url: str, bodies: list[bytes], concurrency: int) -> float:
    import aiohttp

    queue = list(bodies)
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:

        async def client() -> None:
            while queue:
                body = queue.pop()
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as answer:
                    await answer.read()

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="events (one new ticket each)")
    args = parser.parse_args()
    from maild.store.models import WebhookDelivery
    from maild.webhooks.sender import WebhookSender, load_targets
    from tests.servers.receiver import Receiver

    receiver = Receiver(SECRET).start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            app = make_app(Path(folder), receiver.url)
            fill(app, args.n)
            sender = WebhookSender(app, load_targets(app.config))
            started = time.perf_counter()
            sender.run_once()
            ours = time.perf_counter() - started
            delivered = len(receiver.verified())
            sent = WebhookDelivery.select().where(WebhookDelivery.status == "sent").count()
            assert delivered == sent == args.n, (delivered, sent)
            bodies = [bytes(d.body) for d in WebhookDelivery.select(WebhookDelivery.body)]
            base = asyncio.run(
                bare(receiver.url, bodies, app.config.webhook_delivery.max_in_flight)
            )
            assert len(receiver.received) == 2 * args.n
            app.close()
    finally:
        receiver.stop()
    rate, base_rate = args.n / ours, args.n / base
    print(f"events: {args.n}, concurrency {app.config.webhook_delivery.max_in_flight}")
    print(f"ticketd webhooks: {rate:8.1f} events/s ({ours:.2f} s, fan-out + sign + post + record)")
    print(f"bare client     : {base_rate:8.1f} posts/s ({base:.2f} s, the same bodies)")
    print(f"ratio ticketd/bare: {rate / base_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
