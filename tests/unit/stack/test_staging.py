"""stack/staging.py without namespaces: which --host `up` accepts, and the published URLs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from runbook_checks.errors import UsageError
from runbook_checks.stack.staging import _with_host, check_bind_host, own_namespace


def test_loopback_is_always_a_bind_host() -> None:
    check_bind_host("127.0.0.1")
    check_bind_host("127.0.0.2")


def test_another_address_is_refused_outside_a_namespace_of_ours() -> None:
    assert own_namespace() is None  # the tests run in the host's namespace
    with pytest.raises(UsageError, match="only inside a network namespace runbook-checks made"):
        check_bind_host("10.213.0.2")
    with pytest.raises(UsageError, match="not an IP address"):
        check_bind_host("staging.invalid")


def test_published_urls_keep_credentials_port_and_path(tmp_path: Path) -> None:
    url = "postgresql://files_app:pw@127.0.0.1:5433/files?sslmode=disable"
    assert _with_host(urlsplit(url), "10.213.0.2") == (
        "postgresql://files_app:pw@10.213.0.2:5433/files?sslmode=disable"
    )
    assert _with_host(urlsplit("http://127.0.0.1:8080"), "10.213.0.2") == "http://10.213.0.2:8080"
