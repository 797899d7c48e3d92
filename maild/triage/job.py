"""Retraining the triage model as a periodic job of ``ticketd run`` (off unless
``triage.retrain_days`` is set): every hour the job compares the saved model's training date with
the clock, so a daemon that was down retrains on its next check instead of waiting a whole
interval. Each instance trains the model in its own data dir. A training that cannot learn
(too few resolved tickets) is logged and tried again at the next check."""

from __future__ import annotations

import datetime as dt
import json
import logging

from maild.app import App
from maild.jobs.runner import Jobs
from maild.store.db import connection
from maild.triage.data import from_tickets
from maild.triage.model import TriageError, model_dir, save, train

log = logging.getLogger("ticketd.triage")
CHECK_SECONDS = 3600


def trained_at(app: App) -> dt.datetime | None:
    try:
        meta = json.loads((model_dir(app.data_dir) / "model.json").read_text(encoding="utf-8"))
        return dt.datetime.fromisoformat(str(meta["trained_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def retrain_if_due(app: App, now: dt.datetime) -> bool:
    """Retrain when the model is missing or older than ``triage.retrain_days``; True if it did."""
    days = app.config.triage.retrain_days
    last = trained_at(app)
    if days <= 0 or (last is not None and now - last < dt.timedelta(days=days)):
        return False
    try:
        model = train(from_tickets(), now)
    except TriageError as exc:
        log.warning("triage: not retrained: %s", exc)
        return False
    save(model, app.data_dir)
    log.info("triage: retrained on %d resolved tickets", model.examples)
    return True


def schedule_retrain(app: App, jobs: Jobs) -> None:
    if app.config.triage.retrain_days <= 0:
        return

    def run() -> None:
        with connection(app.db):
            retrain_if_due(app, app.clock.now())

    jobs.every(CHECK_SECONDS, "triage-retrain", run, cluster_once=False)
