"""Delivering webhooks: signed POSTs, at least once, in order per target and ticket.

The sender runs in the daemon on a thread and event loop of its own, like the outbox sender,
so a receiver that hangs costs a pending task and never the worker or the mail. A delivery is
claimed only when it is the oldest queued one of its target and ticket, so one ticket's events
reach a receiver in the order they happened, also after the receiver was down for a while; other
tickets and targets go on meanwhile (``webhook_delivery.max_in_flight`` at once).

Answers: 2xx is sent. Connection errors, timeouts (``timeout_seconds`` of the hook), 408, 429
(after its ``Retry-After``) and 5xx are retried with exponential backoff
(``webhook_delivery.first_retry_seconds`` doubling up to ``max_retry_seconds``) until the hook's
``max_attempts``; then, and at once for any other answer (a redirect is never followed), the
delivery is ``failed`` with the last answer. Every attempt carries the same ``webhook-id`` and a
fresh ``webhook-timestamp``, signed as Standard Webhooks says (the ``standardwebhooks`` library).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from maild.app import App
from maild.config import Config
from maild.outbox.sender import backoff
from maild.store import claims
from maild.store.db import write_tx
from maild.store.models import WebhookDelivery, WebhookPending, utcnow
from maild.webhooks.guard import RefusedDestination, make_resolver
from maild.webhooks.queue import FanOut
from maild.webhooks.targets import Target

log = logging.getLogger("ticketd.webhooks")
QUEUED, SENT, FAILED = "queued", "sent", "failed"
RETRY_STATUSES = frozenset({408, 429})
FAN_OUT_BATCH = 50  # events per fan-out transaction
SCAN_ROWS = 5000  # queued rows looked at per claim to find the head of each target and ticket
STOP_GRACE_SECONDS = 5.0  # on a stop, how long posts in flight may take to be answered


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retry: bool
    status: int | None
    detail: str
    retry_after: float | None = None


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date), or None."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def judge(status: int, reason: str, text: str, headers: Mapping[str, str]) -> Outcome:
    """What an HTTP answer means for a delivery."""
    detail = f"{status} {reason}".strip()
    if text.strip():
        detail += f": {text.strip()[:300]}"
    if 200 <= status < 300:
        return Outcome(True, False, status, detail)
    if 300 <= status < 400:
        where = headers.get("Location", "")
        return Outcome(False, False, status, f"{detail} (redirect to {where!r} not followed)")
    if status in RETRY_STATUSES or status >= 500:
        wait = retry_after(headers.get("Retry-After")) if status == 429 else None
        return Outcome(False, True, status, detail, wait)
    return Outcome(False, False, status, detail)


def signed_headers(
    target: Target, webhook_id: str, body: bytes, now: dt.datetime
) -> dict[str, str]:
    """Content type, user agent and, with a secret, the Standard Webhooks headers."""
    headers = {"Content-Type": "application/json", "User-Agent": "ticketd-webhooks/1"}
    if target.secret:
        from standardwebhooks.webhooks import Webhook

        stamp = now.replace(tzinfo=dt.UTC)
        headers["webhook-id"] = webhook_id
        headers["webhook-timestamp"] = str(int(stamp.timestamp()))
        headers["webhook-signature"] = Webhook(target.secret).sign(webhook_id, stamp, body)
    return headers


class WebhookSender:
    """Claims due deliveries and sends them; ``run_once`` is one complete pass (tests, CLI)."""

    def __init__(self, app: App, targets: Mapping[str, Target]) -> None:
        self.app = app
        self.targets = dict(targets)
        hooks = [t for k, t in self.targets.items() if k.startswith("hook:")]
        channels = {k: t for k, t in self.targets.items() if not k.startswith("hook:")}
        self.fan_out = FanOut(app, hooks, channels)
        self.id = claims.worker_id("webhooks")
        self.cfg = app.config.webhook_delivery
        self._sessions: dict[bool, Any] = {}

    # -- the database side --------------------------------------------------------------------

    def claim(self, room: int) -> list[WebhookDelivery]:
        """Lease up to ``room`` deliveries, each the oldest queued one of its target and ticket."""
        if room <= 0:
            return []
        now = self.app.clock.now()
        with write_tx(self.app.db):
            rows = (
                WebhookDelivery.select(
                    WebhookDelivery.id,
                    WebhookDelivery.target,
                    WebhookDelivery.ticket,
                    WebhookDelivery.next_attempt_at,
                    WebhookDelivery.claimed_until,
                )
                .where(WebhookDelivery.status == QUEUED)
                .order_by(WebhookDelivery.id)
                .limit(SCAN_ROWS)
            )
            seen: set[tuple[str, int | None]] = set()
            heads: list[int] = []
            for row in rows:
                key = (row.target, row.ticket)
                if key in seen:
                    continue
                seen.add(key)
                free = row.claimed_until is None or row.claimed_until < now
                if row.next_attempt_at <= now and free:
                    heads.append(row.id)
                    if len(heads) >= room:
                        break
            if not heads:
                return []
            lease = now + dt.timedelta(seconds=180)
            WebhookDelivery.update(
                claimed_by=self.id, claimed_until=lease, attempts=WebhookDelivery.attempts + 1
            ).where(
                WebhookDelivery.id.in_(heads)
                & (WebhookDelivery.status == QUEUED)
                & (WebhookDelivery.claimed_until.is_null() | (WebhookDelivery.claimed_until < now))
            ).execute()
        return list(
            WebhookDelivery.select()
            .where(WebhookDelivery.id.in_(heads) & (WebhookDelivery.claimed_by == self.id))
            .order_by(WebhookDelivery.id)
        )

    def record(self, row: WebhookDelivery, outcome: Outcome) -> str:
        """Store what became of one attempt; returns the delivery's new status."""
        return self.record_all([(row, outcome)])[0]

    def record_all(self, results: list[tuple[WebhookDelivery, Outcome]]) -> list[str]:
        """Store what became of finished attempts, in one transaction; their new statuses."""
        now = self.app.clock.now()
        statuses = []
        with write_tx(self.app.db):
            for row, outcome in results:
                fields, status = self._result(row, outcome, now)
                WebhookDelivery.update(**fields).where(WebhookDelivery.id == row.id).execute()
                statuses.append(status)
        for (row, outcome), status in zip(results, statuses, strict=True):
            level = logging.INFO if status == SENT else logging.WARNING
            log.log(level, "webhook #%s %s (%s): %s", row.id, status, row.target, outcome.detail)
        return statuses

    def _result(
        self, row: WebhookDelivery, outcome: Outcome, now: dt.datetime
    ) -> tuple[dict[str, Any], str]:
        target = self.targets.get(row.target)
        fields: dict[str, Any] = {
            "claimed_by": None,
            "claimed_until": None,
            "last_status": outcome.status,
            "last_error": None if outcome.ok else outcome.detail[:2000],
        }
        if outcome.ok:
            fields.update(status=SENT, sent_at=now)
            return fields, SENT
        if outcome.retry and target is not None and row.attempts < target.max_attempts:
            delay = backoff(row.attempts, self.cfg.first_retry_seconds, self.cfg.max_retry_seconds)
            if outcome.retry_after is not None:
                delay = min(max(delay, outcome.retry_after), self.cfg.max_retry_seconds)
            fields["next_attempt_at"] = now + dt.timedelta(seconds=delay)
            return fields, QUEUED
        if outcome.retry:
            fields["last_error"] = f"gave up after {row.attempts} attempts: {outcome.detail}"
        fields["status"] = FAILED
        return fields, FAILED

    # -- the HTTP side --------------------------------------------------------------------------

    def _session(self, allow_private: bool) -> Any:
        import aiohttp

        session = self._sessions.get(allow_private)
        if session is None or session.closed:
            resolver = None if allow_private else make_resolver()
            connector = aiohttp.TCPConnector(resolver=resolver, limit=self.cfg.max_in_flight)
            session = aiohttp.ClientSession(connector=connector, trust_env=False)
            self._sessions[allow_private] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    async def send(self, row: WebhookDelivery) -> Outcome:
        """One attempt; never raises."""
        import aiohttp

        target = self.targets.get(row.target)
        if target is None:
            return Outcome(False, False, None, f"{row.target} is no longer configured")
        body = bytes(row.body)
        try:
            if target.key.startswith("slack:"):
                return await self._slack(target, body)
            # The wall clock: receivers check the timestamp against theirs (5 minutes).
            headers = signed_headers(target, row.webhook_id, body, utcnow())
            timeout = aiohttp.ClientTimeout(total=target.timeout_seconds)
            async with self._session(target.allow_private).post(
                target.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                text = await response.text(errors="replace")
                return judge(response.status, response.reason or "", text, response.headers)
        except RefusedDestination as exc:
            return Outcome(False, False, None, f"refused: {exc} (allow_private is not set)")
        except TimeoutError:
            return Outcome(False, True, None, f"timed out after {target.timeout_seconds:g}s")
        except aiohttp.ClientError as exc:
            return Outcome(False, True, None, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug or an odd row: retried with backoff, never a spin
            log.exception("webhook #%s: unexpected error", row.id)
            return Outcome(False, True, None, f"{type(exc).__name__}: {exc}")

    async def _slack(self, target: Target, body: bytes) -> Outcome:
        """``chat.postMessage`` through slack-sdk at the channel's ``api_url``."""
        import json

        from slack_sdk.errors import SlackApiError
        from slack_sdk.web.async_client import AsyncWebClient

        client = AsyncWebClient(
            token=target.bot_token, base_url=target.url, timeout=int(target.timeout_seconds)
        )
        try:
            answer = await client.chat_postMessage(**json.loads(body))
        except SlackApiError as exc:
            status = exc.response.status_code
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            detail = f"{status} {error or exc}"
            if status == 429 or status >= 500:
                wait = retry_after(exc.response.headers.get("Retry-After"))
                return Outcome(False, True, status, detail, wait)
            return Outcome(False, False, status, detail)
        finally:
            session = getattr(client, "session", None)
            if session is not None:
                await session.close()
        return Outcome(True, False, answer.status_code, f"{answer.status_code} ok")

    # -- passes -----------------------------------------------------------------------------------

    async def serve(self, stop: threading.Event, wake: threading.Event | None = None) -> int:
        """Deliver until ``stop`` (or, with ``stop`` already set, one complete pass).

        The fan-out (building payloads from the tickets) runs on a worker thread in batches, so
        posting the deliveries already made goes on meanwhile.
        """
        once = stop.is_set()
        flying: dict[asyncio.Task[Outcome], WebhookDelivery] = {}
        fanning: asyncio.Future[int] | None = None
        handled = 0
        try:
            while True:
                if fanning is not None and fanning.done():
                    fanning.result()  # an error in the fan-out is the pass's error
                    fanning = None
                if fanning is None and WebhookPending.select().exists():  # a read, no lock
                    fanning = asyncio.ensure_future(
                        asyncio.to_thread(self._fan_out_batch, FAN_OUT_BATCH)
                    )
                for row in self.claim(self.cfg.max_in_flight - len(flying)):
                    flying[asyncio.ensure_future(self.send(row))] = row
                if not flying and fanning is None:
                    if once or stop.is_set():
                        return handled
                    await asyncio.to_thread(_wait, wake, self.cfg.poll_seconds)
                    continue
                waiting: set[asyncio.Future[Any]] = set(flying)
                if fanning is not None:
                    waiting.add(fanning)
                await asyncio.wait(
                    waiting, timeout=self.cfg.poll_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                await asyncio.sleep(0)  # let answers that are arriving finish: one commit for all
                done = [task for task in flying if task.done()]
                if done:
                    self.record_all([(flying.pop(task), task.result()) for task in done])
                    handled += len(done)
                if stop.is_set() and not once:
                    await self._finish_flying(flying)
                    break
        finally:
            for task, row in flying.items():  # stopping: these stay queued, the lease expires
                task.cancel()
                log.info("webhook #%s interrupted by the stop; it is sent again later", row.id)
            if fanning is not None:
                await asyncio.gather(fanning, return_exceptions=True)
            await self.close()
        return handled

    async def _finish_flying(self, flying: dict[asyncio.Task[Outcome], WebhookDelivery]) -> None:
        """On a stop, give the posts in flight a few seconds to get their answers and record
        them, so a receiver that already took one is not sent it again after the restart."""
        if not flying:
            return
        await asyncio.wait(set(flying), timeout=STOP_GRACE_SECONDS)
        done = [task for task in flying if task.done() and not task.cancelled()]
        if done:
            self.record_all([(flying.pop(task), task.result()) for task in done])

    def _fan_out_batch(self, limit: int) -> int:
        self.app.db.connect(reuse_if_open=True)  # this thread's own connection
        return self.fan_out.run_once(limit)

    def run_once(self) -> int:
        """Fan out pending events and deliver everything that is due, waiting for the answers."""
        done = threading.Event()
        done.set()
        return asyncio.run(self.serve(done))


def _wait(wake: threading.Event | None, seconds: float) -> None:
    if wake is None:
        threading.Event().wait(seconds)
    elif wake.wait(seconds):
        wake.clear()


def load_targets(config: Config) -> dict[str, Target]:
    """Every delivery target of the config (ConfigError names a bad or missing key)."""
    from maild.webhooks.channels import channel_targets
    from maild.webhooks.targets import load_hooks

    targets = {t.key: t for t in load_hooks(config)}
    targets.update(channel_targets(config))
    return targets


def start_webhook_thread(
    app: App, targets: Mapping[str, Target], stop: threading.Event, wake: threading.Event
) -> list[threading.Thread]:
    """The daemon's delivery loop on a thread and event loop of its own."""

    def loop() -> None:
        app.db.connect(reuse_if_open=True)
        released = claims.release_dead_claims(app.db, WebhookDelivery, QUEUED)
        if released:
            log.info("released %d webhook claims left by stopped processes", released)
        sender = WebhookSender(app, targets)
        while not stop.is_set():
            try:
                asyncio.run(sender.serve(stop, wake))
            except Exception:
                log.exception("webhook pass failed")
                stop.wait(app.config.webhook_delivery.poll_seconds)
        app.db.close()

    thread = threading.Thread(target=loop, name="webhooks", daemon=True)
    thread.start()
    return [thread]
