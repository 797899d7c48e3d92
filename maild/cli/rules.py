"""``ticketd rules check | explain FILE.eml``: validate the rules; show what they do to a message.

Both are meant for an admin's own CI as well as for a terminal: ``check`` exits 1 and prints every
error (``file:line: rule 'NAME': ...``) on stderr, or exits 0 with a one-line summary; ``explain``
prints every rule (matched or not, the condition that decided, the actions) and the merged result,
or the same as JSON with ``--json``. ``--rules-dir`` and ``--templates-dir`` work without a config
file; without a templates folder, template names are not checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, cast

from maild.cli.common import add_config_option, bad_time, config_of, open_app, parse_time
from maild.cli.safe_text import terminal_safe
from maild.errors import TicketdError
from maild.routing.engine import Decision, RuleSet
from maild.routing.loader import RulesError, available_templates, load_rules
from maild.routing.schema import EVENTS, PRIORITIES, STATUSES, TEAM, Notify, TicketView

MARKS = {"matched": "MATCH", "no_match": "no", "skipped": "skip", "not_reached": "stop"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("rules", help="validate rules; show which rules a message matches")
    rsub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = rsub.add_parser("check", help="validate the rules folder")
    _folders(check)
    check.set_defaults(func=cmd_check)
    explain = rsub.add_parser("explain", help="show what the rules do with a message")
    _folders(explain)
    explain.add_argument("file", type=Path, help="the message (.eml)")
    explain.add_argument("--event", choices=EVENTS, default="new_ticket")
    explain.add_argument("--at", help="evaluate as at this ISO 8601 time (default: now, UTC)")
    explain.add_argument("--from", dest="mail_from", default="", help="envelope sender")
    explain.add_argument("--rcpt", action="append", default=[], help="envelope recipient")
    explain.add_argument("--json", action="store_true", help="print JSON")
    ticket = explain.add_argument_group("the ticket, for reply events")
    ticket.add_argument("--status", choices=STATUSES, default="open")
    ticket.add_argument("--priority", choices=PRIORITIES, default="normal")
    ticket.add_argument("--team")
    ticket.add_argument("--assignee")
    ticket.add_argument("--tag", action="append", default=[], dest="tags")
    explain.set_defaults(func=cmd_explain)


def _folders(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--rules-dir", type=Path, help="the rules folder (default: from config)")
    parser.add_argument(
        "--templates-dir", type=Path, help="the templates folder (default: from config)"
    )


def _load(args: argparse.Namespace) -> RuleSet:
    if args.rules_dir is not None:
        rules_dir, templates_dir = args.rules_dir, args.templates_dir
    else:
        config = config_of(args)
        rules_dir, templates_dir = config.rules_dir, args.templates_dir or config.templates_dir
    return load_rules(rules_dir, templates=available_templates(templates_dir))


def _print_errors(exc: RulesError) -> int:
    for error in exc.errors:
        print(error, file=sys.stderr)
    count = len(exc.errors)
    print(f"{count} error{'s' if count != 1 else ''}: the rules were not loaded", file=sys.stderr)
    return 1


def cmd_check(args: argparse.Namespace) -> int:
    try:
        rules = _load(args)
    except RulesError as exc:
        return _print_errors(exc)
    print(f"ok: {rules.describe()}")
    from maild.routing.needs import missing_part_warnings

    data_dir = config_of(args).instance.data_dir if args.rules_dir is None else None
    for line in missing_part_warnings(rules.rules, data_dir):
        print(line, file=sys.stderr)
    if args.rules_dir is None:
        for line in undeclared_warnings(args, rules):
            print(line, file=sys.stderr)
    return 0


def undeclared_warnings(args: argparse.Namespace, rules: RuleSet) -> list[str]:
    """Warnings for stored custom field values that no field declares (renamed or removed).

    The values stay readable on their tickets; this only says so. A database that cannot be
    opened gives no warnings: checking the files does not need it."""
    from peewee import DatabaseError, fn

    from maild.routing.fields import undeclared
    from maild.store.models import TicketField

    try:
        app = open_app(args)
    except (TicketdError, DatabaseError, OSError):
        return []
    try:
        query = TicketField.select(TicketField.name, fn.COUNT(TicketField.id).alias("n"))
        rows = cast("list[tuple[str, int]]", list(query.group_by(TicketField.name).tuples()))
    finally:
        app.close()
    counts = dict(rows)
    return [
        f"warning: {counts[name]} ticket(s) have values for field {name!r}, which no field "
        "declares (renamed or removed?); they stay readable"
        for name in undeclared([(name, "") for name in counts], rules.fields)
    ]


def cmd_explain(args: argparse.Namespace) -> int:
    from maild.pipeline.parse import ParseError, parse_message

    try:
        rules = _load(args)
    except RulesError as exc:
        return _print_errors(exc)
    try:
        raw = args.file.read_bytes()
        msg = parse_message(raw, mail_from=args.mail_from, rcpt_tos=args.rcpt)
    except OSError as exc:
        print(f"ticketd: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ParseError as exc:
        print(f"ticketd: {args.file}: {exc}", file=sys.stderr)
        return 1
    try:
        now = parse_time(args.at)
    except ValueError:
        return bad_time(args.at)
    ticket = None
    if args.event != "new_ticket":
        ticket = TicketView.of(
            status=args.status,
            priority=args.priority,
            team=args.team,
            assignee=args.assignee,
            tags=args.tags,
        )
    authserv = ""
    triage = None
    if args.rules_dir is None:  # the MTA's verdict counts from the configured authserv-id
        config = config_of(args)
        authserv = config.agents.authserv_id or ""
        from maild.triage.predict import TriageHolder

        triage = TriageHolder(config.instance.data_dir)
    decision = rules.evaluate(
        args.event,
        msg,
        ticket,
        now,
        authserv_id=authserv,
        triage=triage.predict if triage else None,
    )
    prediction = prediction_line(triage, msg)
    if args.json:
        data = {"rules": rules.summary(), "at": now.isoformat(), **decision.to_dict()}
        if triage is not None:
            data["prediction"] = triage.predict(_text(msg))
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    sender = msg.from_addr.email if msg.from_addr else msg.envelope_from or "-"
    print(f"message: from {terminal_safe(sender)}, subject {terminal_safe(repr(msg.subject))}")
    print(f"event:   {args.event} at {now.isoformat()}")
    print(f"rules:   {rules.describe()}")
    if prediction:
        print(terminal_safe(prediction))
    print()
    for line in explain_lines(decision, rules):
        print(terminal_safe(line))  # conditions quote the mail's subject, addresses, body
    return 0


def _text(msg: Any) -> str:
    from maild.pipeline.sentiment import message_text

    return message_text(msg)


def prediction_line(triage: Any, msg: Any) -> str:
    """``triage:  team 'billing' (0.93), priority 'high' (0.71), tags: invoice (0.88)``, or why
    there is no prediction; empty when no config (``--rules-dir``) names a data dir."""
    if triage is None:
        return ""
    found = triage.predict(_text(msg))
    if found is None:
        return f"triage:  no prediction: {triage.error}"
    parts = [f"{t} {v!r} ({c:.2f})" for t, (v, c) in found.items() if t != "tags"]
    tags = ", ".join(f"{t} ({c:.2f})" for t, c in found.get("tags", []))
    return "triage:  " + ", ".join(parts) + (f", tags: {tags}" if tags else "")


def explain_lines(decision: Decision, rules: RuleSet) -> list[str]:
    """The trace and the merged result, as lines for a terminal."""
    lines = []
    for step in decision.trace:
        where = Path(step.where).name if step.where else ""
        head = f"{MARKS[step.verdict]:<5}  {step.rule}  ({where})"
        if step.verdict in ("skipped", "not_reached"):
            lines.append(f"{head}: {step.reason}")
            continue
        lines.append(head)
        lines.append(f"       why: {step.reason}")
        if step.actions:
            lines.append(
                f"       then: {', '.join(step.actions)}" + ("  [stop]" if step.stop else "")
            )
    lines.append("")
    applied = decision.applied()
    if not applied:
        lines.append("result: no actions")
    else:
        lines.append("result:")
    for act in applied:
        value = act.value
        if isinstance(value, Notify):
            value = f"{value.template} to {', '.join(value.to)}"
        elif act.action == "assignee" and value == TEAM:
            team = decision.team.value if decision.team else "the ticket's team"
            strategy = rules.teams[team].assign if team in rules.teams else "its strategy"
            value = f"by team {team}'s strategy ({strategy})"
        elif isinstance(value, bool):
            value = str(value).lower()
        lines.append(f"  {act.action:<10} {value}   (rule {act.rule!r})")
    if decision.regex_timeouts:
        lines.append(
            f"warning: {len(decision.regex_timeouts)} regex search(es) timed out and "
            "counted as no match"
        )
    return lines
