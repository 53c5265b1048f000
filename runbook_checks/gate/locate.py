"""Every step of a runbook with the section it belongs to (each step once)."""

from __future__ import annotations

from dataclasses import dataclass

from runbook_checks.runbook.model import Option, Runbook, Section, Step


@dataclass(frozen=True)
class Located:
    section: Section
    step: Step
    option: Option | None = None  # the mitigation option the step is part of

    @property
    def end_line(self) -> int:
        raw = self.step.raw or self.step.text
        return self.step.line + raw.rstrip("\n").count("\n")


def runbook_steps(runbook: Runbook) -> list[Located]:
    """Investigation, option and other steps of every section, in document order."""
    seen: set[tuple[int, str]] = set()
    found: list[Located] = []

    def add(section: Section, step: Step, option: Option | None = None) -> None:
        key = (step.line, step.text)
        if key not in seen:
            seen.add(key)
            found.append(Located(section, step, option))

    # scenario sections first: their steps belong to them, not to an enclosing heading
    for section in sorted(runbook.sections, key=lambda s: not s.is_scenario):
        for step in section.investigation:
            add(section, step)
        for option in section.options:
            for step in option.steps:
                add(section, step, option)
        for step in section.other_steps:
            add(section, step)
    return sorted(found, key=lambda item: item.step.line)
