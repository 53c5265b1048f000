"""The load run's pages: verdict.md from its template, report.html extending base.html."""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runbook_checks.errors import RunbookChecksError
from runbook_checks.load import report
from runbook_checks.load.timeline import Timeline
from tests.unit.evidence.test_report_templates import _markup_in
from tests.unit.load.load_inputs import Inputs, inputs


def _bare(folder: Path) -> Inputs:
    """No CPU figures, no timeline, a pool of unknown size, no failures."""
    run, stats, verdict, headroom, _ = inputs(folder, saturated=False)
    run.cpu = None
    run.failures = []
    run.samples = []
    headroom = dataclasses.replace(headroom, pool_size=None, notes=(), projections=(), stages=())
    return run, stats, verdict, headroom, Timeline(0.0, (), {})


EXPECTED = Path(__file__).with_name("verdict_expected.md")


def test_verdict_md_says_the_verdict_endpoints_stages_and_pool(tmp_path: Path) -> None:
    # verdict_expected.md is what the string code wrote for these inputs before the
    # template replaced it (the comparison ran on three variants, commit 8d7055e)
    assert report.verdict_markdown(*inputs(tmp_path)) == EXPECTED.read_text(encoding="utf-8")


def test_verdict_md_without_cpu_timeline_or_failures(tmp_path: Path) -> None:
    text = report.verdict_markdown(*_bare(tmp_path))
    assert "- saturated: never (no connection shortage seen)\n" in text
    assert "recommended with 25% margin: **5**\n" in text  # pool size unknown: no judgement
    for absent in ("locust CPU", "### Failures", "stage by stage", "Drift:", "busy connections"):
        assert absent not in text
    assert text.endswith("locust*.log\n")


SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert('x')</script> \"q\" & co"


def test_report_html_escapes_endpoint_names_errors_and_mark_labels(tmp_path: Path) -> None:
    page = report.report_html(
        *inputs(tmp_path, endpoint=f"/f/{HOSTILE}", mark=f"mark {HOSTILE}", error=HOSTILE)
    )
    assert "<script" not in page
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &#34;q&#34; &amp; co"
    assert f"GET /f/{escaped}" in page  # endpoints table, failures table, verdict line
    assert f">mark {escaped}</text>" in page  # the chart's label
    assert f"<title>mark {escaped} at 12.5s</title>" in page  # and its tooltip
    assert f"<td>{escaped}</td>" in page  # the error as locust recorded it
    # the chart is well-formed SVG whose label and tooltip read as the text they are
    (chart,) = re.findall(r"<svg[^>]*class='chart load-timeline'.*?</svg>", page, re.S)
    root = ET.fromstring(chart)
    assert f"mark {HOSTILE}" in [t.text for t in root.iter(f"{SVG}text")]
    assert f"mark {HOSTILE} at 12.5s" in [t.text for t in root.iter(f"{SVG}title")]


def test_report_html_is_one_page_of_the_shared_layout(tmp_path: Path) -> None:
    page = report.report_html(*inputs(tmp_path))
    assert page.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in page  # base.html's
    assert "default-src 'none'" in page
    assert "<title>Load run abc123: FAIL</title>" in page
    for heading in ("Thresholds", "Endpoints", "Timeline", "Database pool headroom"):
        assert f"<h2>{heading}</h2>" in page
    # where the thresholds come from, the endpoint's own line beside the default
    assert "p95 800 ms: runbook line 42; error rate 1%: --error-rate" in page
    assert "<td>POST /api/storage/files/upload</td><td class='num'>10000</td>" in page
    assert "FAIL: p95, error rate" in page
    assert "at 10-20 users (while ramping), 10.5 s in" in page
    assert "NOT enough" in page
    for kind in ("requests", "failures", "users"):
        assert f"<polyline class='{kind}'" in page
    assert page.count("<g class='stage'>") == 4  # the step shape's four stages
    assert "12s: 3 of 22 requests failed" in page


def test_report_html_without_per_second_records(tmp_path: Path) -> None:
    page = report.report_html(*_bare(tmp_path))
    assert "No per-second records were written" in page
    assert "<polyline" not in page
    assert "never (no connection shortage seen)" in page


@pytest.mark.parametrize("module", ["report.py", "chart.py"])
def test_the_load_page_modules_build_no_markup(module: str) -> None:
    path = Path(report.__file__).parent / module
    assert not _markup_in(path), f"{module} builds HTML from strings: {_markup_in(path)}"


def test_write_report_keeps_the_page_beside_the_verdict_in_the_manifest(tmp_path: Path) -> None:
    run, *rest = inputs(tmp_path)
    report.write_report(run, *rest)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<title>Load run abc123: FAIL</title>" in page
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert {"report.html", "verdict.md", "verdict.json"} <= set(manifest["files"])


def test_a_secret_on_the_page_stops_every_file(tmp_path: Path) -> None:
    # a locustfile that names a request after the token it sent
    run, *rest = inputs(tmp_path, mark="x", endpoint="/admin?token=tok-123")
    run.secrets = ["tok-123"]
    with pytest.raises(RunbookChecksError) as raised:
        report.write_report(run, *rest)
    assert "report.html" in str(raised.value)
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_secret_only_in_a_mark_label_is_caught_on_the_page(tmp_path: Path) -> None:
    # marks are printed by the page alone (verdict.md and .json do not list them)
    run, *rest = inputs(tmp_path, mark="bearer tok-123")
    run.secrets = ["tok-123"]
    with pytest.raises(RunbookChecksError, match=r"would be written to report\.html\n"):
        report.write_report(run, *rest)
