"""Prometheus alert rules: derived from a runbook's symptoms, or a user's own file.

`derive_rules` turns every probe that carries a number or a measurable condition into an
alert rule naming its section (labels severity and runbook_section; annotations summary,
runbook, runbook_line). `load_rules` reads a user's rule file (`--alert-rules PATH`) and
refuses bad input with the file, the line, the field and what to do. `rule_tests` writes
the promtool unit tests of the derived rules: each fires under its firing case(s) and
stays quiet under healthy series.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from runbook_checks.errors import UsageError
from runbook_checks.monitor import promtool
from runbook_checks.monitor.probes import (
    PROM_UNIT_MS,
    RuleSpec,
    Series,
    format_duration,
    symptom_probes,
)
from runbook_checks.monitor.promtool import node_value
from runbook_checks.runbook.model import Runbook
from runbook_checks.vocabulary import Vocabulary

GROUP = "runbook-checks"
DERIVED = "derived"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|[smhdwy])")
DURATION_HINT = "a Prometheus duration: 30s, 5m, 1h30m"


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration: "10s" -> 10, "5m" -> 300, "2m30s" -> 150.
    ValueError when it is not one."""
    clean = text.strip()
    parts = list(_DURATION.finditer(clean))
    if not parts or "".join(p.group(0) for p in parts) != clean:
        raise ValueError(f"{text!r} is not {DURATION_HINT}")
    return sum(float(p.group(1)) * PROM_UNIT_MS[p.group(2)] for p in parts) / 1000


@dataclass(frozen=True)
class AlertRule:
    name: str  # CamelCase, unique in its set: "FilesUploadErrorRateHigh"
    expr: str
    for_s: float
    labels: Mapping[str, str]  # derived rules: severity ("sev-1") and runbook_section
    annotations: Mapping[str, str]  # derived: summary, runbook (path#section), runbook_line
    section_id: str | None  # None when a user's rule names no section
    source: str  # "derived from <runbook>:<line>" or "<rules file>:<line>"
    # derived rules: the cases their promtool unit tests feed them
    spec: RuleSpec | None = field(default=None, compare=False, repr=False)

    def as_yaml(self) -> dict[str, object]:
        out: dict[str, object] = {"alert": self.name, "expr": self.expr}
        if self.for_s > 0:
            out["for"] = format_duration(self.for_s)
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[AlertRule, ...]
    origin: str  # "derived", or the user's file

    def yaml(self) -> str:
        """A Prometheus rule file: one group, the rules in order. Deterministic."""
        head = (
            "# Alert rules derived from the runbook's symptoms by `runbook-checks alerts`;\n"
            "# regenerate them from the runbook rather than editing them here.\n"
            if self.origin == DERIVED
            else f"# Alert rules read from {self.origin}\n"
        )
        body = {"groups": [{"name": GROUP, "rules": [r.as_yaml() for r in self.rules]}]}
        return head + _dump(body)

    def by_section(self) -> dict[str | None, list[AlertRule]]:
        out: dict[str | None, list[AlertRule]] = {}
        for rule in self.rules:
            out.setdefault(rule.section_id, []).append(rule)
        return out


def derive_rules(
    runbook: Runbook,
    runbook_path: str,
    *,
    vocab: Vocabulary,
    window_s: float = 10.0,
    for_s: float = 0.0,
) -> RuleSet:
    """One rule per probe with an alert, in the runbook's order."""
    rules: list[AlertRule] = []
    taken: set[str] = set()
    for probe in symptom_probes(runbook, vocab, window_s=window_s):
        if not probe.alert or probe.rule is None:
            continue
        title = re.sub(r"^[^:]*:\s*", "", probe.section_title)
        candidates = (
            f"{vocab.service}{probe.rule.name}",
            f"{vocab.service}{_camel(title)}{probe.rule.name}",
            f"{vocab.service}{_camel(title)}{probe.rule.name}Line{probe.line}",
        )
        name = next((c for c in candidates if c not in taken), candidates[-1])
        taken.add(name)
        rules.append(
            AlertRule(
                name=name,
                expr=probe.expr,
                for_s=for_s,
                labels={
                    "severity": (probe.severity or "").lower(),
                    "runbook_section": probe.section_id,
                },
                annotations={
                    "summary": probe.symptom,
                    "runbook": f"{runbook_path}#{probe.section_id}",
                    "runbook_line": str(probe.line),
                },
                section_id=probe.section_id,
                source=f"derived from {runbook_path}:{probe.line}",
                spec=probe.rule,
            )
        )
    return RuleSet(tuple(rules), DERIVED)


