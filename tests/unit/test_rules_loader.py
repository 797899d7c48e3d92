"""Validation at load: every error with file:line and the rule's name, all of them at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maild.errors import ConfigError
from maild.routing.loader import (
    RulesError,
    available_templates,
    load_rules,
    rule_files,
)
from tests.ruleskit import PEOPLE, TEMPLATES, ruleset

REPO = Path(__file__).resolve().parents[2]


def errors_of(tmp_path: Path, rules: str, *, people: str = PEOPLE) -> list[str]:
    with pytest.raises(RulesError) as info:
        ruleset(tmp_path, rules, people=people)
    return info.value.errors


def one_error(tmp_path: Path, rules: str, **kw: str) -> str:
    errors = errors_of(tmp_path, rules, **kw)
    assert len(errors) == 1, errors
    return errors[0]


def test_rules_error_is_a_config_error_listing_everything(tmp_path: Path) -> None:
    error = RulesError(["a.yaml:1: one", "b.yaml:2: two"])
    assert isinstance(error, ConfigError)
    assert str(error) == "2 errors in the rules:\n  a.yaml:1: one\n  b.yaml:2: two"


def test_all_errors_are_collected_in_file_and_line_order(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        """\
rules:
  - name: Bad operator
    when: {subject: {contain: invoice}}
    then: {team: billing}
  - name: Bad regex
    when: {body: {matches: 'refund ('}}
    then: {team: billing}
  - name: Unknown team
    then: {team: bliling}
  - name: Unknown key
    when: {subject: {contains: x}}
    then: {team: billing}
    stpo: true
