"""A pytest plugin for the secrets test (`-p secret_spy`, with tests/security on the path):
writes every secret of the session's `stack` (the admin token, each URL's password, the
API's settings named like a secret) to $SECRET_SPY_FILE, one per line, as soon as the
stack is up, so the test can look for them in what the drill wrote."""

from __future__ import annotations

import os
import re
from collections.abc import Generator
from pathlib import Path

import pytest

_PASSWORD = re.compile(r"://[^:/@\s]*:([^@\s/]+)@")
_SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET", re.IGNORECASE)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    value = yield
    if fixturedef.argname == "stack" and os.environ.get("SECRET_SPY_FILE"):
        ep = value.endpoints  # type: ignore[attr-defined]
        found = {ep.admin_token}
        for url in (ep.database_url, ep.app_database_url, ep.admin_database_url, ep.redis_url):
            found.update(_PASSWORD.findall(url or ""))
        api = getattr(value, "api", None)
        for name, setting in getattr(api, "settings", {}).items():
            if _SECRET_NAME.search(name) and not name.startswith("AWS_"):
                found.add(setting)
            found.update(_PASSWORD.findall(setting))
        Path(os.environ["SECRET_SPY_FILE"]).write_text("\n".join(sorted(found)) + "\n")
    return value
