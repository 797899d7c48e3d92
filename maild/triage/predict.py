"""The model the rules ask, loaded once and again when ``ticketd triage train`` replaced it.

:class:`TriageHolder` is what a rule's ``prediction`` condition and a ``team: predicted`` action
use: ``predict(text)`` gives ``{team: (value, confidence), priority: ..., tags: [...]}``, or None
when there is no usable model (no scikit-learn, none trained, corrupt, another version): then
``error`` says why, once in the log, and the rules that need it do not match. Never raises.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from maild.triage.model import TriageError, TriageModel, load, model_dir

log = logging.getLogger("ticketd.triage")


class TriageHolder:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | str | None = "unread"
        self._model: TriageModel | None = None
        self.error: str | None = None

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            st = (model_dir(self.data_dir) / "model.json").stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def model(self) -> TriageModel | None:
        with self._lock:
            stamp = self._current_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._model, self.error = load(self.data_dir), None
                    log.info("triage: model of %s loaded", self._model.trained_at)
                except TriageError as exc:
                    self._model, self.error = None, str(exc)
                    if stamp is not None:  # a model is there and refused: say so once
                        log.error("triage: %s; rules using predictions do not match", exc)
            return self._model

    def predict(self, text: str) -> dict[str, Any] | None:
        model = self.model()
        if model is None:
            return None
        try:
            return model.predict(text)
        except Exception as exc:  # a model that loads but cannot predict is no model
            self.error = f"the model failed to predict: {exc!r}"
            log.exception("triage: prediction failed")
            return None
