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

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, cast

from jinja2 import (
    Environment,
    FileSystemBytecodeCache,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)
from jinja2.bccache import Bucket
from markupsafe import Markup

__all__ = ["Markup", "environment", "macro", "render", "stylesheet"]


class _CompiledCache(FileSystemBytecodeCache):
    """Compiled templates kept between processes (a drill session renders its report
    once: compiling the templates costs several times the render). Keyed by each
    template's source, so an edited template is compiled again; a cache file that cannot
    be read or written is skipped, never an error."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, TypeError):  # damaged: compile afresh
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            Path(self.directory).mkdir(parents=True, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _compiled_cache() -> _CompiledCache | None:
    """In the user's cache folder, beside the stacks' template clusters."""
    try:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    except RuntimeError:  # no home folder: compile in every process
        return None
    return _CompiledCache(str(Path(base) / "runbook-checks" / "templates"))


@cache
def environment() -> Environment:
    """The templates' environment (built once: it caches compiled templates, in this
    process and, as bytecode, in the user's cache folder)."""
    return Environment(
        loader=PackageLoader("runbook_checks.evidence", "templates"),
        bytecode_cache=_compiled_cache(),
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