""",
    )
    path = str(tmp_path / "rules" / "20-rules.yaml")
    assert errors == [
        f"{path}:3: rule 'Bad operator': when.subject.contain: unknown operator 'contain' "
        "(known: equals, contains, starts_with, ends_with, matches, exists); "
        "did you mean 'contains'?",
        f"{path}:6: rule 'Bad regex': when.body.matches: invalid regex 'refund (': "
        "missing ) at position 8",
        f"{path}:9: rule 'Unknown team': then.team: unknown team 'bliling' "
        "(known: billing, sales, tech); did you mean 'billing'?",
        f"{path}:13: rule 'Unknown key': unknown key 'stpo' "
        "(known: name, on, when, then, stop, enabled); did you mean 'stop'?",
    ]


@pytest.mark.parametrize(
    ("then", "message"),
    [
        (
            "{assignee: dave@example.com}",
            "then.assignee: 'dave@example.com' is not an agent's email or name, nor 'team'",
        ),
        ("{priority: asap}", "then.priority: 'asap' (known: low, normal, high, urgent)"),
        ("{status: done}", "then.status: 'done' (known: new, open, pending, resolved, closed)"),
        ("{reply: thanks}", "then.reply: no template 'thanks' (templates/thanks.txt.j2)"),
        (
            "{notify: {template: notify_new, to: [everyone]}}",
            "then.notify.to: 'everyone' is not team, assignee, an agent or an address",
        ),
        (
            "{notify: {template: notify_new}}",
            "then.notify: expected {template: NAME, to: [team, assignee, or addresses]}",
        ),
        ("{notify: {template: nope, to: team}}", "then.notify.template: no template 'nope'"),
        ("{sla: platinum}", "then.sla: unknown SLA policy 'platinum'"),
        ("{spam: yes}", "then.spam: expected true or false"),
        ("{forward: not-an-address}", "then.forward: 'not-an-address': expected an address"),
        ("{tags: [two words]}", "then.tags: expected tag names"),
        ("{tags: {add: [], remove: []}}", "then.tags: no tags given"),
        ("{tags: {add: [x], drop: [y]}}", "then.tags.unknown key 'drop'"),
        ("{colour: red}", "then.unknown key 'colour'"),
        ("[team, billing]", "then: expected a mapping of actions"),
    ],
)
def test_bad_actions(tmp_path: Path, then: str, message: str) -> None:
    error = one_error(tmp_path, f"rules:\n  - name: R\n    then: {then}\n")
    assert error.startswith(f"{tmp_path / 'rules' / '20-rules.yaml'}:3: rule 'R': ")
    assert message in error


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "{name: R, when: {subjet: {contains: x}}, then: {tags: [x]}}",
            "when.subjet: unknown condition 'subjet'",
        ),
        ("{name: R, when: {subject: x}, then: {tags: [x]}}", "when.subject: expected operators"),
        (
            "{name: R, when: {subject: {contains: []}}, then: {tags: [x]}}",
            "when.subject.contains: an empty list",
        ),
        (
            "{name: R, when: {subject: {contains: {a: 1}}}, then: {tags: [x]}}",
            "expected a non-empty string or a list of them",
        ),
        (
            "{name: R, when: {any: {subject: {contains: x}}}, then: {tags: [x]}}",
            "when.any: expected a list of conditions",
        ),
        ("{name: R, when: {all: []}, then: {tags: [x]}}", "when.all: an empty list"),
        (
            "{name: R, when: {has_attachments: maybe}, then: {tags: [x]}}",
            "when.has_attachments: expected true or false",
        ),
        (
            "{name: R, when: {attachment: {size: {equals: 1}}}, then: {tags: [x]}}",
            "unknown attachment field 'size'",
        ),
        (
            "{name: R, when: {header: {'Bad Name': {exists: true}}}, then: {tags: [x]}}",
            "'Bad Name' is not a header name",
        ),
        (
            "{name: R, when: {status: {equals: open}}, then: {tags: [x]}}",
            "the ticket's status can only be tested by rules on customer_reply or agent_reply",
        ),
        (
            "{name: R, on: customer_reply, when: {status: {equals: opne}}, then: {tags: [x]}}",
            "when.status.equals: 'opne' is not a status",
        ),
        (
            "{name: R, on: customer_reply, when: {team: {equals: sles}}, then: {tags: [x]}}",
            "'sles' is not a team",
        ),
        ("{name: R, on: new_tiket, then: {tags: [x]}}", "on: 'new_tiket': expected one or a list"),
        ("{name: R, stop: 1, then: {tags: [x]}}", "stop: expected true or false"),
        ("{name: R}", "a rule needs then: (its actions), or stop: true"),
        (
            "{name: R, when: {subject: {matches: '" + "a" * 1001 + "'}}, then: {tags: [x]}}",
            "longer than 1000 characters",
        ),
    ],
)
def test_bad_rules(tmp_path: Path, rule: str, message: str) -> None:
    error = one_error(tmp_path, f"rules:\n  - {rule}\n")
    assert error.startswith(f"{tmp_path / 'rules' / '20-rules.yaml'}:2: rule 'R': ")
    assert message in error


def test_nesting_too_deep(tmp_path: Path) -> None:
    when = "{not: " * 20 + "{subject: {contains: x}}" + "}" * 20
    error = one_error(tmp_path, f"rules:\n  - {{name: R, when: {when}, then: {{tags: [x]}}}}\n")
    assert "conditions nest deeper than 16 levels" in error


def test_rules_need_unique_names(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        "rules:\n  - {name: R, then: {tags: [x]}}\n"
        "  - {then: {tags: [y]}}\n  - {name: R, then: {tags: [z]}}\n",
    )
    path = tmp_path / "rules" / "20-rules.yaml"
    assert errors == [
        f"{path}:3: rules[1]: name: required (it names the rule in traces and the audit trail)",
        f"{path}:4: rule 'R': name: another rule has this name (at {path}:2)",
    ]


def test_people_errors(tmp_path: Path) -> None:
    people = """\
agents:
  - {email: alice@example.com, teams: [biling]}
  - {email: alice@example.com}
  - {email: nobody}
  - {email: bob@example.com, role: boss, available: sometimes}
  - just a string
teams:
  billing: {assign: randomly}
  tech: {assign: least_open, lead: bob}
