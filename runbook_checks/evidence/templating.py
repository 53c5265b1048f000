"""The pages runbook-checks writes (report.html, the review pages) are Jinja2 templates.

Templates live in `runbook_checks/evidence/templates/` and ship in the wheel. Every HTML
page extends `base.html`, the one layout: the Content-Security-Policy that forbids every
request (the page is one self-contained file: inline styles and SVG, no script), the
shared stylesheet `style.css` inlined, a title, a heading and a footer. A new page or a
new section is a template, not string code.

Escaping is Jinja2's autoescape, by the template's name: `.html` and `.svg` templates
escape every value they print unless it is `Markup` (HTML already built by another
template or macro); `.md` templates print text as it is. An undefined name is an error
(StrictUndefined), so a template never silently prints nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, cast

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

__all__ = ["Markup", "environment", "macro", "render", "stylesheet"]


@cache
def environment() -> Environment:
    """The templates' environment (built once: it caches compiled templates)."""
    return Environment(
        loader=PackageLoader("runbook_checks.evidence", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html", "svg"), default_for_string=True, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, /, **context: Any) -> str:
    """`template` (a name under templates/) rendered with `context`."""
    return environment().get_template(template).render(**context)


def macro(template: str, name: str, /) -> Callable[..., Markup]:
    """The macro `name` of `template`, callable from Python (its output is `Markup`)."""
    return cast("Callable[..., Markup]", getattr(environment().get_template(template).module, name))


def stylesheet() -> str:
    """The shared stylesheet every page inlines (style.css)."""
    return environment().get_template("style.css").render()
