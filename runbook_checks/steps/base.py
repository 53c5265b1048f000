"""Running one runbook step against the stack: the context and the result.

`steps.run.run_step(step, ctx)` picks the executor by the step's kind (SQL, HTTP, AWS,
SHELL) and returns a `StepResult`, a typed record of what ran (after binding, secrets redacted),
how it ended and what it printed. MANUAL and NOTE steps come back as `manual` with the
step's reason. An executor never raises for a failure of the command itself: a failed
query, a refused connection or a non-zero exit is a result; an unexpected exception is
turned into an `error` result naming it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.errors import RunbookChecksError
from runbook_checks.redact import redact
from runbook_checks.runbook.model import Step
from runbook_checks.steps.binding import Bindings, Bound, bind

if TYPE_CHECKING:
    from runbook_checks.stack.base import Stack

__all__ = [
    "Bindings",
    "Bound",
    "ExecContext",
    "JsonValue",
    "Refused",
    "StepResult",
    "StepRunner",
    "StepStatus",
    "bind",
    "excerpt",
    "redact",
]

JsonValue = Union[None, bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"]]  # noqa: UP007

StepRunner = Callable[["Step", "ExecContext"], "StepResult"]  # steps.run.run_step's type

OUTPUT_LIMIT = 8000  # characters of output kept in a result (head and tail)


class Refused(RunbookChecksError):
    """A command would reach outside the stack (a remote host, an unmapped path)."""


class StepStatus(enum.StrEnum):
    OK = "ok"  # the command ran and ended the way its tool calls success (exit 0)
    FAILED = "failed"  # it ran (or was checked) and failed: SQL error, exit != 0, bad aws call
    ERROR = "error"  # it could not be run: unbound placeholder, host outside the stack ...
    MANUAL = "manual"  # needs a person (or a system the stack does not have)
    SKIPPED = "skipped"  # deliberately not run


@dataclass(frozen=True)
class ExecContext:
    """What an executor needs: the stack, the bindings, a clock and a timeout."""

    stack: Stack
    bindings: Bindings
    clock: Clock = SYSTEM_CLOCK
    timeout_s: float = 10.0
    work_dir: Path | None = None  # defaults to bindings.work_dir

    @property
    def folder(self) -> Path:
        return self.work_dir if self.work_dir is not None else self.bindings.work_dir

    def redact(self, text: str) -> str:
        return redact(text, self.bindings.secret_values())


@dataclass(frozen=True)
class StepResult:
    """How one step ran. Text fields are bounded excerpts with secrets redacted."""

    step: Step
    status: StepStatus
    executed: str = ""  # the command/request as run, after binding
    exit_code: int | None = None  # the tool's exit status (psql's and curl's for SQL/HTTP)
    output: str = ""  # stdout / response body / formatted rows
    stderr: str = ""  # stderr / curl -v trace / CLI error text
    rows: tuple[tuple[object, ...], ...] = ()  # SQL: the last result set
    columns: tuple[str, ...] = ()
    http_status: int | None = None
    data: JsonValue = None  # parsed JSON output (HTTP body, aws --output json)
    duration_s: float = 0.0
    started_at: float = 0.0  # wall clock, seconds since the epoch
    error: str = ""  # what went wrong, for a person
    reason: str = ""  # why it was not run (manual, skipped)
    sqlstate: str | None = None
    error_line: int | None = None  # the runbook line an error points at
    suggestion: str = ""  # what to write instead, when we know
    bound_placeholders: tuple[str, ...] = ()
    unbound: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # how the command was adapted to the stack

    @property
    def ok(self) -> bool:
        return self.status is StepStatus.OK

    @property
    def line(self) -> int:
        return self.step.line

    def summary(self) -> str:
        head = f"line {self.step.line}: {self.status.value}"
        if self.exit_code is not None:
            head += f" (exit {self.exit_code})"
        if self.http_status is not None:
            head += f" HTTP {self.http_status}"
        text = f"{head}: {self.executed or self.step.text}"
        if self.error:
            text += f"\n  error: {self.error}"
        if self.reason:
            text += f"\n  reason: {self.reason}"
        if self.suggestion:
            text += f"\n  suggestion: {self.suggestion}"
        return text


def excerpt(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """`text` bounded to about `limit` characters, keeping its head and its tail."""
    if len(text) <= limit:
        return text
    head = limit * 3 // 4
    tail = limit - head
    omitted = len(text) - head - tail
    return f"{text[:head]}\n... [{omitted} characters omitted] ...\n{text[-tail:]}"


def unbound_result(step: Step, bound: Bound, executed: str) -> StepResult:
    """The result for a command that cannot run because placeholders have no value."""
    names = ", ".join(bound.unbound)
    return StepResult(
        step=step,
        status=StepStatus.ERROR,
        executed=executed,
        error=f"placeholder(s) without a value: {names}; not run (a value is never guessed)",
        suggestion="bind them: Bindings.from_stack(..., values={"
        + ", ".join(f"{n!r}: ..." for n in bound.unbound if not n.startswith("$"))
        + "}) or env={...} for $VARS",
        bound_placeholders=bound.bound,
        unbound=bound.unbound,
    )