"""
    errors = errors_of(tmp_path, "rules: []\n", people=people)
    path = str(tmp_path / "rules" / "10-people.yaml")
    assert errors == [
        f"{path}:2: agent alice@example.com: teams: unknown team 'biling' (known: billing, "
        "tech); did you mean 'billing'?",
        f"{path}:3: agent alice@example.com: defined twice (first at {path}:2)",
        f"{path}:4: agents[2]: email: 'nobody' is not an address",
        f"{path}:5: agent bob@example.com: role: 'boss' (known: agent, lead, admin)",
        f"{path}:5: agent bob@example.com: available: expected true or false",
        f"{path}:6: agents[4]: expected {{email: ..., name: ..., teams: [...]}}",
        f"{path}:8: team 'billing': assign: 'randomly' is not a strategy (known: round_robin, "
        "least_open, none)",
        f"{path}:9: team 'tech': unknown key 'lead' (known: assign)",
    ]


def test_names_are_shared_across_files(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "30-rules.yml").write_text("rules:\n  - {name: R, then: {team: ops, sla: s}}\n")
    (folder / "20-sla.yaml").write_text("sla:\n  - {name: s, first_response: 30m}\n")
    (folder / "10-teams.yaml").write_text("teams:\n  ops: {assign: none}\n")
    (folder / ".hidden.yaml").write_text("this is: [not loaded\n")
    (folder / "notes.txt").write_text("not a rules file")
    rules = load_rules(folder, templates=None)
    assert [p.name for p in rules.files] == ["10-teams.yaml", "20-sla.yaml", "30-rules.yml"]
    assert rules.rules[0].then.team == "ops"


def test_teams_and_business_hours_defined_twice(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "a.yaml").write_text("teams: {ops: {}}\nbusiness_hours: 24/7\n")
    (folder / "b.yaml").write_text("teams: {ops: {}}\nbusiness_hours: 24/7\n")
    with pytest.raises(RulesError) as info:
        load_rules(folder)
    assert info.value.errors == [
        f"{folder / 'b.yaml'}:1: team 'ops': defined twice (first at {folder / 'a.yaml'}:1)",
        f"{folder / 'b.yaml'}:2: business_hours: defined twice (first at {folder / 'a.yaml'}:2)",
    ]


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        (
            "{timezone: Mars/Olympus, week: {mon: '09:00-17:00'}}",
            "timezone: 'Mars/Olympus' is not a time zone",
        ),
        ("{week: {mon: '09:00-17:00'}}", "timezone: required"),
        ("{timezone: UTC, week: {monday: '09:00-17:00'}}", "'monday' is not a day or range"),
        ("{timezone: UTC, week: {mon: '17:00-09:00'}}", 'week.mon: expected "HH:MM-HH:MM"'),
        ("{timezone: UTC, week: {mon-fri: '09:00-17:00', fri: closed}}", "fri is given twice"),
        ("{timezone: UTC, week: {mon: '9-5'}}", 'expected "HH:MM-HH:MM"'),
        ("{timezone: UTC, week: {}}", "week: expected e.g."),
        ("{timezone: UTC, week: 24/7, holidays: [christmas]}", "'christmas' is not a date"),
        ("{timezone: UTC, week: 24/7, holidays: 2026-12-25}", "holidays: expected a list"),
        ("{timezone: UTC, week: 24/7, days: 5}", "unknown key 'days'"),
        ("always", "expected 24/7 or {timezone"),
    ],
)
def test_bad_business_hours(tmp_path: Path, hours: str, message: str) -> None:
    error = one_error(tmp_path, f"business_hours: {hours}\n", people="teams: {}\n")
    assert ":1: business_hours: " in error
    assert message in error


def test_business_hours_forms(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        "business_hours:\n  timezone: America/New_York\n"
        "  week: {sat-mon: '08:00-24:00', wed: [], 'thu, fri': closed}\n"
        "  holidays: [2026-07-04, '2026-12-25']\n",
        people="teams: {}\n",
    )
    bh = rules.business_hours
    assert bh is not None and not bh.always
    assert bh.week == (((480, 1440),), (), (), (), (), ((480, 1440),), ((480, 1440),))
    assert bh.holidays == {dt.date(2026, 7, 4), dt.date(2026, 12, 25)}


def test_business_hours_condition_needs_the_block(tmp_path: Path) -> None:
    error = one_error(
        tmp_path,
        "rules:\n  - {name: R, when: {business_hours: true}, then: {tags: [x]}}\n",
        people="teams: {}\n",
    )
    assert "no business_hours block is defined" in error


def test_sla_policies_are_validated_structurally(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        """\
sla:
  - name: urgent
    when: {priority: {equals: urgent}}
    first_response: 1h
    resolution: 4h
    escalate:
      - {at: 75% first_response, notify: [assignee]}
      - {at: breach first_response, notify: [team, lead@example.com, Alice],
         then: {priority: urgent}}
  - {name: slow, resolution: 1w2d, business_hours: false}
