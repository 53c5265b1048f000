"""report.html from templates: every value is escaped wherever it is printed (HTML text,
attributes, SVG <title> and <text>), each section is a template of its own that the page
includes, and the Python side builds no markup (no servers)."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runbook_checks.drill.ledger import LostWrite
from runbook_checks.drill.result import (
    Actor,
    Alerting,
    AlertSeen,
    Event,
    StepRecord,
    Verdict,
)
from runbook_checks.drill.sampler import Sample
from runbook_checks.evidence import html_report, incident_html, svg, templating
from runbook_checks.evidence.coverage import coverage
from runbook_checks.evidence.journal import Journal, ScenarioRecord, SkippedScenario
from runbook_checks.evidence.templating import render
from runbook_checks.findings import Finding, Level
from runbook_checks.monitor.triage import Observation
from runbook_checks.runbook.model import Runbook

if TYPE_CHECKING:
    from conftest import Builders

HOSTILE = "<script>alert('x')</script> & \"quotes\""
SVG = "{http://www.w3.org/2000/svg}"
API = "sev-1-api-server-down"
VOID = {"br", "meta", "hr", "img", "input", "link"}


def h(label: str) -> str:
    """The hostile text, told apart by a label, so each field can be found."""
    return f"{HOSTILE} {label}"


def _hostile_journal(build: Builders) -> Journal:
    finding = Finding(
        Level.ERROR,
        h("kind"),
        API,
        h("message"),
        line=110,
        statement=h("statement"),
        suggestion=h("suggestion"),
        evidence=h("evidence"),
        source="drill:x",
    )
    base = build.result(scenario=f"scenarios/test_api.py::test_{h('test')}", findings=(finding,))
    ledger = base.ledger
    assert ledger is not None
    result = replace(
        base,
        section_title=h("name"),
        fault=h("fault"),
        note=h("note"),
        verdict=Verdict.ERROR,
        error=h("error"),
        events=[*base.events, Event(1.5, h("mark"), h("event"))],
        steps=[
            *base.steps,
            StepRecord("mitigation", 5, h("written"), h("executed"), "failed", 1.0, 0.5,
                       h("output"), h("step"), Actor.HARNESS),
        ],
        samples=[*base.samples, Sample(3.9, 503, 40.0, h("sample"))],
        ledger=replace(ledger, lost=(LostWrite(h("lost"), "f-9", "fault", h("reason")),)),
        alerting=Alerting(
            measured=True, rules=h("rules"), window_s=10.0, time_to_alert_s=0.8,
            alerts=[AlertSeen(h("alert"), API, "sev-1", 0.8, h("summary"))],
            still_firing=[h("firing")],
        ),
        triage=[
            Observation(API, 69, h("symptom"), "http", True, h("probe")),
            Observation(h("column"), 70, "x", "promql", False, ""),
        ],
        impact={"written": "SEV-1", "measured": "SEV-1", "why": h("why"),
                "description": h("impact")},
        communication=[
            {"stage": "investigating", "name": h("update"), "body": h("body"),
             "template": "Status Page Update", "line": 126, "posted": True, "at_s": 1.5},
        ],
    )  # fmt: skip
    journal = build.journal([ScenarioRecord(result, outcome=h("outcome"), operator=h("operator"))])
    env = journal.environment
    return replace(
        journal,
        skipped=(SkippedScenario(h("skipped"), h("section"), None, h("skip-reason")),),
        stale_baseline=(h("stale"),),
        environment=replace(env, backend=h("backend"), versions={h("component"): h("version")}),
    )


class _Page(HTMLParser):
    """The page as a browser reads it: start tags, text nodes with the tags around
    them, attribute values (entities decoded)."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.texts: list[tuple[tuple[str, ...], str]] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, name, value or "") for name, value in attrs]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, name, value or "") for name, value in attrs]

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.texts.append((tuple(self.stack), data))

    def where(self, text: str) -> set[tuple[str, ...]]:
        """The last two tags around every text node holding `text`."""
        return {path[-2:] for path, data in self.texts if text in data}


