"""Turning parsed YAML into typed, frozen settings: the parsing of config.yaml (C parser first,
ruamel's round-trip loader for what it leaves), ``file:line`` of a key, building a dataclass section
with every value checked against its type hint, and paths resolved against the config's folder.

Used by :mod:`maild.config` and the sections defined elsewhere (``maild.config_imap``).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Set
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from maild.errors import ConfigError
from maild.yamlfile import YamlProblem, read_yaml_text

SLOW = object()  # parse_fast's answer for a text it leaves to ruamel's round-trip loader
_MERGE_OR_DIRECTIVE = re.compile(r"<<|^%", re.MULTILINE)


def parse_fast(text: str) -> Any:
    """The data of ``text`` as ``YAML(typ="rt")`` gives it, through ruamel's C parser (a tenth of
    the time: every CLI command reads config.yaml), or ``SLOW``.

    ``SLOW`` for whatever :mod:`maild.yamlfile` refuses or reads otherwise than the round-trip
    loader (anchors, aliases, tags, duplicate keys, invalid YAML, merge keys, a ``%YAML``
    directive): :func:`parse_round_trip` reads those as before, with the same messages.
    """
    if _MERGE_OR_DIRECTIVE.search(text):
        return SLOW
    try:
        return read_yaml_text(text)
    except (YamlProblem, YAMLError):
        return SLOW


def parse_round_trip(text: str, path: Path) -> Any:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc}") from exc
    except YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc


def merge(base: Any, over: dict[str, Any]) -> Any:
    if not isinstance(base, dict):
        return over
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def where_in_file(data: Any, key: str, path: Path) -> str:
    """``file:line`` for ``key`` inside the mapping ``data``, when ruamel kept the position."""
    lc = getattr(data, "lc", None)
    if lc is not None:
        try:
            line, _col = lc.key(key)
            return f"{path}:{line + 1}"
        except (KeyError, TypeError):
            pass
        if getattr(lc, "line", None) is not None:
            return f"{path}:{lc.line + 1}"
    return str(path)


def build_section(
    cls: type, data: Any, *, path: Path, keypath: str, exclude: Set[str] = frozenset()
) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {keypath or 'the top level'}: expected a mapping of keys")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in exclude}
    for key in data:
        if key not in fields:
            full = f"{keypath}.{key}" if keypath else str(key)
            known = ", ".join(sorted(fields))
            raise ConfigError(
                f"{where_in_file(data, key, path)}: {full}: unknown key (known: {known})"
            )
    kwargs = {}
    for name in fields:
        if name not in data:
            continue
        full = f"{keypath}.{name}" if keypath else name
        kwargs[name] = _convert(
            hints[name], data[name], where=where_in_file(data, name, path), keypath=full, path=path
        )
    return cls(**kwargs)


def _convert(hint: Any, value: Any, *, where: str, keypath: str, path: Path) -> Any:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where=where, keypath=keypath, path=path)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build_section(hint, value, path=path, keypath=keypath)
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise ConfigError(
                f"{where}: {keypath}: must be one of {', '.join(choices)}, not {value!r}"
            )
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {keypath}: expected a list")
        (item,) = get_args(hint)[:1]
        return tuple(
            _convert(item, v, where=where, keypath=f"{keypath}[{i}]", path=path)
            for i, v in enumerate(value)
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {keypath}: expected a mapping")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {keypath}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {keypath}: expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: {keypath}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: {keypath}: expected a non-empty string, got {value!r}")
        return str(value)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: {keypath}: expected a path, got {value!r}")
        return Path(value)
    raise ConfigError(f"{where}: {keypath}: unsupported value {value!r}")  # pragma: no cover


@typing.overload
def resolve_path(path: Path, base: Path) -> Path: ...
@typing.overload
def resolve_path(path: None, base: Path) -> None: ...
@typing.overload
def resolve_path(path: Path | None, base: Path) -> Path | None: ...
def resolve_path(path: Path | None, base: Path) -> Path | None:
    """``path`` with ``~`` expanded, relative to ``base`` (the config file's folder) unless absolute."""
    if path is None:
        return None
    path = path.expanduser()
    return path if path.is_absolute() else (base / path).resolve()