""",
    )
    urgent, slow = rules.sla_policies
    assert urgent.first_response == dt.timedelta(hours=1)
    assert [s.label for s in urgent.escalate] == ["75% first_response", "breach first_response"]
    assert urgent.escalate[1].notify == ("team", "lead@example.com", "alice@example.com")
    assert urgent.escalate[1].then.priority == "urgent"
    assert urgent.escalate[0].template == "escalation"
    assert slow.resolution == dt.timedelta(days=9) and not slow.business_hours


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("{name: p}", "give first_response and/or resolution"),
        ("{name: p, first_response: soon}", "first_response: 'soon' is not a duration"),
        ("{name: p, first_response: 0h}", "is not a duration"),
        (
            "{name: p, resolution: 4h, escalate: [{at: 75% first_response, notify: [team]}]}",
            "the policy has no first_response target",
        ),
        (
            "{name: p, resolution: 4h, escalate: [{at: soon, notify: [team]}]}",
            "escalate[0].at: expected e.g.",
        ),
        (
            "{name: p, resolution: 4h, escalate: [{at: breach resolution}]}",
            "give notify and/or then",
        ),
        (
            "{name: p, resolution: 4h, escalate: [{at: breach resolution, then: {status: open}}]}",
            "escalate[0].then.unknown key 'status'",
        ),
        (
            "{name: p, resolution: 4h, escalate: [{at: breach resolution, notify: [x]}]}",
            "'x' is not team, assignee, an agent or an address",
        ),
        (
            "{name: p, resolution: 4h, escalate: [{at: breach resolution, notify: [team], "
            "template: nope}]}",
            "no template 'nope'",
        ),
        (
            "{name: p, when: {subject: {contains: x}}, resolution: 4h}",
            "message fields cannot be tested in SLA policies",
        ),
        ("{name: p, resolution: 4h, paused: true}", "unknown key 'paused'"),
        ("{first_response: 1h}", "name: required"),
    ],
)
def test_bad_sla_policies(tmp_path: Path, policy: str, message: str) -> None:
    error = one_error(tmp_path, f"sla:\n  - {policy}\n")
    assert ":2: sla" in error
    assert message in error


# --- YAML itself ----------------------------------------------------------------------------------


def test_yaml_bomb_is_refused_before_expansion(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    error = one_error(tmp_path, "\n".join(lines) + "\n")
    assert error == (
        f"{tmp_path / 'rules' / '20-rules.yaml'}:1: YAML anchors and aliases "
        "(&name, *name) are not allowed in rules files: write the value out"
    )


def test_alias_alone_is_refused(tmp_path: Path) -> None:
    error = one_error(
        tmp_path, "rules:\n  - name: R\n    then: {tags: [x]}\n  - name: S\n    then: *missing\n"
    )
    assert error.endswith(
        "20-rules.yaml:5: YAML anchors and aliases (&name, *name) are not "
        "allowed in rules files: write the value out"
    )


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    error = one_error(tmp_path, "rules: " + "[" * 5000 + "]" * 5000 + "\n")
    assert ":1: nested deeper than 40 levels" in error


def test_duplicate_keys(tmp_path: Path) -> None:
    error = one_error(tmp_path, "rules:\n  - name: R\n    then: {tags: [x]}\n    name: S\n")
    assert error == (
        f"{tmp_path / 'rules' / '20-rules.yaml'}:4: duplicate key 'name': a key may "
        "appear once in a mapping"
    )


def test_tabs(tmp_path: Path) -> None:
    error = one_error(tmp_path, "rules:\n  - name: R\n\tthen: {tags: [x]}\n")
    assert error == (
        f"{tmp_path / 'rules' / '20-rules.yaml'}:3: a tab in the indentation: YAML "
        "indents with spaces only"
    )


def test_syntax_error_and_other_files_still_checked(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, "rules: [{name: R\n", people="teams: {x: {assign: nope}}\n")
    assert len(errors) == 2
    assert "10-people.yaml:1: team 'x': assign: 'nope'" in errors[0]
    assert "20-rules.yaml:2: invalid YAML: " in errors[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: !!python/object/apply:os.system [echo]\n", "YAML tags"),
        ("- just\n- a list\n", "the top level must be a mapping"),
        ("rulez: []\n", "unknown top-level key 'rulez'"),
        ("rules: {name: R}\n", "rules: expected a list, each item a rule"),
    ],
)
def test_file_shape(tmp_path: Path, text: str, message: str) -> None:
    assert message in one_error(tmp_path, text)


def test_not_utf8_and_too_large(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "a.yaml").write_bytes(b"rules: []\n# caf\xe9\n")
    (folder / "b.yaml").write_text("#" * (1024 * 1024 + 1))
    (folder / "c.yaml").write_text("")  # empty: fine
    with pytest.raises(RulesError) as info:
        load_rules(folder)
    assert info.value.errors == [
        f"{folder / 'a.yaml'}:2: not UTF-8 text",
        f"{folder / 'b.yaml'}: larger than 1048576 bytes; split it up",
    ]


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="the rules folder does not exist"):
        rule_files(tmp_path / "nope")


def test_available_templates(tmp_path: Path) -> None:
    (tmp_path / "mine.txt.j2").write_text("x")
    (tmp_path / "mine.html.j2").write_text("x")
    (tmp_path / "_partial.txt.j2").write_text("x")
    names = available_templates(tmp_path)
    assert names is not None and "mine" in names and "_partial" not in names
    assert "ack" in names  # the shipped defaults count
    assert available_templates(None) is None


def test_shipped_rules_pass(tmp_path: Path) -> None:
    rules = load_rules(REPO / "rules", templates=TEMPLATES)
    summary = rules.summary()
    assert summary["files"] == 3 and summary["rules"] >= 8 and summary["sla_policies"] >= 1
    assert rules.business_hours is not None


# --- robustness ---------------------------------------------------------------------------------

_TOKENS = st.sampled_from(
    [
        "rules:",
        "agents:",
        "teams:",
        "sla:",
        "business_hours:",
        "\n",
        "\n  ",
        "\n    ",
        "- ",
        "{",
        "}",
        "[",
        "]",
        ": ",
        ", ",
        "name: R",
        "when:",
        "then:",
        "subject:",
        "contains:",
        "matches:",
        "any:",
        "not:",
        "team: billing",
        "tags: [x]",
        "'(['",
        "&a",
        "*a",
        "!!str",
        "\t",
        "24/7",
        "stop: true",
        "on: customer_reply",
        "x",
        '"',
        "'",
        "#",
        "é",
        "null",
        "1h",
        "priority:",
    ]
)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(_TOKENS, max_size=40).map("".join))
def test_any_text_loads_or_raises_rules_error(tmp_path: Path, text: str) -> None:
    folder = tmp_path / "fuzz"
    folder.mkdir(exist_ok=True)
    (folder / "a.yaml").write_text(text, encoding="utf-8")
    try:
        load_rules(folder, templates=TEMPLATES)
    except RulesError as exc:
        assert exc.errors and all(e.startswith(str(folder / "a.yaml")) for e in exc.errors)
