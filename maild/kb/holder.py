"""Keeping the index in line with ``kb_dir``, like the rules folder (:mod:`maild.routing.reload`).

``maybe_reload()`` compares the folder's fingerprint (file names, sizes and modification times)
with the one it last indexed; when it changed, the folder is read again and the index synced.
Unlike the rules, one broken file does not hold the others back: it is left out (so it is not
suggested with stale text), its error logged once with file:line and kept in ``errors``, and the
other articles stay searchable. ``ticketd run`` calls it every second and on SIGHUP; the worker
of ``ticketd inject`` and the CLI sync once when they start.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from peewee import Database

from maild.kb import index
from maild.kb.articles import Read, article_files, load_folder, stamp_of

log = logging.getLogger("ticketd.kb")

Fingerprint = tuple[tuple[str, str], ...]


class KbHolder:
    def __init__(self, db: Database, kb_dir: Path) -> None:
        self.db = db
        self.kb_dir = kb_dir
        self._lock = threading.Lock()
        self._indexed: Fingerprint | None = None
        self.errors: list[str] = []
        self.count = 0  # articles indexed
        self._read: Read = {}

    def fingerprint(self) -> Fingerprint:
        out = []
        for path in article_files(self.kb_dir):
            try:
                out.append((path.name, stamp_of(path)))
            except OSError:
                out.append((path.name, "?"))
        return tuple(out)

    def maybe_reload(self, *, force: bool = False) -> bool:
        """Sync the index if the folder changed (or ``force``); True when it was synced."""
        with self._lock:
            fingerprint = self.fingerprint()
            if not force and fingerprint == self._indexed:
                return False
            articles, errors, self._read = load_folder(self.kb_dir, self._read)
            written, deleted = index.sync(self.db, articles)
            new_errors = [e for e in errors if e not in self.errors]
            for error in new_errors:
                log.error("kb: left out %s", error)
            self._indexed, self.errors, self.count = fingerprint, errors, len(articles)
            if written or deleted or force:
                log.info(
                    "kb: %d articles from %s (%d indexed, %d removed, %d refused)",
                    len(articles),
                    self.kb_dir,
                    written,
                    deleted,
                    len(errors),
                )
            return True
