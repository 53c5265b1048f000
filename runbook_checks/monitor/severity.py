"""Severity from what a failure did: measured impact against the severity table's words.

A runbook's severity table says what each level means ("Complete service outage, data
loss", "Major feature unavailable", "Slow response times, intermittent errors") and gives
examples ("widespread upload failures", "share links not working"). A drill measures the
failure's impact (the share of failing requests per feature, whether the whole service
answered, acknowledged writes lost, how slow it got) and this module finds the most severe
level whose own words describe it. `severity-mismatch` is the section's SEV disagreeing
with that.

Only what can be measured is judged: a level that speaks only of things no drill can see
("UI glitches, typos") never matches, and a failure with no measured impact is not judged
(no finding), because an absent measurement is not evidence of a milder failure.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from runbook_checks.runbook.model import SeverityLevel

SEVERITY_MISMATCH = "severity-mismatch"

FEATURE_DOWN_SHARE = 0.5  # a feature is "unavailable" when at least half its requests fail
WIDESPREAD_SHARE = 0.5  # "widespread upload failures"
SLOW_P95_S = 2.0  # "slow response times": the performance section's own p95 line
MIN_REQUESTS = 3  # fewer requests to a feature than this say nothing about it


class Impact(enum.IntEnum):
    """Classes of impact, mildest first (the order decides "as severe or more")."""

    NONE = 0
    DEGRADED = 1  # slower, or some requests fail
    FEATURE_DOWN = 2  # one feature (not the whole service) unavailable
    OUTAGE = 3  # the whole service unavailable, or acknowledged data lost


@dataclass(frozen=True)
class FeatureLoad:
    failed: int
    total: int

    @property
    def share(self) -> float:
        return self.failed / self.total if self.total else 0.0


@dataclass(frozen=True)
class MeasuredImpact:
    """What one failure did while it lasted (from the API's own counters, the health
    samples of the front door and the ledger of acknowledged writes)."""

    features: Mapping[str, FeatureLoad] = field(default_factory=dict)  # feature -> requests
    health_failing_share: float | None = None  # of the front door's /health samples
    lost_writes: int = 0
    p95_s: float | None = None  # slowest feature's p95 during the failure
    source: str = ""  # where the figures come from ("prometheus", "health samples")

    @property
    def whole_service(self) -> bool:
        if self.health_failing_share is not None and self.health_failing_share >= 0.5:
            return True
        judged = [f for f in self.features.values() if f.total >= MIN_REQUESTS]
        return len(judged) >= 2 and all(f.share >= 0.9 for f in judged)

    def down(self) -> list[str]:
        return sorted(
            name
            for name, f in self.features.items()
            if f.total >= MIN_REQUESTS and f.share >= FEATURE_DOWN_SHARE
        )

    @property
    def impact(self) -> Impact:
        if self.whole_service or self.lost_writes:
            return Impact.OUTAGE
        if self.down():
            return Impact.FEATURE_DOWN
        failing = any(f.failed for f in self.features.values() if f.total >= MIN_REQUESTS)
        if failing or (self.p95_s is not None and self.p95_s > SLOW_P95_S):
            return Impact.DEGRADED
        return Impact.NONE

    def describe(self) -> str:
        parts: list[str] = []
        if self.health_failing_share is not None:
            parts.append(f"/health failing in {self.health_failing_share:.0%} of samples")
        for name, f in sorted(self.features.items()):
            if f.total:
                parts.append(f"{name} {f.share:.0%} of {f.total} failed")
        if self.p95_s is not None:
            parts.append(f"p95 {self.p95_s:.2f}s")
        if self.lost_writes:
            parts.append(f"{self.lost_writes} acknowledged writes lost")
        return "; ".join(parts) or "no requests measured"

    def as_json(self) -> dict[str, object]:
        return {
            "features": {k: [v.failed, v.total] for k, v in sorted(self.features.items())},
            "health_failing_share": self.health_failing_share,
            "lost_writes": self.lost_writes,
            "p95_s": self.p95_s,
            "source": self.source,
            "impact": self.impact.name.lower(),
            "description": self.describe(),
        }


# The words of a severity table, and what each says about a measured failure: a level
# matches when any of its phrases holds for the impact (an example naming the feature is
# tried before the general words, so the finding quotes the most specific one).
_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"data loss|lost data", re.I), "data-loss"),
    (re.compile(r"(?:complete|total|full)\s+(?:service\s+)?outage|service outage", re.I), "outage"),
    (re.compile(r"\b(?:api|service|site)\s+down\b|\bdatabase failure", re.I), "outage"),
    (re.compile(r"widespread\s+(\w+)\s+failures?", re.I), "widespread"),
    (re.compile(r"(\w+)\s+links?\s+not working|(\w+)\s+broken", re.I), "named-feature-down"),
    (re.compile(r"major feature unavailable|feature (?:is )?unavailable", re.I), "feature-down"),
    (re.compile(r"degradation|slow response|intermittent errors?|slow", re.I), "degraded"),
)


def _stem(word: str) -> str:
    return word.lower().rstrip("s")


def _feature_named(word: str, features: Sequence[str]) -> str | None:
    stem = _stem(word)
    return next(
        (f for f in features if _stem(f).startswith(stem) or stem.startswith(_stem(f))), None
    )


def matches(level: SeverityLevel, measured: MeasuredImpact) -> str | None:
    """Why `level`'s own words describe `measured` (None: they do not)."""
    text = f"{level.impact}; {level.examples}"
    impact = measured.impact
    down = measured.down()
    for pattern, meaning in _PHRASES:
        for match in pattern.finditer(text):
            phrase = match.group(0)
            if meaning == "data-loss" and measured.lost_writes:
                return f"{phrase!r}: {measured.lost_writes} acknowledged writes lost"
            if meaning == "outage" and measured.whole_service:
                return f"{phrase!r}: the whole service failed"
            if meaning == "widespread":
                feature = _feature_named(match.group(1), list(measured.features))
                load = measured.features.get(feature) if feature else None
                if (
                    load is not None
                    and load.total >= MIN_REQUESTS
                    and (load.share >= WIDESPREAD_SHARE)
                ):
                    return f"{phrase!r}: {feature} {load.share:.0%} of {load.total} failed"
            if meaning == "feature-down" and down and not measured.whole_service:
                return f"{phrase!r}: {', '.join(down)} unavailable"
            if meaning == "named-feature-down":
                word = match.group(1) or match.group(2)
                feature = _feature_named(word, down)
                if feature is not None and not measured.whole_service:
                    return f"{phrase!r}: {feature} unavailable"
            if meaning == "degraded" and impact is Impact.DEGRADED:
                return f"{phrase!r}: {measured.describe()}"
    return None


