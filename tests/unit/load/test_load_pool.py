"""What the pool sampler reads: the API's own /metrics text, the runbook's own query."""

from __future__ import annotations

from pathlib import Path

import pytest

from files_api.metrics import Metrics, PoolGauges
from runbook_checks.errors import RunbookChecksError
from runbook_checks.load.pool import RUNBOOK_ACTIVITY_QUERY, activity_query, parse_metrics
from runbook_checks.load.report import check_no_secrets
from runbook_checks.runbook.parser import parse_runbook

ROOT = Path(__file__).resolve().parents[3]


def test_the_apis_metrics_text_is_read() -> None:
    metrics = Metrics("test")
    metrics.bind_pool(
        PoolGauges(size=lambda: 20, in_use=lambda: 7, waiting=lambda: 3, connections=lambda: 20)
    )
    metrics.db_pool_timeouts.inc(4)
    metrics.http_requests.labels(route="/health", method="GET", status="200").inc()
    values = parse_metrics(metrics.render().decode())
    assert values["db_pool_size"] == 20
    assert values["db_pool_in_use"] == 7
    assert values["db_pool_waiting"] == 3
    assert values["db_pool_timeouts_total"] == 4
    assert "http_requests_total" not in values  # labelled samples are not pool figures


def test_the_pg_stat_activity_query_is_the_runbooks_own() -> None:
    runbook = parse_runbook(ROOT / "runbooks/files-incident-response.md")
    query, source = activity_query(runbook)
    assert query == RUNBOOK_ACTIVITY_QUERY
    assert source.startswith("runbook line ")
    assert "SEV-1: Database Failure" in source
    assert activity_query(None)[1].startswith("built in")


def test_a_secret_is_never_written() -> None:
    check_no_secrets({"verdict.md": "all fine"}, ["tok-123", ""])
    with pytest.raises(RunbookChecksError, match=r"verdict\.json"):
        check_no_secrets({"verdict.json": "token tok-123"}, ["tok-123"])


def test_the_sampler_reads_the_pool_under_the_kits_names() -> None:
    import httpx

    from files_profile import VOCABULARY
    from runbook_checks.load.pool import PoolSampler
    from runbook_checks.vocabulary import PoolMetrics

    text = b"orders_pool_max 8\norders_pool_busy 5\norders_pool_open 6\ndb_pool_size 20\n"
    mock = httpx.MockTransport(lambda request: httpx.Response(200, content=text))
    names = PoolMetrics(
        size="orders_pool_max", in_use="orders_pool_busy", connections="orders_pool_open"
    )
    with httpx.Client(transport=mock) as http:
        orders = PoolSampler("http://api.test", None, metrics=names).sample(http)
        files = PoolSampler("http://api.test", None, metrics=VOCABULARY.pool).sample(http)
        unnamed = PoolSampler("http://api.test", None).sample(http)
    assert (orders.size, orders.in_use, orders.waiting, orders.connections) == (8, 5, None, 6)
    assert (files.size, files.in_use) == (20, None)
    assert (unnamed.size, unnamed.in_use, unnamed.connections) == (None, None, None)
