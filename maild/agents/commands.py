"""Commands an agent writes at the top of a reply: parsed and validated before anything changes.

A command is a line that starts with ``#`` and a letter, among the first lines of the visible text
(blank lines between them are fine); the first other line ends the block, and everything from it
on is the reply. Names are case-insensitive and may end in a colon (``#Status: pending``):

    #status open|pending|resolved|closed     #close          (= #status closed)
    #priority low|normal|high|urgent         #note           (the whole mail is an internal note)
    #assign EMAIL|NAME|me                    #team NAME
    #tag +a -b   (a bare word adds)          #cc +x@y -z@w   (a bare address adds)
    #set NAME=VALUE [NAME=VALUE...]          (custom fields, typed; see maild.routing.fields)
    #merge ACME-12   (this ticket goes into ACME-12)   #link ACME-7 / #unlink ACME-7
    #snooze 3d | 12h | 2w | 2026-12-10 [09:00]   (pending until then; local time of the
                     business hours' zone, else UTC; not in the past, at most a year ahead)
    #macro NAME      (templates/macros/NAME.j2: text for the customer, maybe field changes)

``#status`` also takes a custom status of the rules files (``#status waiting_vendor``): the
ticket gets its base state and keeps the custom name for the label.

Policy: the whole block is validated first, against the rule set in force (agents and teams come
from ``rules/10-people.yaml``); one invalid line and :attr:`Commands.errors` is not empty, and the
caller changes nothing at all. A command given twice that sets one value (two statuses, ``#close``
with ``#status``) is an error too, since it is not clear which one was meant. ``#tag`` and ``#cc``
may repeat. Parsing never touches the database: whether a ``#merge`` or ``#link`` target exists, and what a
``#macro`` says, is checked by the desk before anything changes (maild.agents.desk).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from maild.notify.compose import valid_address
from maild.pipeline.addresses import is_support_address
from maild.routing.engine import RuleSet
from maild.routing.fields import coerce
from maild.routing.schema import PRIORITIES

STATUSES = ("open", "pending", "resolved", "closed")  # "new" is no status an agent sets
NAMES = (
    "status",
    "priority",
    "assign",
    "team",
    "tag",
    "cc",
    "note",
    "close",
    "set",
    "merge",
    "link",
    "unlink",
    "snooze",
    "macro",
)
_REF = re.compile(r"^\[?(?:([A-Za-z][A-Za-z0-9]*)-)?#?(\d{1,12})\]?$")
_DURATION = re.compile(r"^(\d{1,4})\s*(m|min|h|d|w)$", re.IGNORECASE)
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MACRO = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_SNOOZE_DAYS = 365
_LINE = re.compile(r"^\s*#([A-Za-z][\w-]*):?(?:\s+(.*?))?\s*$")
_TAG = re.compile(r"^[\w][\w.:/-]{0,99}$")
# Zero-width characters some editors put at the start of a line: "\u200b#note" is still #note.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_START = re.compile(r"^\s*#[A-Za-z]")  # what every command line begins with
MAX_LINE = 1000  # a longer command line is rejected (it would not fit an error mail either)


@dataclass(frozen=True)
class CommandError:
    """One rejected line: its number in the visible text (1-based), the text and why."""

    line: int
    text: str
    reason: str
    needs: str | None = None  # the role that may give this command, when that was the problem

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"line": self.line, "text": self.text, "reason": self.reason}
        if self.needs is not None:
            out["needs_role"] = self.needs
        return out


@dataclass(frozen=True)
class Commands:
    """The validated commands of one mail, and the text that is left for the customer."""

    status: str | None = None
    priority: str | None = None
    assign: str | None = None  # an agent's email
    team: str | None = None
    tags_add: tuple[str, ...] = ()
    tags_remove: tuple[str, ...] = ()
    cc_add: tuple[str, ...] = ()
    cc_remove: tuple[str, ...] = ()
    note: bool = False
    fields: tuple[tuple[str, str], ...] = ()  # #set: (custom field, value), validated
    substatus: str | None = None  # #status with a custom status: its name (status is its base)
    merge_into: int | None = None  # #merge: the target ticket's number
    link: tuple[int, ...] = ()
    unlink: tuple[int, ...] = ()
    snooze_until: dt.datetime | None = None  # naive UTC
    macro: str | None = None
    lines: tuple[str, ...] = ()  # the command lines as written, for the audit trail
    errors: tuple[CommandError, ...] = ()
    body: str = ""  # the visible text without the command block

    @property
    def any(self) -> bool:
        """Whether any command was given (valid or not)."""
        return bool(self.lines or self.errors)

    @property
    def changes(self) -> bool:
        """Whether a command changes the ticket (``#note`` alone does not)."""
        return any(
            (
                self.status,
                self.priority,
                self.assign,
                self.team,
                self.tags_add,
                self.tags_remove,
                self.cc_add,
                self.cc_remove,
                self.fields,
                self.merge_into,
                self.link,
                self.unlink,
                self.snooze_until,
                self.macro,
            )
        )


@dataclass
class _Builder:
    values: dict[str, str] = field(default_factory=dict)
    tags_add: list[str] = field(default_factory=list)
    tags_remove: list[str] = field(default_factory=list)
    cc_add: list[str] = field(default_factory=list)
    cc_remove: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    note: bool = False
    link: list[int] = field(default_factory=list)
    unlink: list[int] = field(default_factory=list)
    merge_into: int | None = None
    snooze_until: dt.datetime | None = None

    def single(self, key: str, value: str) -> str | None:
        """Set a single-valued command; the reason when it was already given."""
        if key in self.values:
            return f"#{key} was already given above ({self.values[key]})"
        self.values[key] = value
        return None


def split_commands(text: str) -> tuple[list[tuple[int, str]], str]:
    """The command lines at the top of ``text`` (with 1-based line numbers) and the rest."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    found: list[tuple[int, str]] = []
    body_start = len(lines)
    for index, line in enumerate(lines):
        clean = line.replace("\xa0", " ").translate(_INVISIBLE)
        if not clean.strip():
            continue
        if _START.match(clean) and (len(clean) > MAX_LINE or _LINE.match(clean)):
            # An overlong line that starts like a command is an invalid command, not the start
            # of the reply: a #note below it must not turn into the customer's answer.
            found.append((index + 1, clean.strip()))
            continue
        body_start = index
        break
    if not found:
        return [], text.strip()
    return found, "\n".join(lines[body_start:]).strip()


@dataclass(frozen=True)
class _Env:
    """What a few commands need to read their argument: the ticket prefix and the time."""

    prefix: str
    now: dt.datetime  # naive UTC
    zone: ZoneInfo | None


def parse_commands(
    text: str,
    *,
    rules: RuleSet,
    author: str,
    support: tuple[str, ...] | list[str] = (),
    prefix: str = "",
    now: dt.datetime | None = None,
) -> Commands:
    """Parse and validate the command block of ``text`` written by the agent ``author``.

    ``now`` (naive UTC) is when the mail arrived, for ``#snooze``; ``prefix`` the ticket prefix
    that ``#merge``/``#link`` references must carry (any, when empty)."""
    zone = rules.business_hours.zone if rules.business_hours is not None else None
    env = _Env(prefix, now or dt.datetime.now(dt.UTC).replace(tzinfo=None), zone)
    found, body = split_commands(text)
    build = _Builder()
    errors: list[CommandError] = []
    for number, line in found:
        if len(line) > MAX_LINE:
            short = line[:100] + "..."
            errors.append(CommandError(number, short, f"longer than {MAX_LINE} characters"))
            continue
        reason = _one(line, build, rules=rules, author=author, support=support, env=env)
        if reason:
            errors.append(CommandError(number, line, reason))
    v = build.values
    return Commands(
        status=v.get("status"),
        priority=v.get("priority"),
        assign=v.get("assign"),
        team=v.get("team"),
        tags_add=tuple(build.tags_add),
        tags_remove=tuple(build.tags_remove),
        cc_add=tuple(build.cc_add),
        cc_remove=tuple(build.cc_remove),
        note=build.note,
        fields=tuple(build.fields.items()),
        substatus=v.get("substatus"),
        merge_into=build.merge_into,
        link=tuple(build.link),
        unlink=tuple(build.unlink),
        snooze_until=build.snooze_until,
        macro=v.get("macro"),
        lines=tuple(line for _, line in found),
        errors=tuple(errors),
        body=body,
    )


def _one(
    line: str,
    build: _Builder,
    *,
    rules: RuleSet,
    author: str,
    support: tuple[str, ...] | list[str],
    env: _Env,
) -> str | None:
    """Apply one line to ``build``; the reason it is invalid, or None."""
    match = _LINE.match(line)
    assert match is not None
    name, arg = match.group(1).lower(), (match.group(2) or "").strip()
    words = arg.split()
    if name not in NAMES:
        return f"unknown command #{name} (known: {', '.join('#' + n for n in NAMES)})"
    if name in ("note", "close"):
        if words:
            return f"#{name} takes no value"
        if name == "note":
            build.note = True
            return None
        return build.single("status", "closed")
    if name in ("tag", "cc"):
        if not words:
            return f"#{name} needs at least one value, e.g. #{name} " + (
                "+billing -urgent" if name == "tag" else "+anna@example.com -old@example.com"
            )
        return _list(name, words, build, support)
    if name == "set":
        return _set(words, build, rules)
    if name in ("merge", "link", "unlink", "snooze", "macro"):
        return _relation(name, arg, words, build, env)
    if not words or (len(words) > 1 and name in ("status", "priority")):
        return f"#{name} takes exactly one value" + (f", got {arg!r}" if words else "")
    value = " ".join(words)  # an agent's or a team's name may have spaces
    if name == "status":
        custom = rules.statuses.get(value.lower())
        if custom is not None:
            build.values["substatus"] = custom.name
            return build.single("status", custom.base)
        if value.lower() not in STATUSES:
            choices = (*STATUSES, *rules.statuses)
            return f"unknown status {value!r} (use {', '.join(choices)})"
        return build.single("status", value.lower())
    if name == "priority":
        if value.lower() not in PRIORITIES:
            return f"unknown priority {value!r} (use {', '.join(PRIORITIES)})"
        return build.single("priority", value.lower())
    if name == "assign":
        if value.lower() == "me":
            return build.single("assign", author)
        agent = rules.agent(value)
        if agent is None:
            return f"{value!r} is not an agent (give an agent's address or name, or 'me')"
        return build.single("assign", agent.email)
    # name == "team"
    team = next((t for t in rules.teams if t.lower() == value.lower()), None)
    if team is None:
        known = ", ".join(sorted(rules.teams)) or "none are declared"
        return f"no team {value!r} (teams: {known})"
    return build.single("team", team)


def _set(words: list[str], build: _Builder, rules: RuleSet) -> str | None:
    """``#set order=4471 product=printer``: declared fields only, each value checked by type."""
    if not words:
        return "#set needs NAME=VALUE, e.g. #set order=4471"
    for word in words:
        name, sep, value = word.partition("=")
        defn = rules.fields.get(name.lower())
        if not sep:
            return f"{word!r}: expected NAME=VALUE"
        if defn is None:
            known = ", ".join(sorted(rules.fields)) or "none are declared"
            return f"no field {name!r} (fields: {known})"
        stored, problem = coerce(defn, value)
        if problem is not None or stored is None:
            return problem
        if defn.name in build.fields:
            return f"#set {defn.name} was already given above"
        build.fields[defn.name] = stored
    return None


def _relation(name: str, arg: str, words: list[str], build: _Builder, env: _Env) -> str | None:
    """``#merge``, ``#link``, ``#unlink`` (a reference), ``#snooze`` (a time), ``#macro`` (a name)."""
    if name == "snooze":
        if not words:
            return "#snooze needs a time: 3d, 12h, 2w or 2026-12-10 09:00"
        until, problem = snooze_time(arg, env.now, env.zone)
        if problem is not None or until is None:
            return problem
        if build.snooze_until is not None:
            return "#snooze was already given above"
        if "status" in build.values:
            return f"#snooze makes the ticket pending: it cannot go with #status {build.values['status']}"
        build.snooze_until = until
        build.values["status"] = "pending"
        return None
    if name == "macro":
        if len(words) != 1 or not _MACRO.match(words[0].lower()):
            return f"#macro takes one macro name (letters, digits, - and _), got {arg!r}"
        return build.single("macro", words[0].lower())
    if len(words) != 1:
        return f"#{name} takes one ticket reference, e.g. #{name} {env.prefix or 'ACME'}-12"
    number = ticket_number(words[0], env.prefix)
    if number is None:
        return f"{words[0]!r} is not a ticket reference like {env.prefix or 'ACME'}-12"
    if name == "merge":
        if build.merge_into is not None:
            return "#merge was already given above"
        build.merge_into = number
        return None
    (build.link if name == "link" else build.unlink).append(number)
    return None


def ticket_number(ref: str, prefix: str) -> int | None:
    """The number of ``ACME-12`` (``[ACME-12]``, ``12``); None when it is none of ours."""
    match = _REF.match(ref.strip())
    if match is None:
        return None
    given = match.group(1)
    if given is not None and prefix and given.upper() != prefix.upper():
        return None
    return int(match.group(2))


def snooze_time(
    text: str, now: dt.datetime, zone: ZoneInfo | None
) -> tuple[dt.datetime | None, str | None]:
    """``#snooze``'s argument as naive UTC, or the reason it is refused (past, over a year)."""
    text = " ".join(text.split())
    duration = _DURATION.match(text)
    if duration is not None:
        until = now + dt.timedelta(
            seconds=int(duration.group(1)) * _UNITS[duration.group(2).lower()]
        )
    else:
        try:
            local = dt.datetime.fromisoformat(text.replace(" ", "T", 1) if " " in text else text)
        except ValueError:
            return None, (
                f"{text!r} is not a time: give 3d, 12h, 2w, 90m or a date like 2026-12-10 09:00"
            )
        if local.tzinfo is None:
            local = local.replace(tzinfo=zone or dt.UTC)
        until = local.astimezone(dt.UTC).replace(tzinfo=None)
    if until <= now:
        return None, f"{until:%Y-%m-%d %H:%M} UTC is in the past"
    if until > now + dt.timedelta(days=MAX_SNOOZE_DAYS):
        return None, f"{until:%Y-%m-%d} is more than {MAX_SNOOZE_DAYS} days ahead (at most a year)"
    return until, None


def command_args(lines: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(name, argument)`` of each command line, names lower-cased (for role checks)."""
    out = []
    for line in lines:
        match = _LINE.match(line)
        if match is not None:
            out.append((match.group(1).lower(), (match.group(2) or "").strip()))
    return out


def _list(
    name: str, words: list[str], build: _Builder, support: tuple[str, ...] | list[str]
) -> str | None:
    for word in words:
        sign, value = (word[0], word[1:]) if word[0] in "+-" else ("+", word)
        if name == "tag":
            if not _TAG.match(value):
                return f"{value!r} is not a tag (letters, digits and . : / - _, up to 100)"
            (build.tags_add if sign == "+" else build.tags_remove).append(value)
            continue
        address = value.strip("<>,;").lower()
        if not valid_address(address):
            return f"{value!r} is not an email address"
        if sign == "+" and is_support_address(address, support):
            return f"{address} is one of our own support addresses"
        (build.cc_add if sign == "+" else build.cc_remove).append(address)
    return None
