"""The YAML shape of business hours and SLA policies: parsing and validating them for the loader.

Structure only: the clocks, due times and escalations are computed elsewhere from the
:class:`~maild.routing.schema.SlaPolicy` and :class:`~maild.routing.schema.BusinessHours` values
built here.

``business_hours`` (in one file): ``24/7``, or ``{timezone: Europe/Berlin, week: {mon-fri:
"09:00-17:00", sat: ["10:00-12:00", "13:00-14:00"], sun: closed}, holidays: [2026-12-25]}``; day
ranges may wrap (``sat-mon``); a day not named is closed; ``week: 24/7`` opens every day.

``sla``: a list of ``{name, when, first_response, resolution, business_hours, escalate}``, durations
such as ``30m``, ``4h``, ``2d``, ``1w``, ``1h30m``; ``when`` uses the condition language on the
ticket's fields; ``escalate`` steps are ``{at: "75% first_response" | "breach resolution", notify:
[team, assignee, agents, addresses], template: escalation, then: {priority, team, assignee}}``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from maild.routing.conditions import Report, Scope
from maild.routing.schema import (
    Actions,
    BusinessHours,
    Condition,
    EscalationStep,
    Interval,
    SlaPolicy,
    Where,
)

ESCALATION_ACTION_KEYS = ("team", "assignee", "priority")
SLA_KEYS = ("name", "when", "first_response", "resolution", "business_hours", "escalate")
STEP_KEYS = ("at", "notify", "template", "then")
HOURS_KEYS = ("timezone", "week", "holidays")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
_AT = re.compile(r"^(?:(\d+(?:\.\d+)?)\s*%|(breach))\s+(first_response|resolution)$")
_SPAN = re.compile(r"^(\d\d):(\d\d)\s*-\s*(\d\d):(\d\d)$")


def line_of(node: Any, key: Any = None) -> int:
    """The 1-based line of ``node[key]`` (or of ``node``) as ruamel recorded it; 0 if unknown."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return 0
    if key is not None:
        try:
            pos = lc.item(key) if isinstance(node, list) else lc.key(key)
            return int(pos[0]) + 1
        except (KeyError, TypeError, IndexError, AttributeError):
            pass
    return int(lc.line) + 1 if lc.line is not None else 0


