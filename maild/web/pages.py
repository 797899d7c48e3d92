"""HTML pages for the web: sandboxed, autoescaped Jinja2 templates around one shared base.

Templates come from the admin's ``templates/web/`` first, then the package's
``maild/web/templates/``. Every page extends ``base.html.j2``, which links the package's own
stylesheet (``/static/ticketd.css``) and nothing external, and carries no inline script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from maild.config import Config

PACKAGE_TEMPLATES = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")


class Pages:
    """Renders a page template to an aiohttp response."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.env = ImmutableSandboxedEnvironment(
            loader=ChoiceLoader(
                [
                    FileSystemLoader(str(config.templates_dir / "web")),
                    FileSystemLoader(str(PACKAGE_TEMPLATES)),
                ]
            ),
            autoescape=True,
            undefined=StrictUndefined,
        )
        self.env.globals["instance_name"] = config.instance.name

    def html(self, name: str, **values: Any) -> str:
        return self.env.get_template(name).render(**values)

    def render(
        self,
        name: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **values: Any,
    ) -> web.Response:
        return web.Response(
            text=self.html(name, **values),
            status=status,
            content_type="text/html",
            charset="utf-8",
            headers=headers,
        )
