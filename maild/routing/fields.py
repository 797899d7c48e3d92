"""Custom ticket fields: typed values checked one way everywhere, and values found in mail.

Pure functions of the declarations (:class:`~maild.routing.schema.FieldDef`) and the message, so
the loader (``then: {set: ...}``), the agents' ``#set``, the CLI and the web form validate alike,
and a pipeline stage can call them:

- :func:`coerce` turns text into the stored form of a type, or says why it cannot: ``number``
  (an integer or a decimal, stored without a leading ``+`` or trailing zeros), ``choice`` (one of
  ``values``, case ignored, stored as declared), ``date`` (``YYYY-MM-DD``), ``bool`` (true/false,
  yes/no, 1/0; stored ``true``/``false``) and ``text`` (one line, at most MAX_VALUE_CHARS);
- :func:`extract_fields` runs each field's ``extract`` pattern on the subject, the text or a
  header with the rules' regex engine and timeout guards (the caller's ``search``, which spends
  the evaluation's regex budget); the value is the group named ``value``, else the whole match.
  A value that does not fit the type is not taken.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import regex

from maild.pipeline.message import InboundMessage
from maild.routing.schema import FieldDef

MAX_VALUE_CHARS = 1000
Search = Callable[[regex.Pattern[str], str], "regex.Match[str] | Literal[False] | None"]

_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def coerce(defn: FieldDef, raw: Any) -> tuple[str | None, str | None]:
    """``(stored value, None)`` or ``(None, why not)`` for ``raw`` given to field ``defn``."""
    if isinstance(raw, bool):
        raw = "true" if raw else "false"
    if isinstance(raw, dt.date):
        raw = raw.isoformat()
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None, f"{defn.name}: a value is needed"
    if defn.type == "number":
        if not _NUMBER.match(text):
            return None, f"{defn.name}: {text!r} is not a number"
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            return None, f"{defn.name}: {text!r} is not a number"
        stored = (
            format(number.normalize(), "f") if number != number.to_integral() else str(int(number))
        )
        return stored, None
    if defn.type == "choice":
        found = next((v for v in defn.values if v.lower() == text.lower()), None)
        if found is None:
            return None, f"{defn.name}: {text!r} is not one of {', '.join(defn.values)}"
        return found, None
    if defn.type == "date":
        try:
            return dt.date.fromisoformat(text).isoformat(), None
        except ValueError:
            return None, f"{defn.name}: {text!r} is not a date (YYYY-MM-DD)"
    if defn.type == "bool":
        if text.lower() in _TRUE:
            return "true", None
        if text.lower() in _FALSE:
            return "false", None
        return None, f"{defn.name}: {text!r} is not true or false"
    if "\n" in text or "\r" in text or len(text) > MAX_VALUE_CHARS:
        return None, f"{defn.name}: one line of at most {MAX_VALUE_CHARS} characters"
    return text, None


def extract_fields(
    fields: Iterable[FieldDef], msg: InboundMessage, search: Search, limit: int
) -> dict[str, str]:
    """The values the fields' ``extract`` patterns find in ``msg`` (each text cut to ``limit``)."""
    found: dict[str, str] = {}
    for defn in fields:
        spec = defn.extract
        if spec is None:
            continue
        if spec.source == "subject":
            texts: Iterable[str] = (msg.subject,)
        elif spec.source == "text":
            texts = (msg.text,)
        else:
            texts = msg.header_all(spec.header or "")
        for text in texts:
            match = search(spec.pattern, text[:limit])
            if not match:
                continue
            raw = match.group("value") if "value" in spec.pattern.groupindex else match.group()
            value, problem = coerce(defn, raw)
            if problem is None and value is not None:
                found[defn.name] = value
                break
    return found


def undeclared(values: Iterable[tuple[str, str]], fields: Mapping[str, FieldDef]) -> list[str]:
    """Names of stored values that no field declares (renamed or removed): kept, but warned of."""
    return sorted({name for name, _value in values if name not in fields})


def form_fields(fields: Mapping[str, FieldDef]) -> list[dict[str, Any]]:
    """The fields the web form shows (``on_form`` or ``required_on_form``), in declared order:
    ``{name, label, type, values, required}`` each. The form (:mod:`maild.web.form`) renders
    these and passes what was posted to :func:`form_values`."""
    return [
        {
            "name": f.name,
            "label": f.label or f.name,
            "type": f.type,
            "values": list(f.values),
            "required": f.required_on_form,
        }
        for f in fields.values()
        if f.on_form
    ]


def form_values(
    fields: Mapping[str, FieldDef], posted: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """``(values to store, errors by field name)`` for what the form posted; fields the form
    does not show are ignored, a required field left empty is an error. Errors name the field
    by its label (``Order: 'seven' is not a number``)."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for defn in fields.values():
        if not defn.on_form:
            continue
        raw = (posted.get(defn.name) or "").strip()
        if not raw:
            if defn.required_on_form:
                errors[defn.name] = f"{defn.label or defn.name} is required"
            continue
        stored, problem = coerce(defn, raw)
        if problem is not None or stored is None:
            # The form shows labels, so the error names the field by its label too.
            why = (problem or "invalid").removeprefix(f"{defn.name}: ")
            errors[defn.name] = f"{defn.label or defn.name}: {why}"
        else:
            values[defn.name] = stored
    return values, errors
