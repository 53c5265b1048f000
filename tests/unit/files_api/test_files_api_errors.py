"""Classification of dependency failures into the errno names on-call engineers grep for."""

from __future__ import annotations

import errno

import pytest

from files_api.errors import ServiceError, database_unavailable, errno_name, pool_exhausted


def _chained(outer: Exception, inner: BaseException) -> Exception:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("exc", "name"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "ECONNREFUSED"),
        (TimeoutError("timed out"), "ETIMEDOUT"),
        (TimeoutError(), "ETIMEDOUT"),
        (OSError(errno.ENOSPC, "No space left on device"), "ENOSPC"),
        (
            _chained(RuntimeError("wrapped"), ConnectionResetError(errno.ECONNRESET, "x")),
            "ECONNRESET",
        ),
        (
            Exception(
                'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
                "Connection refused\n\tIs the server running on that host?"
            ),
            "ECONNREFUSED",
        ),
        (Exception("connection timeout expired"), "ETIMEDOUT"),
        (Exception("server closed the connection unexpectedly"), "ECONNRESET"),
        (Exception('could not translate host name "db" to address'), "ENOTFOUND"),
        (
            Exception(
                "Connection was closed before we received a valid response from endpoint URL"
            ),
            "ECONNRESET",
        ),
        (KeyError("x"), "KeyError"),
    ],
)
def test_errno_name(exc: BaseException, name: str) -> None:
    assert errno_name(exc) == name


def test_database_unavailable_names_the_errno_and_what_to_do() -> None:
    error = database_unavailable(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
    assert error.status_code == 503
    assert error.errno == "ECONNREFUSED"
    assert error.detail.startswith("Database unavailable: ECONNREFUSED (")
    assert "pg_isready" in error.detail


def test_pool_exhausted_wording() -> None:
    error = pool_exhausted(2, 2, 5)
    assert isinstance(error, ServiceError)
    assert error.status_code == 503
    assert error.detail == (
        "Database connection pool exhausted: 2 of 2 connections in use, waited 5.0s"
    )