@dataclass(frozen=True)
class SeverityJudgement:
    written: str | None  # the section's SEV
    measured: str | None  # the most severe level whose words describe the impact
    why: str
    impact: MeasuredImpact


def judge(
    written: str | None, levels: Sequence[SeverityLevel], measured: MeasuredImpact
) -> SeverityJudgement:
    """The most severe level (the table's order: first is most severe) whose words fit."""
    for level in levels:
        why = matches(level, measured)
        if why is not None:
            return SeverityJudgement(written, level.level, why, measured)
    return SeverityJudgement(written, None, "no level's words describe it", measured)


@dataclass(frozen=True)
class Mismatch:
    """The section's SEV disagrees with the level the measured impact fits."""

    message: str
    suggestion: str
    cause: str


def mismatch(judgement: SeverityJudgement) -> Mismatch | None:
    """`severity-mismatch` when the section's SEV is not the level the impact measured
    (nothing when either is unknown or nothing was measured)."""
    if (
        judgement.written is None
        or judgement.measured is None
        or judgement.impact.impact is Impact.NONE
        or judgement.measured.upper() == judgement.written.upper()
    ):
        return None
    return Mismatch(
        f"the section says {judgement.written}, but the failure measured as "
        f"{judgement.measured} by the severity table's own words ({judgement.why}); "
        f"measured: {judgement.impact.describe()}",
        f"rate the section {judgement.measured}, or change the severity table's "
        "definitions so they agree",
        f"severity: {judgement.written} -> {judgement.measured}",
    )
