"""`Section.symptom_lines`: the source line of each symptom bullet, parallel to `symptoms`."""

from __future__ import annotations

import textwrap
from pathlib import Path

from runbook_checks.runbook import parse_runbook, parse_text

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "runbooks" / "files-incident-response.md"
CORRECTED = ROOT / "tests" / "fixtures" / "runbooks" / "files-incident-response.corrected.md"
PAYMENTS = Path(__file__).parent / "fixtures" / "payments-runbook.md"


def test_every_symptom_of_the_shipped_and_corrected_runbooks_has_its_own_line() -> None:
    for path in (SHIPPED, CORRECTED):
        lines = path.read_text(encoding="utf-8").split("\n")
        runbook = parse_runbook(path)
        assert runbook.scenarios
        for section in runbook.scenarios:
            assert len(section.symptom_lines) == len(section.symptoms) > 0
            for line, symptom in zip(section.symptom_lines, section.symptoms, strict=True):
                assert lines[line - 1] == f"- {symptom}", (path.name, line)
            assert section.line < min(section.symptom_lines)
            assert max(section.symptom_lines) <= section.end_line


def test_shipped_runbook_lines_as_written() -> None:
    section = parse_runbook(SHIPPED).section("SEV-2: Performance Degradation")
    assert section.symptom_lines == (338, 339, 340)
    assert section.symptoms[1] == "API response time > 2s (p95)"


def test_labelled_paragraph_star_bullets_and_wrapped_bullets() -> None:
    runbook = parse_runbook(PAYMENTS)
    processor = runbook.section("Card processor unreachable")
    assert processor.symptoms == ("`POST /charges` returns 502", "Processor dashboard is red")
    assert processor.symptom_lines == (23, 24)  # line numbers of the file, front matter too
    slow = runbook.section("P2 - Slow refunds")
    assert slow.symptoms == ("refunds take minutes",)
    assert slow.symptom_lines == (58,)

    text = textwrap.dedent(
        """\
        # Runbook
        ## SEV-2: Cache outage
        ### Symptoms

        1. Hit rate below 50%
           on the listing dashboard

        2. `redis-cli PING` times out
        ### Investigation
        ```bash
        redis-cli PING
        ```
        """
    )
    (cache,) = parse_text(text, Path("cache.md")).scenarios
    assert len(cache.symptoms) == 2
    assert cache.symptoms[0].startswith("Hit rate below 50%")
    assert cache.symptom_lines == (5, 8)


def test_a_section_without_symptoms_has_no_lines() -> None:
    text = "# Runbook\n## SEV-1: Outage\n### Investigation\n```bash\npg_isready\n```\n"
    (outage,) = parse_text(text, Path("outage.md")).scenarios
    assert outage.symptoms == ()
    assert outage.symptom_lines == ()
