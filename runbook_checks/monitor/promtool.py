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

from runbook_checks.errors import UsageError

TIMEOUT_S = 120.0
INSTALL_HINT = (
    "install Prometheus' promtool (Debian: apt-get install prometheus; scripts/setup.sh "
    "does it), or set PROMTOOL to its path"
)

# "alerts.yml: 7:11: group "g", rule 2, "Name": could not parse expression: ..."
_PROBLEM = re.compile(
    r'^(?P<file>.*?): (?P<line>\d+):\d+: group "(?P<group>[^"]*)", rule (?P<rule>\d+), '
    r'"(?P<name>[^"]*)": (?P<message>.*)$'
)


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
    problems = [_problem(line) for line in result.output.splitlines() if _PROBLEM.match(line)]
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


def _problem(line: str) -> str:
    match = _PROBLEM.match(line)
    assert match is not None
    message = match["message"]
    field = (
        "expr"
        if "expression" in message
        else "labels"
        if "label" in message
        else "annotations"
        if "annotation" in message or "template" in message
        else ""
    )
    where = f"{match['file']}:{match['line']}: rule {match['name']!r} (group {match['group']!r}"
    where += f", rule {match['rule']})"
    return f"{where}{f', field `{field}`' if field else ''}: {message}"


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
