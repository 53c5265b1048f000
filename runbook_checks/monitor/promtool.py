"""Prometheus' own checker: `promtool check rules` and `promtool test rules`.

promtool is found on PATH (or at $PROMTOOL). It is the judge of PromQL syntax and of
what a rule file means; the suite never re-implements it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from runbook_checks.errors import UsageError

TIMEOUT_S = 120.0
INSTALL_HINT = (
    "install Prometheus' promtool (Debian: apt-get install prometheus; scripts/setup.sh "
    "does it), or set PROMTOOL to its path"
)

# "alerts.yml: 7:11: group "g", rule 2, "Name": could not parse expression: ..." (the
# line is missing from some, such as template errors in annotations)
_PROBLEM = re.compile(
    r'^(?P<file>.*?): (?:(?P<line>\d+):\d+: )?group "(?P<group>[^"]*)", rule (?P<rule>\d+), '
    r'"(?P<name>[^"]*)": (?P<message>.*)$'
)
# "  line 6: field severity not found in type rulefmt.RuleNode" (under "yaml: unmarshal
# errors:")
_UNKNOWN_FIELD = re.compile(r"^\s*line (?P<line>\d+): field (?P<field>\S+) not found in type")


class PromtoolRefused(UsageError):
    """promtool refused a rule file or failed its unit tests; `output` is what it said."""

    def __init__(self, message: str, output: str, *, hint: str | None = None) -> None:
        self.output = output
        super().__init__(message, hint=hint)


@dataclass(frozen=True)
class PromtoolResult:
    ok: bool
    output: str


def find_promtool() -> str | None:
    explicit = os.environ.get("PROMTOOL", "")
    if explicit and os.access(explicit, os.X_OK):
        return explicit
    return shutil.which("promtool")


def check_rules(path: Path) -> None:
    """`promtool check rules PATH`; PromtoolRefused naming each rule it refuses (file,
    line, rule, field); UsageError when promtool is missing or does not answer."""
    result = _run("check", "rules", path)
    if result.ok:
        return
    problems = [_problem(path, line) for line in result.output.splitlines()]
    problems = [p for p in problems if p]
    if problems:
        message = f"promtool refuses {path}:\n  " + "\n  ".join(problems)
    else:
        message = f"promtool refuses {path}:\n{_indent(result.output)}"
    raise PromtoolRefused(
        message, result.output, hint="fix the rule named at its line, then check again"
    )


def test_rules(test_file: Path) -> PromtoolResult:
    """`promtool test rules TEST_FILE` (its rule_files resolved beside it)."""
    return _run("test", "rules", test_file)


test_rules.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


def _problem(path: Path, line: str) -> str:
    """One refusal of promtool's as 'FILE:LINE: rule ..., field `F`: message' ("" when the
    line is not one)."""
    unknown = _UNKNOWN_FIELD.match(line)
    if unknown:
        return (
            f"{path}:{unknown['line']}: field `{unknown['field']}` is not a field of "
            "Prometheus' rule format (a rule has alert or record, expr, for, labels, "
            "annotations)"
        )
    match = _PROBLEM.match(line)
    if match is None:
        return ""
    message = match["message"]
    field = (
        "expr"
        if "expression" in message
        else "annotations"
        if "annotation" in message
        else "labels"
        if "label" in message
        else ""
    )
    number = match["line"] or _rule_line(path, int(match["rule"]), match["group"])
    where = f"{match['file']}:{number}: rule {match['name']!r} (group {match['group']!r}"
    where += f", rule {match['rule']})"
    return f"{where}{f', field `{field}`' if field else ''}: {message}"


def _rule_line(path: Path, rule: int, group: str) -> int:
    """The line of the rule-th rule (1-based) of the named group; 1 when not found."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return 1
    groups = node_value(root, "groups")
    for node in groups.value if isinstance(groups, yaml.SequenceNode) else []:
        name, rules = node_value(node, "name"), node_value(node, "rules")
        named = isinstance(name, yaml.ScalarNode) and name.value == group
        if named and isinstance(rules, yaml.SequenceNode) and 0 < rule <= len(rules.value):
            return int(rules.value[rule - 1].start_mark.line) + 1
    return 1


def node_value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node under `key` of a YAML mapping node (None: not a mapping, no key)."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _run(*args: str | Path) -> PromtoolResult:
    binary = find_promtool()
    if binary is None:
        raise UsageError("promtool is not installed: rules cannot be checked", hint=INSTALL_HINT)
    argv = [binary, *(str(a) for a in args)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"{' '.join(argv)} gave no answer within {TIMEOUT_S:g}s",
            hint="run it by hand to see where it hangs",
        ) from None
    except OSError as exc:
        raise UsageError(f"{binary} could not be run: {exc}", hint=INSTALL_HINT) from None
    output = (done.stdout + done.stderr).strip()
    return PromtoolResult(done.returncode == 0, output)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
