"""Rendering the admin's Jinja2 templates safely, with the shipped defaults as a fallback.

Templates render in an immutable sandbox with strict undefined variables, from plain dicts only.
The sandbox is not a resource limit, so template files and rendered output are capped. When the
admin's template fails, the shipped default of the same name renders instead and the caller is told
why, so that a notification is never lost to a typo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

DEFAULTS_DIR = Path(__file__).with_name("defaults")
MAX_TEMPLATE_BYTES = 256 * 1024
MAX_OUTPUT_CHARS = 1024 * 1024


class TemplateFailure(Exception):
    """A template could not be rendered; the message says which and why."""


class _CappedLoader(FileSystemLoader):
    def get_source(self, environment, template):  # type: ignore[override]
        source, filename, uptodate = super().get_source(environment, template)
        if len(source.encode("utf-8")) > MAX_TEMPLATE_BYTES:
            raise TemplateFailure(f"{filename}: template larger than {MAX_TEMPLATE_BYTES} bytes")
        return source, filename, uptodate


def _environment(loader: BaseLoader) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
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
    text: str
    html: str | None
    error: str | None  # why the admin's template was not used, if it was not


class Renderer:
    """Renders ``NAME.txt.j2`` (and ``NAME.html.j2`` if present) from templates_dir."""

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
        try:
            text, html = self._render(self.custom, name, context)
            return Rendered(text, html, None)
        except (TemplateError, TemplateFailure, RecursionError, MemoryError) as exc:
            error = f"template {name!r}: {type(exc).__name__}: {exc}"
        try:
            text, html = self._render(self.default, name, context)
        except (TemplateError, TemplateFailure) as exc:
            raise TemplateFailure(f"{error}; the shipped default failed too: {exc}") from exc
        return Rendered(text, html, error)

    @staticmethod
    def _render(
        env: ImmutableSandboxedEnvironment, name: str, context: dict[str, Any]
    ) -> tuple[str, str | None]:
        text = env.get_template(f"{name}.txt.j2").render(context)
        try:
            html_template = env.get_template(f"{name}.html.j2")
        except TemplateNotFound:
            html = None
        else:
            html = html_template.render(context)
        for value in (text, html or ""):
            if len(value) > MAX_OUTPUT_CHARS:
                raise TemplateFailure(f"output larger than {MAX_OUTPUT_CHARS} characters")
        return text, html