class PolicyParsing:
    """The loader's part that reads ``business_hours`` and ``sla``; a mixin of ``_Loader``."""

    business_hours: BusinessHours | None
    sla_names: set[str]

    if TYPE_CHECKING:  # provided by the loader

        def reporter(self, file: str, label: str | None) -> Report: ...

        def _keys(self, node: Any, known: Sequence[str], report: Report, path: str) -> bool: ...

        def _when(self, node: Any, report: Report, scope: Scope) -> Condition | None: ...

        def _actions(
            self,
            node: Any,
            parent: Any,
            key: str,
            report: Report,
            path: str,
            allowed: Sequence[str],
        ) -> Actions | None: ...

        def _targets(
            self, value: Any, node: Any, key: str, report: Report, path: str
        ) -> tuple[str, ...] | None: ...

        def _template(self, value: Any, node: Any, key: str, report: Report, path: str) -> bool: ...

    def _business_hours(self, file: str, parent: Any, node: Any) -> None:
        report = self.reporter(file, "business_hours")
        where = Where(file, line_of(parent, "business_hours"))
        if self.business_hours is not None:
            report(
                parent,
                "business_hours",
                f"defined twice (first at {self.business_hours.where})",
            )
            return
        if node == "24/7":
            self.business_hours = BusinessHours(always=True, where=where)
            return
        if not isinstance(node, dict):
            report(
                parent,
                "business_hours",
                'expected 24/7 or {timezone: ..., week: {mon-fri: "09:00-17:00"}, holidays: []}',
            )
            return
        self._keys(node, HOURS_KEYS, report, "")
        zone = node.get("timezone")
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError, OSError):
            report(
                node,
                "timezone" if "timezone" in node else None,
                f"timezone: {zone!r} is not a time zone, e.g. Europe/Berlin"
                if zone
                else "timezone: required, e.g. Europe/Berlin",
            )
            return
        week = self._week(node.get("week"), node, report)
        holidays = self._holidays(node.get("holidays", []), node, report)
        if week is not None and holidays is not None:
            self.business_hours = BusinessHours(str(zone), week, holidays, where=where)

    def _week(
        self, node: Any, parent: Any, report: Report
    ) -> tuple[tuple[Interval, ...], ...] | None:
        if node == "24/7":
            return ((0, 1440),) * 7  # type: ignore[return-value]
        if not isinstance(node, dict) or not node:
            report(
                parent, "week", 'week: expected e.g. {mon-fri: "09:00-17:00", sat: "10:00-14:00"}'
            )
            return None
        week: list[tuple[Interval, ...] | None] = [None] * 7
        ok = True
        for key, spans in node.items():
            days = _days(str(key))
            if days is None:
                report(node, key, f"week: {key!r} is not a day or range like mon-fri")
                ok = False
                continue
            intervals = _spans(spans)
            if intervals is None:
                report(node, key, f'week.{key}: expected "HH:MM-HH:MM", a list of them, or closed')
                ok = False
                continue
            for day in days:
                if week[day] is not None:
                    report(node, key, f"week: {DAYS[day]} is given twice")
                    ok = False
                week[day] = intervals
        if not ok:
            return None
        return tuple(day or () for day in week)

    def _holidays(self, node: Any, parent: Any, report: Report) -> frozenset[dt.date] | None:
        if node is None:
            return frozenset()
        if not isinstance(node, list):
            report(parent, "holidays", "holidays: expected a list of dates like 2026-12-25")
            return None
        out = set()
        for i, value in enumerate(node):
            if isinstance(value, dt.datetime):
                value = value.date()
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = dt.date.fromisoformat(value)
            if not isinstance(value, dt.date):
                report(node, i, f"holidays[{i}]: {value!r} is not a date like 2026-12-25")
                return None
            out.add(value)
        return frozenset(out)

    def _sla_policy(self, file: str, seq: Any, i: int, node: Any) -> SlaPolicy | None:
        report = self.reporter(file, f"sla[{i}]")
        if not isinstance(node, dict):
            report(seq, i, "expected {name: ..., first_response: 1h, resolution: 4h}")
            return None
        name = node.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            report(
                node,
                "name" if "name" in node else None,
                "name: required; letters, digits, '.', '_' or '-'",
            )
            return None
        report = self.reporter(file, f"sla policy {name!r}")
        if name in self.sla_names:
            report(node, "name", "an SLA policy of this name is defined twice")
            return None
        self.sla_names.add(name)
        ok = self._keys(node, SLA_KEYS, report, "")
        when = self._when(node, report, "ticket")
        ok = ok and (when is not None or "when" not in node)
        targets = {}
        for key in ("first_response", "resolution"):
            if key in node:
                targets[key] = parse_duration(node[key])
                if targets[key] is None:
                    report(node, key, f"{key}: {node[key]!r} is not a duration like 30m, 4h, 2d")
                    ok = False
        if not targets:
            report(node, None, "give first_response and/or resolution")
            ok = False
        use_hours = node.get("business_hours", True)
        if not isinstance(use_hours, bool):
            report(node, "business_hours", "business_hours: expected true or false")
            ok = False
        steps = self._steps(file, node.get("escalate", []), node, report, set(targets))
        if not ok or steps is None:
            return None
        return SlaPolicy(
            name,
            when,
            targets.get("first_response"),
            targets.get("resolution"),
            bool(use_hours),
            steps,
            Where(file, line_of(seq, i)),
        )

    def _steps(
        self, file: str, node: Any, parent: Any, report: Report, targets: set[str]
    ) -> tuple[EscalationStep, ...] | None:
        if not isinstance(node, list):
            report(parent, "escalate", "escalate: expected a list of steps")
            return None
        steps = []
        for i, step in enumerate(node):
            path = f"escalate[{i}]."
            if not isinstance(step, dict):
                report(
                    node, i, f"escalate[{i}]: expected {{at: 75% first_response, notify: [...]}}"
                )
                return None
            ok = self._keys(step, STEP_KEYS, report, path)
            found = _AT.match(str(step.get("at", "")).strip())
            if found is None:
                report(
                    step,
                    "at" if "at" in step else None,
                    f"{path}at: expected e.g. '75% first_response' or 'breach resolution'",
                )
                return None
            percent, breach, target = found.groups()
            if target not in targets:
                report(step, "at", f"{path}at: the policy has no {target} target")
                ok = False
            fraction = 1.0 if breach else float(percent) / 100
            notify = self._targets(step.get("notify", []), step, "notify", report, path)
            template = step.get("template", "escalation")
            label = f"{path}template" if "template" in step else f"{path}template (the default)"
            ok = (
                ok
                and notify is not None
                and self._template(template, step, "template", report, label)
            )
            then = Actions()
            if "then" in step:
                got = self._actions(
                    step["then"], step, "then", report, f"{path}then.", ESCALATION_ACTION_KEYS
                )
                ok = ok and got is not None
                then = got or then
            if not step.get("notify") and "then" not in step:
                report(step, None, f"escalate[{i}]: give notify and/or then")
                ok = False
            if not ok or notify is None:
                return None
            steps.append(
                EscalationStep(
                    cast(Literal["first_response", "resolution"], target),
                    fraction,
                    bool(breach),
                    notify,
                    str(template),
                    then,
                    Where(file, line_of(node, i)),
                )
            )
        return tuple(steps)


def _days(key: str) -> list[int] | None:
    days: list[int] = []
    for part in key.replace(" ", "").lower().split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            return None
        start, end = DAYS.index(first), DAYS.index(last or first)
        days.extend(range(start, end + 1) if start <= end else [*range(start, 7), *range(end + 1)])
    return days


def _spans(value: Any) -> tuple[Interval, ...] | None:
    if value is None or value == "closed":
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        found = _SPAN.match(str(item).strip())
        if found is None:
            return None
        h1, m1, h2, m2 = (int(x) for x in found.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 1440 or end <= start:
            return None
        out.append((start, end))
    return tuple(sorted(out))


def parse_duration(value: Any) -> dt.timedelta | None:
    """``30m``, ``4h``, ``2d``, ``1w``, ``1h30m`` as a timedelta; None if not one."""
    found = _DURATION.match(str(value).strip()) if isinstance(value, str) else None
    if found is None or not any(found.groups()):
        return None
    w, d, h, m = (int(x or 0) for x in found.groups())
    delta = dt.timedelta(weeks=w, days=d, hours=h, minutes=m)
    return delta if delta > dt.timedelta(0) else None
