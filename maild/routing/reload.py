"""Keeping the running rule set, and swapping in a new one only when it is valid.

Policy: ``maybe_reload()`` compares a fingerprint of the rules folder (file names, sizes and
modification times, plus the names of the available templates) with the one it last loaded or
refused; when it changed, the whole folder is loaded again. A set with errors never replaces the
running one: the errors are logged once (not every second) and kept in ``last_error``; the old rules
stay in force until the files are fixed. Each success is logged with a summary. ``ticketd run``
calls ``maybe_reload()`` every second and ``maybe_reload(force=True)`` on SIGHUP.

Thread-safety: reloads are serialised by a lock; readers take ``holder.rules`` once per message
(an attribute read, atomic), so a message is evaluated against exactly one whole rule set even while
a reload happens.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from maild.routing.engine import RuleSet
from maild.routing.loader import RulesError, available_templates, load_rules, rule_files

log = logging.getLogger("ticketd.rules")

Fingerprint = tuple[tuple[tuple[str, int, int], ...], tuple[str, ...] | None]


class RulesHolder:
    """The rule set in force, reloaded from ``rules_dir`` when its files change."""

    def __init__(
        self, rules_dir: Path, templates_dir: Path | None = None, *, initial: RuleSet | None = None
    ) -> None:
        self.rules_dir = rules_dir
        self.templates_dir = templates_dir
        self._rules = initial if initial is not None else RuleSet()
        self._lock = threading.Lock()
        self._loaded: Fingerprint | None = None
        self._refused: Fingerprint | None = None
        self.last_error: RulesError | None = None
        self.generation = 0  # how many sets have been installed

    @classmethod
    def open(cls, rules_dir: Path, templates_dir: Path | None = None) -> RulesHolder:
        """Load the folder now; raise RulesError, so that a daemon never starts on broken rules."""
        holder = cls(rules_dir, templates_dir)
        if not holder.maybe_reload(force=True):
            assert holder.last_error is not None
            raise holder.last_error
        return holder

    @property
    def rules(self) -> RuleSet:
        """The rule set in force; take it once per message."""
        return self._rules

    def fingerprint(self) -> Fingerprint:
        files = []
        for path in rule_files(self.rules_dir):
            st = path.stat()
            files.append((path.name, st.st_mtime_ns, st.st_size))
        templates = available_templates(self.templates_dir)
        return tuple(files), tuple(sorted(templates)) if templates is not None else None

    def maybe_reload(self, *, force: bool = False) -> bool:
        """Load the folder if it changed (or ``force``); True when a new rule set is in force."""
        with self._lock:
            try:
                fingerprint = self.fingerprint()
            except (RulesError, OSError) as exc:
                error = (
                    exc
                    if isinstance(exc, RulesError)
                    else RulesError([f"{self.rules_dir}: cannot list the rules: {exc}"])
                )
                # The error itself is the fingerprint, so a lasting problem is logged once.
                return self._refuse(((("", -1, -1),), tuple(error.errors)), error, force)
            if not force and fingerprint in (self._loaded, self._refused):
                return False
            templates = available_templates(self.templates_dir)
            try:
                rules = load_rules(self.rules_dir, templates=templates)
            except RulesError as exc:
                return self._refuse(fingerprint, exc, force)
            except Exception as exc:  # a bug in the loader must not take the daemon down
                log.exception("rules: loading %s failed unexpectedly", self.rules_dir)
                return self._refuse(fingerprint, RulesError([f"{self.rules_dir}: {exc!r}"]), force)
            self._rules = rules
            self._loaded, self._refused, self.last_error = fingerprint, None, None
            self.generation += 1
            log.info("rules: loaded %s from %s", rules.describe(), self.rules_dir)
            return True

    def _refuse(self, fingerprint: Fingerprint, error: RulesError, force: bool) -> bool:
        already = fingerprint == self._refused
        self._refused, self.last_error = fingerprint, error
        if not already or force:
            kept = "keeping the running rules" if self.generation else "no rules are loaded"
            log.error(
                "rules: refused %s (%d error%s), %s:\n  %s",
                self.rules_dir,
                len(error.errors),
                "" if len(error.errors) == 1 else "s",
                kept,
                "\n  ".join(error.errors),
            )
        return False