# label -> the places (the two innermost tags) where the page must print it as text
PRINTED = {
    "name": {("td", "a"), ("section", "h3"), ("svg", "title"), ("tr", "td")},
    "test": {("td", "code"), ("p", "code")},
    "fault": {("tr", "td"), ("section", "p"), ("td", "small")},
    "note": {("td", "small")},
    "outcome": {("td", "small")},
    "operator": {("section", "p")},
    "error": {("section", "p")},
    "mark": {("td", "span"), ("g", "text")},
    "event": {("tr", "td"), ("g", "title")},
    "sample": {("rect", "title")},
    "written": {("td", "code")},
    "executed": {("td", "code")},
    "output": {("details", "pre")},
    "step": {("tr", "td")},
    "lost": {("tr", "td")},
    "reason": {("tr", "td")},
    "rules": {("details", "p")},
    "firing": {("details", "p")},
    "alert": {("td", "code")},
    "summary": {("tr", "td")},
    "symptom": {("tr", "td")},
    "probe": {("tr", "td")},
    "why": {("details", "p")},
    "impact": {("details", "p")},
    "update": {("div", "b")},
    "body": {("div", "p")},
    "kind": {("p", "b")},
    "message": {("div", "p")},
    "statement": {("p", "code")},
    "suggestion": {("div", "p")},
    "evidence": {("details", "pre")},
    "skipped": {("td", "code")},
    "section": {("tr", "td")},
    "skip-reason": {("tr", "td")},
    "stale": {("li", "code")},
    "column": {("tr", "th")},
    "backend": {("main", "p"), ("tr", "td")},
    "component": {("tr", "td")},
    "version": {("tr", "td")},
}


def test_a_hostile_value_is_escaped_everywhere_it_is_printed(
    build: Builders, runbook: Runbook
) -> None:
    journal = _hostile_journal(build)
    page_text = html_report.report_html(journal, coverage(runbook, journal.scenarios))
    assert "<script" not in page_text
    page = _Page(page_text)
    assert "script" not in page.tags
    missing = {
        label: sorted(places - page.where(h(label)))
        for label, places in PRINTED.items()
        if not places <= page.where(h(label))
    }
    assert not missing, f"not printed as text where expected: {missing}"
    # in attributes too: quotes kept the value inside its attribute, whole
    attributes = {(tag, name, value) for tag, name, value in page.attrs}
    scenario = journal.scenarios[0].result.scenario
    assert ("code", "title", scenario) in attributes  # the coverage matrix's drill
    assert ("g", "data-event", h("mark")) in attributes  # the timeline's event mark
    assert any(tag == "td" and name == "title" and value.startswith(h("column")) for
               tag, name, value in page.attrs)  # the heat map's cell  # fmt: skip
    # every chart is well-formed SVG whose title and labels read as the text they are
    charts = re.findall(r"<svg[^>]*class='chart timeline'.*?</svg>", page_text, re.S)
    assert len(charts) == 1
    root = ET.fromstring(charts[0])
    assert root.findtext(f"{SVG}title") == f"timeline: {h('name')} / option A"
    labels = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert any(label.startswith(h("mark")) for label in labels)
    tips = [t.text or "" for t in root.iter(f"{SVG}title")]
    assert f"{h('mark')} at 1.50s: {h('event')}" in tips
    assert any(h("sample") in tip for tip in tips)


def test_charts_escape_their_titles_and_series_names() -> None:
    chart = svg.trend(
        [svg.Series(h("series"), (("10-01", 3.0), ("10-02", 5.0)))],
        title=h("trend"),
        budget_s=8.0,
    )
    root = ET.fromstring(chart)
    assert root.findtext(f"{SVG}title") == h("trend")
    [line] = [p for p in root.iter(f"{SVG}polyline") if p.get("class") == "series"]
    assert line.get("data-series") == h("series")
    assert h("series") in [t.text for t in root.iter(f"{SVG}text")]
    assert f"{h('series')} 10-02: 5s" in [t.text for t in root.iter(f"{SVG}title")]
    bar = ET.fromstring(svg.budget_bar(450.0, 900.0))
    assert bar.findtext(f"{SVG}title") == "50.0% of the budget (log scale)"
    assert svg.budget_bar(None, 900.0) == ""


