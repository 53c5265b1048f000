"""Errors the service answers with, and the errno-style name of a dependency failure.

On-call engineers grep logs for "ECONNREFUSED" or "ETIMEDOUT" (the runbook's words), so
every dependency error is classified into such a name, whatever library raised it.
"""

from __future__ import annotations

import errno
import socket

# Substrings of libpq / botocore / redis-py messages, and the errno name they mean.
_MESSAGE_ERRNO: tuple[tuple[str, str], ...] = (
    ("connection refused", "ECONNREFUSED"),
    ("timeout expired", "ETIMEDOUT"),
    ("timed out", "ETIMEDOUT"),
    ("timeout", "ETIMEDOUT"),
    ("connection reset", "ECONNRESET"),
    ("server closed the connection unexpectedly", "ECONNRESET"),
    ("connection closed", "ECONNRESET"),
    ("connection was closed", "ECONNRESET"),  # botocore ConnectionClosedError
    ("remote end closed connection", "ECONNRESET"),
    ("broken pipe", "EPIPE"),
    ("no route to host", "EHOSTUNREACH"),
    ("network is unreachable", "ENETUNREACH"),
    ("could not translate host name", "ENOTFOUND"),
    ("name or service not known", "ENOTFOUND"),
    ("temporary failure in name resolution", "EAI_AGAIN"),
    ("no space left on device", "ENOSPC"),
    ("no such file or directory", "ENOENT"),
)


def errno_name(exc: BaseException) -> str:
    """The errno-style name of a failure ("ECONNREFUSED", "ETIMEDOUT" ...).

    Walks the exception chain for an OSError errno or a timeout; falls back to the
    message text (libpq reports socket errors as text), then to the exception's class.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError | socket.timeout):
            return "ETIMEDOUT"
        if isinstance(current, OSError) and current.errno is not None:
            name = errno.errorcode.get(current.errno)
            if name is not None:
                return name
        current = current.__cause__ or current.__context__
    text = " ".join(_chain_messages(exc)).lower()
    for needle, name in _MESSAGE_ERRNO:
        if needle in text:
            return name
    return type(exc).__name__


def _chain_messages(exc: BaseException) -> list[str]:
    messages: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        messages.append(str(current))
        current = current.__cause__ or current.__context__
    return messages


def nobody() -> None:
    """The default `on_failure` of the cache, the store and the database: nobody is told
    (files_api/services.py tells /health's checker)."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The exception's message on one line, shortened for logs and JSON details."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ServiceError(Exception):
    """A failure with an HTTP status and a detail meant for the caller."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        errno: str | None = None,
        *,
        note: str | None = None,
        cause: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.errno = errno  # the errno-style name, for error.log
        self.note = note  # context for the log only (the caller sees `detail`)
        self.cause = cause  # the underlying failure in one line, when there is one

    @property
    def summary(self) -> str:
        """'ERRNO: what failed', the form /health reports."""
        text = self.cause or self.detail
        return text if self.errno is None else f"{self.errno}: {text}"


def database_unavailable(exc: BaseException) -> ServiceError:
    return database_unavailable_error(errno_name(exc), one_line(exc))


def database_unavailable_error(errno: str, message: str) -> ServiceError:
    return ServiceError(
        503,
        f"Database unavailable: {errno} ({message}). "
        "Check that PostgreSQL is up (pg_isready) and reachable from the API.",
        errno,
        cause=message,
    )


def pool_exhausted(in_use: int, size: int, waited_s: float) -> ServiceError:
    return ServiceError(
        503,
        f"Database connection pool exhausted: {in_use} of {size} connections in use, "
        f"waited {waited_s:.1f}s",
        "EPOOLTIMEOUT",
    )


def storage_unavailable(exc: BaseException, action: str) -> ServiceError:
    name = errno_name(exc)
    return ServiceError(
        503,
        f"Object storage unavailable while trying to {action}: {name} ({one_line(exc)}). "
        "Check the storage service (S3_ENDPOINT_URL) and retry.",
        name,
    )