def _camel(text: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.findall(r"[A-Za-z0-9]+", text))


# ------------------------------------------------------------------ a user's rule file


def load_rules(path: Path, runbook: Runbook | None = None) -> RuleSet:
    """A user's Prometheus rule file. UsageError naming the file, the line, the field and
    what to do; recording rules are allowed and ignored; never a traceback."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(
            f"{path}: cannot read the alert rules: {reason}",
            hint="pass a Prometheus rule file (YAML with `groups:`)",
        ) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).split("\n", 1)[0]
        raise UsageError(
            f"{path}:{line}: not YAML: {problem}",
            hint="a Prometheus rule file is YAML: `groups:` holding `- name:` and `rules:`",
        ) from None
    reader = _RuleFile(path, runbook)
    rules = tuple(reader.rules(root))
    if promtool.find_promtool() is not None:
        promtool.check_rules(path)  # PromQL syntax, as Prometheus reads it
    return RuleSet(rules, str(path))


class _RuleFile:
    def __init__(self, path: Path, runbook: Runbook | None) -> None:
        self.path = path
        self.runbook = runbook

    def fail(self, node: yaml.Node | None, message: str, hint: str) -> UsageError:
        line = node.start_mark.line + 1 if node is not None else 1
        return UsageError(f"{self.path}:{line}: {message}", hint=hint)

    def rules(self, root: yaml.Node | None) -> Iterator[AlertRule]:
        groups = node_value(root, "groups") if isinstance(root, yaml.MappingNode) else None
        if groups is None:
            raise self.fail(
                root,
                "no `groups`: not a Prometheus rule file",
                "start the file with `groups:`, a list of `- name: ...` with `rules:`",
            )
        if not isinstance(groups, yaml.SequenceNode):
            raise self.fail(groups, "`groups` is not a list", "write `groups:` as a list")
        for group in groups.value:
            rules = node_value(group, "rules") if isinstance(group, yaml.MappingNode) else None
            if not isinstance(rules, yaml.SequenceNode):
                raise self.fail(
                    rules or group,
                    "a group without a `rules` list",
                    "each group has `name:` and `rules:` (a list of rules)",
                )
            for rule in rules.value:
                read = self.rule(rule)
                if read is not None:
                    yield read

    def rule(self, node: yaml.Node) -> AlertRule | None:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, "a rule that is not a mapping", "write `- alert: Name`")
        if node_value(node, "record") is not None and node_value(node, "alert") is None:
            return None  # a recording rule: allowed, not ours
        name = _scalar(node_value(node, "alert"))
        if not name:
            raise self.fail(
                node,
                "a rule without `alert` (or `record`)",
                "name the alert: `- alert: FilesUploadErrorRateHigh`",
            )
        expr_node = node_value(node, "expr")
        expr = _scalar(expr_node)
        if not expr:
            raise self.fail(
                expr_node or node,
                f"rule {name!r}: field `expr` missing or empty",
                "give the PromQL condition: `expr: <query that returns series while it fires>`",
            )
        for_node = node_value(node, "for")
        for_s = 0.0
        if for_node is not None:
            try:
                for_s = parse_duration(_scalar(for_node))
            except ValueError:
                raise self.fail(
                    for_node,
                    f"rule {name!r}: field `for` is {_scalar(for_node)!r}, not a duration",
                    f"write {DURATION_HINT}",
                ) from None
        labels = self.strings(node, "labels", name)
        annotations = self.strings(node, "annotations", name)
        section_id = self.section(labels.get("runbook_section"), node_value(node, "labels"), name)
        line = node.start_mark.line + 1
        return AlertRule(name, expr, for_s, labels, annotations, section_id, f"{self.path}:{line}")

    def strings(self, rule: yaml.MappingNode, key: str, name: str) -> dict[str, str]:
        node = node_value(rule, key)
        if node is None:
            return {}
        if not isinstance(node, yaml.MappingNode) or not all(
            isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode) for k, v in node.value
        ):
            raise self.fail(
                node,
                f"rule {name!r}: field `{key}` is not a mapping of names to values",
                f"write `{key}:` with one `name: value` per line",
            )
        return {str(k.value): str(v.value) for k, v in node.value}

    def section(self, ref: str | None, labels: yaml.Node | None, name: str) -> str | None:
        if ref is None or self.runbook is None:
            return ref
        try:
            return self.runbook.section(ref).id
        except KeyError:
            valid = ", ".join(s.id for s in self.runbook.scenarios)
            raise self.fail(
                node_value(labels, "runbook_section") or labels,
                f"rule {name!r}: label `runbook_section` is {ref!r}, which names no section "
                f"of {self.runbook.path}",
                f"use one of: {valid}",
            ) from None


def _scalar(node: yaml.Node | None) -> str:
    if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
        return str(node.value).strip()
    return ""


# ------------------------------------------------------------------ promtool unit tests


def rule_tests(rules: RuleSet, rules_file_name: str) -> str:
    """A `promtool test rules` file for the rules in `rules_file_name` (a path relative to
    the test file): for every derived rule, one test per firing case (its alert expected
    with its labels and annotations) and a quiet one (healthy series, no alert)."""
    specs = [(r, r.spec) for r in rules.rules if r.spec is not None]
    steps = [_step(spec.window_s) for _, spec in specs] or [1]
    tests: list[dict[str, object]] = []
    for rule, spec in specs:
        step = _step(spec.window_s)
        points = math.ceil((2 * spec.window_s + rule.for_s) / step) + 2
        at = f"{points * step}s"
        for case in spec.firing:
            expected: dict[str, object] = {
                "exp_labels": {**case.labels, **rule.labels},
                "exp_annotations": dict(rule.annotations),
            }
            tests.append(
                _test(f"{rule.name} fires: {case.what}", step, case.series, points)
                | {"alert_rule_test": [_expect(rule, at, [expected])]}
            )
        tests.append(
            _test(f"{rule.name} stays quiet on healthy series", step, spec.quiet, points)
            | {"alert_rule_test": [_expect(rule, at, [])]}
        )
    untested = [r.name for r in rules.rules if r.spec is None]
    head = "# promtool unit tests of the derived alert rules: `promtool test rules <this file>`\n"
    if untested:
        head += f"# not tested here (no derived cases): {', '.join(untested)}\n"
    body = {
        "rule_files": [rules_file_name],
        "evaluation_interval": f"{min(steps)}s",
        "tests": tests,
    }
    return head + _dump(body)


def _step(window_s: float) -> int:
    """Seconds between samples: a tenth of the window, at least 1 s."""
    return max(1, math.floor(window_s / 10))


def _test(name: str, step: int, series: Sequence[Series], points: int) -> dict[str, object]:
    return {
        "name": name,
        "interval": f"{step}s",
        "input_series": [{"series": s.selector, "values": s.values(points)} for s in series],
    }


def _expect(rule: AlertRule, at: str, alerts: list[dict[str, object]]) -> dict[str, object]:
    return {"eval_time": at, "alertname": rule.name, "exp_alerts": alerts}


def _dump(data: object) -> str:
    text: str = yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=1000, default_flow_style=False
    )
    return text
