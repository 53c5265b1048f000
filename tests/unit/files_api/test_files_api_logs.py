"""The service's JSON logs: one object per line, fields kept, secrets never written."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from files_api.logs import configure_logging, log_event, redact_path

ADMIN_TOKEN = "admin-secret-value"
USER_TOKEN = "bKlN3eKb3K-U_Gdm92jUNZne-bc_nqwgluNj9gSULuo"


@pytest.fixture
def log_dir(tmp_path: Path) -> Iterator[Path]:
    logger = configure_logging(tmp_path, (ADMIN_TOKEN,))
    yield tmp_path
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_info_goes_to_production_log_errors_to_both(log_dir: Path) -> None:
    log_event(logging.INFO, "upload stored: a.txt", user_id="u1", size_bytes=3)
    log_event(logging.ERROR, "GET /health -> 503", errno="ECONNREFUSED")
    production = _lines(log_dir / "production.log")
    errors = _lines(log_dir / "error.log")
    assert [line["msg"] for line in production] == ["upload stored: a.txt", "GET /health -> 503"]
    assert production[0]["user_id"] == "u1"
    assert production[0]["size_bytes"] == 3
    assert {"ts", "level", "msg"} <= set(production[0])
    assert [(line["level"], line["errno"]) for line in errors] == [("error", "ECONNREFUSED")]


def test_tokens_and_passwords_are_scrubbed(log_dir: Path) -> None:
    log_event(
        logging.ERROR,
        f"failed: Authorization: Bearer {USER_TOKEN} admin={ADMIN_TOKEN}",
        database="postgresql://files_app:hunter2hunter2@127.0.0.1:5432/files",
        header=f"bearer\t{USER_TOKEN}",
        echoed=f"x{ADMIN_TOKEN}x",  # a secret alone, with nothing else a rule looks for
    )
    text = (log_dir / "production.log").read_text(encoding="utf-8")
    text += (log_dir / "error.log").read_text(encoding="utf-8")
    for secret in (USER_TOKEN, ADMIN_TOKEN, "hunter2hunter2"):
        assert secret not in text
    assert "Bearer ***" in text
    assert "postgresql://files_app:***@127.0.0.1:5432/files" in text
    assert '"header": "bearer\\t***"' in text
    assert '"echoed": "x***x"' in text


def test_wording_about_tokens_is_left_alone(log_dir: Path) -> None:
    log_event(logging.INFO, "Bearer token required: send 'Authorization: Bearer <token>'")
    assert _lines(log_dir / "production.log")[0]["msg"] == (
        "Bearer token required: send 'Authorization: Bearer <token>'"
    )


def test_share_tokens_are_redacted_from_paths() -> None:
    assert redact_path("/share/Zm9vYmFyYmF6cXV4/download") == "/share/[redacted]/download"
    assert redact_path("/api/storage/files") == "/api/storage/files"
