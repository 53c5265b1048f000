"""JSON-lines logs in LOG_DIR, shaped for the runbook's `tail` and `grep`.

- production.log: one line per request (ts, level, method, path, route, status,
  duration_ms, request_id, user_id, msg) plus the service's own events (upload failures,
  queue retries, start-up);
- error.log: 5xx answers and exceptions, with the errno-style name of connection errors.

Secrets never reach a file: bearer tokens, the admin token and URL passwords are scrubbed
by a filter on every handler, whatever the caller passed.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

from files_api.config import redact_url

LOGGER_NAME = "files_api"
LogValue = str | int | float | bool | None
LogFields = dict[str, LogValue]

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{16,}")
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@")
_SHARE_PATH = re.compile(r"(/share/)[^/?\s]+")


def redact_path(path: str) -> str:
    """A request path safe to log: share tokens replaced by '[redacted]'."""
    return _SHARE_PATH.sub(r"\1[redacted]", path)


class _Scrub(logging.Filter):
    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)
        # one search that finds whatever a rule below could change: most texts (a
        # request's path, route, ids) have none, and are left after it (an access line
        # scrubbed rule by rule cost ~40 us, most of the line's cost)
        self._candidates = re.compile(
            "|".join([r"(?i:bearer\s)", "://", *(re.escape(s) for s in self._secrets)])
        )

    def scrub(self, text: str) -> str:
        if self._candidates.search(text) is None:
            return text
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _BEARER.sub(r"\1***", text)
        return _URL_PASSWORD.sub(r"\1***@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        fields: LogFields | None = getattr(record, "fields", None)
        if fields:
            record.fields = {
                k: self.scrub(v) if isinstance(v, str) else v for k, v in fields.items()
            }
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, LogValue] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields: LogFields | None = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        line["msg"] = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line.setdefault("error_type", type(exc).__name__)
            line["traceback"] = "".join(traceback.format_exception(exc)).rstrip()
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(log_dir: Path, secrets: tuple[str, ...]) -> logging.Logger:
    """Attach production.log, error.log and stderr handlers to the service's logger."""
    log_dir.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    scrub = _Scrub(secrets)
    formatter = JsonFormatter()

    production = logging.handlers.WatchedFileHandler(log_dir / "production.log", encoding="utf-8")
    production.setLevel(logging.INFO)
    errors = logging.handlers.WatchedFileHandler(log_dir / "error.log", encoding="utf-8")
    errors.setLevel(logging.ERROR)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    for handler in (production, errors, console):
        handler.addFilter(scrub)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def log_event(level: int, msg: str, **fields: LogValue) -> None:
    """One JSON line with `msg` and the given fields (None values are kept as null)."""
    get_logger().log(level, msg, extra={"fields": fields})


__all__ = ["LogFields", "configure_logging", "get_logger", "log_event", "redact_path", "redact_url"]
