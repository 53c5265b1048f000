"""Severity from measured impact, judged by the severity table's own words (no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.monitor.severity import (
    FeatureLoad,
    Impact,
    MeasuredImpact,
    judge,
    mismatch,
)
from runbook_checks.runbook.model import SeverityLevel
from runbook_checks.runbook.parser import parse_runbook

ROOT = Path(__file__).resolve().parents[3]
LEVELS = parse_runbook(ROOT / "runbooks" / "files-incident-response.md").severities

HEALTHY = {
    "uploads": FeatureLoad(0, 10),
    "downloads": FeatureLoad(0, 10),
    "listing": FeatureLoad(0, 20),
    "share links": FeatureLoad(0, 6),
}


def _with(**failing: FeatureLoad) -> dict[str, FeatureLoad]:
    return {**HEALTHY, **{k.replace("_", " "): v for k, v in failing.items()}}


@pytest.mark.parametrize(
    ("measured", "level", "impact"),
    [
        (MeasuredImpact(health_failing_share=1.0), "SEV-1", Impact.OUTAGE),
        (MeasuredImpact(features=_with(uploads=FeatureLoad(9, 10))), "SEV-1", Impact.FEATURE_DOWN),
        (
            MeasuredImpact(features=_with(share_links=FeatureLoad(6, 6))),
            "SEV-2",
            Impact.FEATURE_DOWN,
        ),
        (MeasuredImpact(features=HEALTHY, p95_s=3.4), "SEV-3", Impact.DEGRADED),
        (MeasuredImpact(features=_with(listing=FeatureLoad(2, 20))), "SEV-3", Impact.DEGRADED),
        (MeasuredImpact(features=HEALTHY, lost_writes=2), "SEV-1", Impact.OUTAGE),
    ],
    ids=["outage", "widespread-uploads", "share-links", "slow", "intermittent", "data-loss"],
)
def test_the_most_severe_level_whose_words_fit(
    measured: MeasuredImpact, level: str, impact: Impact
) -> None:
    judgement = judge("SEV-1", LEVELS, measured)
    assert measured.impact is impact
    assert judgement.measured == level, judgement.why


def test_a_section_rated_milder_than_its_measured_impact_is_a_mismatch() -> None:
    # the share links section is SEV-3; the table lists "share links not working" as SEV-2
    judgement = judge(
        "SEV-3", LEVELS, MeasuredImpact(features=_with(share_links=FeatureLoad(4, 5)))
    )
    found = mismatch(judgement)
    assert found is not None
    assert "SEV-3" in found.message
    assert "SEV-2" in found.message
    assert "share links not working" in found.message
    assert found.cause == "severity: SEV-3 -> SEV-2"


def test_agreeing_severity_and_unmeasured_impact_are_not_judged() -> None:
    assert mismatch(judge("SEV-1", LEVELS, MeasuredImpact(health_failing_share=0.8))) is None
    # nothing failed and nothing slow: no evidence of a milder failure, so no finding
    assert mismatch(judge("SEV-1", LEVELS, MeasuredImpact(features=HEALTHY))) is None
    assert mismatch(judge(None, LEVELS, MeasuredImpact(health_failing_share=1.0))) is None


def test_too_few_requests_say_nothing_about_a_feature() -> None:
    measured = MeasuredImpact(features={"uploads": FeatureLoad(2, 2)})
    assert measured.impact is Impact.NONE
    assert judge("SEV-2", LEVELS, measured).measured is None


def test_words_no_drill_can_see_never_match() -> None:
    cosmetic = SeverityLevel("SEV-4", "Low", "Cosmetic issues", "1 day", None, "UI glitches", 1)
    slow = MeasuredImpact(features=HEALTHY, p95_s=5.0)
    assert judge("SEV-4", (cosmetic,), slow).measured is None


def test_the_description_names_the_figures() -> None:
    measured = MeasuredImpact(
        features={"uploads": FeatureLoad(3, 4)}, health_failing_share=0.25, lost_writes=1
    )
    text = measured.describe()
    assert "uploads 75% of 4 failed" in text
    assert "/health failing in 25% of samples" in text
    assert "1 acknowledged writes lost" in text
    assert measured.as_json()["impact"] == "outage"
