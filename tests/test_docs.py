"""The README and the code agree: commands, options, config keys, template variables, JSON fields.

Each test derives the code side from the real objects (the argparse parser of ``ticketd``, the
config dataclasses, the context ``notify/compose.py`` renders and the shipped templates use, the
JSON ``tickets show --json`` prints for a real ticket) and compares it, both ways, with what the
README documents. A failure names what is missing and where to add it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import pytest
from ruamel.yaml import YAML

from maild import config as config_module
from maild import spool
from maild.app import App
from maild.cli.main import build_parser, main
from maild.config_imap import MailboxConfig
from maild.store.models import Ticket
from maild.worker import make_worker
from tests.conftest import base_config, rendered_context
from tests.mailgen import make_mail

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEMPLATES_README = ROOT / "templates" / "README.md"


def section(text: str, heading: str) -> str:
    """The text under the Markdown ``heading`` (``## Name``), up to the next heading of its level."""
    level = heading.split(" ", 1)[0]
    start = text.index(heading + "\n") + len(heading) + 1
    end = text.find(f"\n{level} ", start)
    return text[start:] if end < 0 else text[start:end]


def first_column_names(table_text: str) -> list[list[str]]:
    """For each table row, the backticked names in its first cell."""
    rows = [line for line in table_text.splitlines() if line.startswith("| `")]
    return [re.findall(r"`([^`]+)`", row.split("|")[1]) for row in rows]


def differences(code: set[str], documented: set[str], what: str, where: str) -> list[str]:
    problems = []
    if code - documented:
        problems.append(
            f"{what} in the code but not in {where}: {', '.join(sorted(code - documented))}"
        )
    if documented - code:
        problems.append(
            f"{what} in {where} but not in the code: {', '.join(sorted(documented - code))}"
        )
    return problems


# -- the command line ---------------------------------------------------------------------------

GLOBAL_OPTIONS = {"--config", "--version"}  # every command has --config; the README says so once


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


def code_commands() -> dict[str, tuple[set[str], set[str]]]:
    """Each ``ticketd`` command: (its actions such as ``list``/``show``, its long options)."""
    out = {}
    for name, parser in _subparsers(build_parser()).items():
        actions = _subparsers(parser)
        options = _options(parser).union(*(_options(p) for p in actions.values()))
        # A positional with fixed choices (``import mbox|maildir``) reads like actions too.
        kinds = {
            choice
            for action in parser._actions
            if not action.option_strings and action.choices and not actions
            for choice in action.choices
        }
        out[name] = (set(actions) | kinds, options - GLOBAL_OPTIONS)
    return out


def _top_level_alternatives(syntax: str) -> list[str]:
    """``a [b | c] | d`` -> ``["a [b | c]", "d"]``: split on ``|`` outside brackets."""
    parts, depth, current = [], 0, ""
    for ch in syntax:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def readme_commands(readme: str) -> dict[str, tuple[set[str], set[str]]]:
    """The same, from the code block of the README's "Command line" section."""
    block = section(readme, "## Command line").split("```", 2)[1]
    syntax: dict[str, str] = {}
    name = ""
    for line in block.splitlines():
        if line.startswith("ticketd "):
            name, _, rest = line[len("ticketd ") :].strip().partition(" ")
            syntax[name] = syntax.get(name, "") + " | " + re.split(r"\s{2,}", rest.strip())[0]
        elif line.strip() and name:
            syntax[name] += " " + re.split(r"\s{2,}", line.strip())[0]
    out = {}
    for name, text in syntax.items():
        actions = set()
        for alternative in _top_level_alternatives(text):
            words = alternative.split()
            if words and re.fullmatch(r"[a-z][a-z-]*", words[0]):
                actions.add(words[0])
        out[name] = (actions, set(re.findall(r"--[a-z][a-z0-9-]*", text)) - GLOBAL_OPTIONS)
    return out


def test_every_command_and_option_is_documented_and_every_documented_one_exists() -> None:
    readme = README.read_text()
    code, documented = code_commands(), readme_commands(readme)
    where = "the README's Command line block"
    problems = differences(set(code), set(documented), "ticketd commands", where)
    for name in sorted(set(code) & set(documented)):
        (code_actions, code_options), (doc_actions, doc_options) = code[name], documented[name]
        problems += differences(code_actions, doc_actions, f"`ticketd {name}` actions", where)
        problems += differences(code_options, doc_options, f"`ticketd {name}` options", where)
    for option in sorted(GLOBAL_OPTIONS):
        if option not in readme:
            problems.append(f"the option {option} of every command is not in the README")
    assert not problems, "\n".join(problems)


# -- config.yaml --------------------------------------------------------------------------------

NOT_KEYS = {"source"}  # Config.source: where the file was read from, not a key in it


def config_keys(cls: type, prefix: str = "") -> set[str]:
    """Dotted keys of ``cls`` (nested dataclass sections are walked; the rest are leaves)."""
    keys = set()
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if not prefix and field.name in NOT_KEYS:
            continue
        hint = hints[field.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            keys |= config_keys(hint, f"{prefix}{field.name}.")
        else:
            keys.add(prefix + field.name)
    return keys


def readme_config_keys(readme: str) -> set[str]:
    """Keys of the Configuration table; ``a.b``, ``c`` in one cell is ``a.b`` and ``a.c``."""
    keys = set()
    for names in first_column_names(section(readme, "## Configuration")):
        parent = names[0].rpartition(".")[0]
        keys.add(names[0])
        keys |= {n if "." in n or not parent else f"{parent}.{n}" for n in names[1:]}
    return keys


def mailbox_keys() -> set[str]:
    """Keys of one ``imap.mailboxes`` entry, with those of its ``oauth2`` section."""
    schema = MailboxConfig
    keys = set()
    hints = typing.get_type_hints(schema)
    for field in dataclasses.fields(schema):
        keys.add(field.name)
        inner = typing.get_args(hints[field.name]) or (hints[field.name],)
        for kind in inner:
            if isinstance(kind, type) and dataclasses.is_dataclass(kind):
                keys |= {f"{field.name}.{f.name}" for f in dataclasses.fields(kind)}
    return keys


def readme_mailbox_keys(readme: str) -> set[str]:
    """Keys of the example entry in "IMAP mailboxes" and those its "Other keys" sentence names."""
    text = section(readme, "## IMAP mailboxes")
    example = YAML(typ="safe").load(text.split("```yaml", 1)[1].split("```", 1)[0])
    keys = set(example["imap"]["mailboxes"][0])
    other = text.split("Other keys", 1)[1].split("\n\n", 1)[0]
    for name, inner in re.findall(r"`([a-z0-9_]+)`(?: \(([^)]*)\))?", other):
        keys.add(name)
        keys |= {f"{name}.{k}" for k in re.findall(r"`([a-z0-9_]+)`", inner)}
    return keys


def test_every_config_key_is_documented_and_every_documented_one_exists() -> None:
    readme = README.read_text()
    problems = differences(
        config_keys(config_module.Config),
        readme_config_keys(readme),
        "config keys",
        "the README's Configuration table",
    )
    problems += differences(
        mailbox_keys(),
        readme_mailbox_keys(readme),
        "imap.mailboxes keys",
        "the README's IMAP mailboxes section (the example or its Other keys sentence)",
    )
    assert not problems, "\n".join(problems)


# -- templates ----------------------------------------------------------------------------------


@pytest.fixture
def ticket_app(app_factory: Callable[..., App]) -> App:
    """SQLite, with one ticket made by the real worker from a customer's mail."""
    app = app_factory()
    entry_id = spool.enqueue(app.db, make_mail(cc="Dan <dan@customer.test>"), source="pipe")
    make_worker(app).run_once(ids=[entry_id])
    return app


def rendered_variables(ctx: dict[str, Any]) -> set[str]:
    """Every name a template can use; an empty mapping (``fields`` of a ticket without custom
    fields) counts by its own name."""
    return {
        f"{key}.{sub}" if isinstance(value, dict) and value else key
        for key, value in ctx.items()
        for sub in (value if isinstance(value, dict) and value else [None])
    }


def test_every_template_variable_is_documented_and_every_documented_one_is_rendered(
    ticket_app: App,
) -> None:
    ctx = rendered_context(ticket_app)
    text = TEMPLATES_README.read_text()
    base = {
        name
        for names in first_column_names(
            section(text, "## Variables (every template gets all of them)")
        )
        for name in names
    }
    problems = differences(
        rendered_variables(ctx),
        base,
        "template variables",
        "templates/README.md's Variables table",
    )
    # The extra variables of one kind of mail: the tables' second column, against what the
    # shipped templates use beyond the variables every template gets.
    extra: dict[str, set[str]] = {}
    for heading in re.findall(r"^## Extra variables[^\n]*", text, flags=re.M):
        for line in section(text, heading).splitlines():
            if line.startswith("| `"):
                cells = line.split("|")
                for template in re.findall(r"`([^`]+)`", cells[1]):
                    extra.setdefault(template, set()).update(
                        n.split(".")[0] for n in re.findall(r"`([^`]+)`", cells[2])
                    )
    env = jinja2.Environment()
    defaults = ROOT / "maild" / "notify" / "defaults"
    for path in sorted(defaults.glob("*.j2")):
        template = path.name.split(".")[0]
        used = jinja2.meta.find_undeclared_variables(env.parse(path.read_text()))
        own = used - {name.split(".")[0] for name in ctx}
        problems += differences(
            own,
            extra.get(template, set()),
            f"variables of the {template} template",
            "templates/README.md's Extra variables tables",
        )
    assert not problems, "\n".join(problems)


# -- tickets show --json ------------------------------------------------------------------------


def json_fields(data: dict[str, Any]) -> set[str]:
    """Top-level keys, and ``messages.X``, ``events.X``, ``sla.X``, ``satisfaction.X`` ... below."""
    fields = set()
    for key, value in data.items():
        fields.add(key)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            value = value[0]
        if isinstance(value, dict) and key != "detail":
            fields |= {f"{key}.{k}" for k in value}
    return fields


def readme_json_fields(readme: str) -> set[str]:
    """The names in the README's ``tickets show --json`` paragraph, nested as it lists them:
    ``messages`` (each with ``a``, ``b``) is ``messages.a``, ``messages.b``."""
    text = section(readme, "## Command line")
    paragraph = text[text.index("`tickets show --json` prints") :].split("\n\n", 1)[0]
    paragraph = paragraph.split("`tickets list --json`", 1)[0].replace("\n", " ")
    fields: set[str] = set()
    stack: list[str] = []
    last = ""
    for token in re.findall(
        r"`\{[^}]*\}`|`[^`]+`|\(|\)", paragraph[len("`tickets show --json` prints") :]
    ):
        if token == "(":
            stack.append(last)
        elif token == ")":
            stack.pop()
        elif token.startswith("`{"):
            fields |= {f"{last}.{k.strip()}" for k in token.strip("`{}").split(",")}
        else:
            name = token.strip("`")
            if not re.fullmatch(r"[a-z_]+", name):
                continue
            last = f"{stack[-1]}.{name}" if stack and stack[-1] else name
            fields.add(last)
    return fields


def test_every_tickets_show_json_field_is_documented_and_every_documented_one_exists(
    ticket_app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Rated, so that ``satisfaction`` is an object with its fields rather than null.
    Ticket.update(satisfaction_rating=4, satisfaction_comment="quick").execute()
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(base_config(tmp_path, ticket_app.config.database.url)))
    capsys.readouterr()
    assert main(["tickets", "show", "ACME-1", "--json", "--config", str(config)]) == 0
    data = json.loads(capsys.readouterr().out)
    problems = differences(
        json_fields(data),
        readme_json_fields(README.read_text()),
        "`tickets show --json` fields",
        "the README's `tickets show --json` paragraph",
    )
    assert not problems, "\n".join(problems)
