"""Rendering the admin's Jinja2 templates safely, with the shipped defaults as a fallback.

Templates render in an immutable sandbox with strict undefined variables, from plain dicts only.
The sandbox is not a resource limit, so template files and rendered output are capped, output is
counted while it is produced, and the operations that make huge values from small ones
(``'x' * 10**9``, ``9 ** 9 ** 9``, ``'x'|center(10**9)``, ``'{:>999999999}'.format(1)``) are
refused before they run. When the admin's template fails for any reason, the shipped default of
the same name renders instead and the caller is told why, so that a notification is never lost to
a typo.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

DEFAULTS_DIR = Path(__file__).with_name("defaults")
MAX_TEMPLATE_BYTES = 256 * 1024
MAX_OUTPUT_CHARS = 1024 * 1024
MAX_EXPONENT = 1000
_SIZED = (str, bytes, list, tuple)


class TemplateFailure(Exception):
    """A template could not be rendered; the message says which and why."""


class _CappedLoader(FileSystemLoader):
    """A file loader that refuses template files over :data:`MAX_TEMPLATE_BYTES`."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if len(source.encode("utf-8")) > MAX_TEMPLATE_BYTES:
            raise TemplateFailure(f"{filename}: template larger than {MAX_TEMPLATE_BYTES} bytes")
        return source, filename, uptodate


_HUGE_FORMAT = re.compile(r"[{%][^{}%]*?\d{7,}")


def _check_numbers(args: Iterable[Any]) -> None:
    """Refuse a width, count or padding larger than the output may ever be."""
    for value in args:
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_OUTPUT_CHARS:
            raise SecurityError(f"number {value} is larger than the output may be")


def _check_format(fmt: Any) -> None:
    """Refuse ``{:>999999999}`` and ``%999999999s`` in a format string."""
    if isinstance(fmt, str) and _HUGE_FORMAT.search(fmt):
        raise SecurityError("format width larger than the output may be")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with resource guards on arithmetic, calls and filters."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for name, func in list(self.filters.items()):
            self.filters[name] = _guarded(func, format_value=name == "format")

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, _SIZED) and isinstance(count, int)
                if sized and len(seq) * max(count, 0) > MAX_OUTPUT_CHARS:
                    raise SecurityError("repetition larger than the output may be")
            return operator.mul(left, right)
        if operator_ == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is too large")
            return operator.pow(left, right)
        if operator_ == "%":
            _check_format(left)
        return super().call_binop(context, operator_, left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _check_numbers((*args, *kwargs.values()))
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format(value.__self__)
        return wrapped


def _guarded(func: Callable[..., Any], *, format_value: bool) -> Callable[..., Any]:
    """``func`` (a filter) refusing huge numeric arguments; ``format`` checks its value too."""
    skip = 2 if hasattr(func, "jinja_pass_arg") else 1  # the context, then the filtered value

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _check_numbers((*args[skip:], *kwargs.values()))
        if format_value and len(args) >= skip:
            _check_format(args[skip - 1])
        return func(*args, **kwargs)

    return wrapper


def _environment(loader: BaseLoader) -> _Sandbox:
    return _Sandbox(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=False
        ),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )


@dataclass(frozen=True)
class Rendered:
    """A rendered message body: plain text, an optional HTML alternative, and why the admin's
    template was not used, if it was not."""

    text: str
    html: str | None
    error: str | None


class Renderer:
    """Renders ``NAME.txt.j2`` (and ``NAME.html.j2`` beside it, if present) from templates_dir."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self.custom = _environment(
            ChoiceLoader([_CappedLoader(str(templates_dir)), _CappedLoader(str(DEFAULTS_DIR))])
        )
        self.default = _environment(_CappedLoader(str(DEFAULTS_DIR)))

    def names(self) -> set[str]:
        """Template names available (for the rules' validation)."""
        found = set()
        for folder in (self.templates_dir, DEFAULTS_DIR):
            if folder.is_dir():
                found |= {
                    p.name[: -len(".txt.j2")]
                    for p in folder.glob("*.txt.j2")
                    if not p.name.startswith("_")
                }
        return found

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        """Render ``name``; fall back to the shipped default when the admin's copy fails.

        Raises :class:`TemplateFailure` only when the shipped default fails too (or does not
        exist), which is a bug in ticketd or in the caller's context.
        """
        try:
            text, html = self._render(self.custom, name, context)
            return Rendered(text, html, None)
        except Exception as exc:  # any error in an admin's template: fall back, never lose mail
            error = f"template {name!r}: {type(exc).__name__}: {str(exc)[:500]}"
        try:
            text, html = self._render(self.default, name, context)
        except Exception as exc:
            raise TemplateFailure(f"{error}; the shipped default failed too: {exc}") from exc
        return Rendered(text, html, error)

    def render_file(self, filename: str, context: dict[str, Any]) -> tuple[str, str | None]:
        """One template file (e.g. ``webhook_slack.mrkdwn.j2``) with the same fallback as
        :meth:`render`: the text, and why the admin's copy was not used (or None)."""
        try:
            return _capped(self.custom.get_template(filename), context), None
        except Exception as exc:  # the admin's copy failed: the shipped default renders instead
            error = f"template {filename!r}: {type(exc).__name__}: {str(exc)[:500]}"
        try:
            return _capped(self.default.get_template(filename), context), error
        except Exception as exc:
            raise TemplateFailure(f"{error}; the shipped default failed too: {exc}") from exc

    @staticmethod
    def _render(
        env: ImmutableSandboxedEnvironment, name: str, context: dict[str, Any]
    ) -> tuple[str, str | None]:
        text_template = env.get_template(f"{name}.txt.j2")
        text = _capped(text_template, context)
        try:
            html_template = env.get_template(f"{name}.html.j2")
        except TemplateNotFound:
            return text, None
        # Only an HTML template beside the text one counts: an admin who removed ack.html.j2
        # gets plain text, not the shipped HTML next to their own text.
        if _folder(html_template) != _folder(text_template):
            return text, None
        return text, _capped(html_template, context)


def _folder(template: Template) -> Path | None:
    return Path(template.filename).parent if template.filename else None


def _capped(template: Template, context: dict[str, Any]) -> str:
    """Render, stopping as soon as the output passes :data:`MAX_OUTPUT_CHARS`."""
    parts: list[str] = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise TemplateFailure(f"output larger than {MAX_OUTPUT_CHARS} characters")
        parts.append(chunk)
    return "".join(parts)


__all__ = ["MAX_OUTPUT_CHARS", "Rendered", "Renderer", "TemplateError", "TemplateFailure"]
