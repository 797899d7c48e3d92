"""Field values given with a web or API message: carried in the spooled message, checked twice."""

from __future__ import annotations

import datetime as dt

from maild.routing import given_fields
from maild.routing.engine import RuleSet
from maild.routing.loader import load_rules
from maild.routing.schema import FieldDef
from maild.web.inbound import build_message

FIELDS = {
    "product": FieldDef("product", "choice", ("printer", "scanner"), on_form=True),
    "order": FieldDef("order", "number"),
    "note": FieldDef("note", "text"),
}


def spooled(values: dict[str, str]) -> bytes:
    return build_message(
        from_email="carol@customer.example",
        from_name="Carol",
        to="support@example.com",
        subject="Hello",
        text="Body",
        now=dt.datetime(2026, 12, 4, 12, 0),
        source="web",
        client="127.0.0.1",
        fields=values,
    )


def test_values_survive_the_message_exactly_whatever_their_text() -> None:
    values = {
        "note": 'Grüße,  two  spaces "quoted" and a long tail ' + "x" * 900,
        "order": "4471",
        "product": "scanner",
    }
    raw = spooled(values)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))  # a valid message
    assert given_fields.decode(raw) == values
    assert given_fields.decode(spooled({})) == {}


def test_a_broken_or_odd_header_gives_no_values() -> None:
    for header in (b"not json", b"[1, 2]", b'{"a": 1, "b": "ok"}'):
        raw = b"From: a@b.example\r\nX-Ticketd-Fields: " + header + b"\r\n\r\nbody\r\n"
        assert given_fields.decode(raw) == ({"b": "ok"} if b"ok" in header else {})


def test_an_api_message_may_give_any_declared_field_typed() -> None:
    values, errors = given_fields.checked_values(
        FIELDS, {"product": "Scanner", "order": 7.50, "note": "hi"}
    )
    assert (values, errors) == ({"product": "scanner", "order": "7.5", "note": "hi"}, {})
    values, errors = given_fields.checked_values(FIELDS, {"colour": "red", "order": None})
    assert values == {}
    assert errors["colour"].startswith("colour: no such field (declared: product, order, note)")
    assert errors["order"] == "order: a text, number or true/false value is required"
    assert given_fields.checked_values(FIELDS, None) == ({}, {})
    assert given_fields.checked_values(FIELDS, ["x"])[1] == {
        "fields": "an object {name: value} is required"
    }


def test_the_worker_checks_again_against_the_fields_declared_now() -> None:
    now = {"product": FieldDef("product", "choice", ("printer",))}  # "scanner" was dropped
    values, refused = given_fields.recheck(now, {"product": "scanner", "order": "1"})
    assert values == {}
    assert refused == {
        "product": "product: 'scanner' is not one of printer",
        "order": "no such field is declared",
    }


def test_the_rules_see_given_values_before_extracted_ones(tmp_path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "fields:\n"
        "  - {name: order, type: number, extract: {from: subject, pattern: '#(?P<value>\\d+)'}}\n"
        "  - {name: product, type: choice, values: [printer, scanner]}\n"
        "rules:\n"
        "  - name: Order 9\n"
        "    when: {field.order: {equals: '9'}}\n"
        "    then: {priority: high}\n"
    )
    rules: RuleSet = load_rules(tmp_path)
    from maild.pipeline.parse import parse_message

    msg = parse_message(b"From: a@b.example\r\nSubject: order #5\r\n\r\nhi\r\n")
    at = dt.datetime(2026, 12, 4)
    plain = rules.evaluate("new_ticket", msg, None, at)
    assert plain.extracted == (("order", "5"),) and plain.matched_rules == ()
    given = rules.evaluate("new_ticket", msg, None, at, given={"order": "9", "product": "printer"})
    assert given.matched_rules == ("Order 9",)
    assert given.extracted == ()  # the given order wins; nothing extracted is left to store
