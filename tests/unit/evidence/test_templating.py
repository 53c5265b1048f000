"""The pages' templates: one layout, autoescape by the template's kind, no silent blanks."""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError

from runbook_checks.evidence.templating import Markup, environment, render

HOSTILE = "<script>alert('x')</script> & \"quotes\""


def test_html_templates_escape_what_they_print() -> None:
    page = render("base.html", title=HOSTILE)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;quotes&#34;" in page


def test_markup_built_by_another_template_is_kept() -> None:
    inner = environment().from_string("<b>{{ name }}</b>").render(name=HOSTILE)
    page = environment().from_string("<div>{{ part }}</div>").render(part=Markup(inner))
    assert page.startswith("<div><b>&lt;script&gt;")


def test_every_page_forbids_requests_and_inlines_the_stylesheet() -> None:
    page = render("base.html", title="t")
    assert "default-src 'none'" in page
    assert "--okbg:" in page  # style.css, inlined
    assert "<link" not in page
    assert "<script" not in page


def test_an_undefined_name_is_an_error_not_a_blank() -> None:
    with pytest.raises(UndefinedError, match="title"):
        render("base.html")