def test_each_section_is_a_template_the_page_includes(build: Builders, runbook: Runbook) -> None:
    journal = _hostile_journal(build)
    rows = coverage(runbook, journal.scenarios)
    page = html_report.report_html(journal, rows)
    view = html_report.scenario_view(0, journal.scenarios[0])
    assert view.incident is not None
    incident = render("report_incident.html", incident=view.incident)
    assert incident.startswith("<details open><summary>detect · triage · severity</summary>")
    assert incident in page
    assert render("report_scenario.html", s=view, legend=svg.LEGEND) in page
    sections = {
        "report_summary.html": {"summary": html_report.summary_rows(journal.scenarios)},
        "report_triage.html": {
            "triage": incident_html.triage_view(
                journal.scenarios, {t.id: t.title for t in journal.environment.runbook.sections}
            )
        },
        "report_skipped.html": {
            "skipped": journal.skipped,
            "stale_baseline": journal.stale_baseline,
        },
        "report_coverage.html": {"coverage": html_report.coverage_lines(rows)},
        "report_findings.html": {"findings": html_report.finding_views(journal.scenarios)},
        "report_environment.html": {
            "environment": html_report.environment_view(journal.environment)
        },
    }
    for name, context in sections.items():
        part = render(name, **context)
        assert part.strip(), name
        assert part in page, name


def test_a_drill_without_the_stages_before_investigation_has_no_incident_block(
    build: Builders,
) -> None:
    assert incident_html.incident_view(build.result()) is None
    page = html_report.report_html(build.journal([ScenarioRecord(build.result())]), [])
    assert "detect · triage · severity" not in page
    assert "no drill evaluated the runbook's symptoms" in page
    assert "the runbook could not be read: no coverage computed" in page


def test_badge_and_table_still_serve_pages_built_as_text() -> None:
    """review_report.py builds its page from these: plain str, text escaped, cells kept."""
    pill = html_report.badge(HOSTILE)
    assert type(pill) is str
    assert "<script>" not in pill
    assert (pill + "<br>").endswith("</span><br>")
    assert html_report.badge("not drilled") == (
        "<span class='badge not-drilled'>not drilled</span>"
    )
    table = html_report.table((HOSTILE, "n"), [("<b>bold</b>", "3")], numeric=(1,), css="kv")
    assert type(table) is str
    assert "<script>" not in table
    assert "<td><b>bold</b></td><td class='num'>3</td>" in table
    assert table.startswith("<table class='kv'><thead><tr><th>&lt;script&gt;")


RENDERERS = ("html_report.py", "incident_html.py", "svg.py")
TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9-]*(\s|/?>)")


def _markup_in(path: Path) -> list[str]:
    """Imports of html and string constants holding a tag, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "html":
            found.append(f"line {node.lineno}: from html import ...")
        if isinstance(node, ast.Import) and any(a.name == "html" for a in node.names):
            found.append(f"line {node.lineno}: import html")
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and TAG.search(node.value)
        ):
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


@pytest.mark.parametrize("module", RENDERERS)
def test_the_report_modules_build_no_markup(module: str) -> None:
    path = Path(html_report.__file__).parent / module
    assert not _markup_in(path), f"{module} builds HTML from strings: {_markup_in(path)}"


def test_the_markup_check_sees_a_tag_in_a_string(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""<b>docstrings may show markup</b>"""\n'
        "from html import escape\n"
        "X = f\"<td class='{1}'>\"\n"
    )
    assert _markup_in(sample) == [
        "line 2: from html import ...",
        'line 3: "<td class=\'"',
    ]


def test_compiled_templates_are_kept_between_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    templating.environment.cache_clear()
    try:
        page = templating.render("base.html", title="t")
        compiled = list((tmp_path / "cache" / "runbook-checks" / "templates").iterdir())
        assert compiled  # written for the next process
        for file in compiled:  # cut short (its header still matches)
            file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
        templating.environment.cache_clear()
        assert templating.render("base.html", title="t") == page  # compiled afresh
        # a cache folder that cannot be written is skipped, never an error
        (tmp_path / "blocked").write_text("a file, not a folder")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "blocked"))
        templating.environment.cache_clear()
        assert templating.render("base.html", title="t") == page
    finally:
        templating.environment.cache_clear()
