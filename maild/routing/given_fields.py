"""Custom field values a customer gave on the web form (or an API channel sent with its message).

The web server validates them (:func:`maild.routing.fields.form_values`, or
:func:`checked_values` for the API) and writes them into the message it spools, as one header
``X-Ticketd-Fields`` holding a JSON object in ASCII. The raw message then carries them through the
spool, so a crash before the worker's commit loses nothing and a retry stores them once.

Policy: the header is believed only on spool rows whose source is ``web`` or ``api``, which only
our HTTP server writes; in mail (SMTP, IMAP, pipe, import) anyone could write it, so it is ignored
there. The worker checks every value again against the fields declared when it runs (the rules may
have been reloaded in between): a value that no longer fits is not stored but named in a
``fields_refused`` event, and the raw message keeps it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from maild.routing.fields import coerce
from maild.routing.schema import FieldDef

HEADER = "X-Ticketd-Fields"
TRUSTED_SOURCES = ("web", "api")
MAX_FIELDS = 100


def encode(values: Mapping[str, str]) -> str:
    """The header value for ``values`` (ASCII JSON, so no encoded words and exact unfolding)."""
    return json.dumps(dict(sorted(values.items())), ensure_ascii=True, separators=(", ", ": "))


def decode(raw: bytes) -> dict[str, str]:
    """The values in ``raw``'s header (only its header block is parsed); {} when there are none
    or the header is not a JSON object of strings."""
    try:
        headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
        text = headers.get(HEADER)
        data = json.loads(str(text)) if text is not None else None
    except (ValueError, TypeError, LookupError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def checked_values(
    fields: Mapping[str, FieldDef], given: Any
) -> tuple[dict[str, str], dict[str, str]]:
    """``(values to store, errors by field name)`` for an API message's ``fields`` object: any
    declared field, typed like ``#set``; an undeclared name is an error (nothing is required)."""
    if given is None:
        return {}, {}
    if not isinstance(given, dict):
        return {}, {"fields": "an object {name: value} is required"}
    if len(given) > MAX_FIELDS:
        return {}, {"fields": f"at most {MAX_FIELDS} fields"}
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, raw in given.items():
        defn = fields.get(name) if isinstance(name, str) else None
        if defn is None:
            known = ", ".join(fields) or "none"
            errors[str(name)] = f"{name}: no such field (declared: {known})"
            continue
        if not isinstance(raw, str | int | float | bool):
            errors[name] = f"{name}: a text, number or true/false value is required"
            continue
        stored, problem = coerce(defn, raw)
        if problem is not None or stored is None:
            errors[name] = problem or f"{name}: invalid"
        else:
            values[name] = stored
    return values, errors


def recheck(
    fields: Mapping[str, FieldDef], given: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The given values checked against the fields declared now: ``(to store, refused: why)``."""
    values: dict[str, str] = {}
    refused: dict[str, str] = {}
    for name, raw in list(given.items())[:MAX_FIELDS]:
        defn = fields.get(name)
        if defn is None:
            refused[name] = "no such field is declared"
            continue
        stored, problem = coerce(defn, raw)
        if problem is not None or stored is None:
            refused[name] = problem or "invalid"
        else:
            values[name] = stored
    return values, refused
