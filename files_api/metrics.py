"""Prometheus metrics of one API process, in a registry of its own.

Gauges that describe live state (pool, upload queue) are read at scrape time from
callbacks, so they can never drift from the objects they describe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class PoolGauges:
    """Callbacks reading the database pool's live numbers."""

    size: Callable[[], float]
    in_use: Callable[[], float]
    waiting: Callable[[], float]
    connections: Callable[[], float]


class Metrics:
    def __init__(self, release: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "http_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.db_pool_size = Gauge("db_pool_size", "Configured size of the DB pool", registry=r)
        self.db_pool_in_use = Gauge("db_pool_in_use", "DB connections lent out", registry=r)
        self.db_pool_waiting = Gauge(
            "db_pool_waiting", "Requests waiting for a DB connection", registry=r
        )
        self.db_pool_connections = Gauge(
            "db_pool_connections", "DB connections open or being opened", registry=r
        )
        self.db_pool_timeouts = Counter(
            "db_pool_timeouts", "Requests that gave up waiting for a DB connection", registry=r
        )
        self.db_errors = Counter(
            "db_errors", "Database failures by errno-style name", ["errno"], registry=r
        )
        self.cache_hits = Counter("cache_hits", "Listing cache hits", registry=r)
        self.cache_misses = Counter("cache_misses", "Listing cache misses", registry=r)
        self.cache_errors = Counter(
            "cache_errors", "Cache operations that failed (served from the DB)", registry=r
        )
        self.storage_errors = Counter(
            "storage_errors", "Object storage operations that failed", ["operation"], registry=r
        )
        for operation in ("head_bucket", "put_object", "get_object", "delete_object"):
            self.storage_errors.labels(operation=operation)  # exported as 0 before any error
        self.upload_queue_depth = Gauge(
            "upload_queue_depth", "Uploads spooled locally, waiting for object storage", registry=r
        )
        self.uploads = Counter("uploads", "Upload outcomes", ["outcome"], registry=r)
        self.build_info = Gauge(
            "files_api_build_info", "Release of this process", ["release"], registry=r
        )
        self.build_info.labels(release=release).set(1)

    def bind_pool(self, gauges: PoolGauges) -> None:
        self.db_pool_size.set_function(gauges.size)
        self.db_pool_in_use.set_function(gauges.in_use)
        self.db_pool_waiting.set_function(gauges.waiting)
        self.db_pool_connections.set_function(gauges.connections)

    def bind_queue(self, depth: Callable[[], float]) -> None:
        self.upload_queue_depth.set_function(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
