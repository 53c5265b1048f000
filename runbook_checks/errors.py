"""Errors a user sees: each says what was expected, what was observed, and what to do."""

from __future__ import annotations


class RunbookChecksError(Exception):
    """Base of every error the product raises on purpose.

    The CLI prints these without a traceback; `hint` is the "what to do" line.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  -> {hint}")


class UsageError(RunbookChecksError):
    """Bad input from the user: a file, a line, a field, an option."""


class StackError(RunbookChecksError):
    """The environment could not be brought up, reset or torn down."""


class ComponentFailed(StackError):
    """One component failed to start or became unready; carries the tail of its log."""

    def __init__(
        self, component: str, message: str, *, log_tail: str = "", hint: str | None = None
    ):
        self.component = component
        self.log_tail = log_tail
        text = f"{component}: {message}"
        if log_tail:
            text += f"\n--- last lines of the {component} log ---\n{log_tail.rstrip()}"
        super().__init__(text, hint=hint)


class FaultError(RunbookChecksError):
    """A fault could not be injected or reverted (or a stack refused it)."""
