"""The service's own names for what a runbook's symptoms talk about, in one place.

Metric names, Prometheus jobs, route labels, log files, and how the service shows the
error messages a runbook quotes. A service's kit (runbook_checks/service.py) carries its
`Vocabulary`; the engine knows none of its own. The defaults here are only what the
stack's own monitoring names (the postgres exporter, Prometheus' scrape route, /health).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Message:
    """How the service shows an error message a runbook quotes ("File not found").

    Either lines of its logs (`log_pattern`, a regex in the service's own words) or its
    answers (`routes` answering with a `status` matching the regex), whichever is the
    message's real trace; `note` says how the service's words differ from the runbook's.
    """

    log_pattern: str = ""
    routes: tuple[str, ...] = ()
    status: str = ""  # a status regex, as the metrics' label holds it: "404", "4.."
    note: str = ""


@dataclass(frozen=True)
class PoolMetrics:
    """The gauges and counter of the API's database pool on its /metrics, as a load run
    samples them; a name left empty is not measured."""

    size: str = ""
    in_use: str = ""
    waiting: str = ""
    connections: str = ""  # open or being opened
    timeouts_total: str = ""  # waits for a connection that gave up


@dataclass(frozen=True)
class Vocabulary:
    """Names of one service's signals (its kit's); defaults only for the stack's own."""

    service: str  # the prefix of derived alert names ("OrdersApiServerDown...")
    api_job: str  # Prometheus job of the API instances (scraped directly)
    requests_total: str  # the API's request counter: labels route, method, status
    duration_bucket: str  # the API's request-duration histogram's buckets: label route
    # the API's pool: connections open or being opened (a reconnection attempt in flight
    # counts, so with the database down it hovers at 1, not 0)
    pool_connections: str
    # a path as a runbook writes it -> the API's route label (its path template); a
    # concrete path ("/orders/123") is matched against the templates by `route_of`
    routes: Mapping[str, str]
    # route label -> the user-facing feature it serves (routes not listed are not
    # user-facing: health, metrics, admin); the words a severity table uses for them
    features: Mapping[str, str]
    # the route a derived rule's test cases use when the symptom names none
    main_route: str
    db_job: str = "postgres"  # prometheus-postgres-exporter's job
    db_up: str = "pg_up"  # 0 while the exporter cannot reach the database
    db_connections: str = "pg_stat_activity_count"  # the database's own connection count
    metrics_route: str = "/metrics"  # the scrape's own requests: not traffic, not errors
    health_path: str = "/health"
    # paths that answer an anonymous GET: an HTTP probe can call them as they are
    anonymous_get: tuple[str, ...] = ("/health",)
    # a provider a runbook names ("Acme status page") -> its status page's host (the
    # runbook's profile names them too, and wins in a drill)
    status_pages: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    server_errors: str = "5.."  # the statuses that are a route's failures (a label regex)
    # routes whose failures include 4xx answers too (route label -> status regex)
    failures: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # error messages a runbook quotes (lower case) -> how the service shows them
    messages: Mapping[str, Message] = field(default_factory=lambda: MappingProxyType({}))
    pool: PoolMetrics = field(default_factory=PoolMetrics)  # for load runs' pool samples
    # what customers call the service, and its parts: (a regular expression matched against
    # a runbook section's title, the part's name) in order ("upload" -> "Uploads")
    customer_name: str = "the service"
    customer_features: tuple[tuple[str, str], ...] = ()

    def route_of(self, path: str) -> str | None:
        """The route label of a path as a runbook writes it, or None when unknown.

        "/orders" -> itself; "/orders/123" -> "/orders/{order_id}" (a template of
        `routes`); a query string or a trailing slash is ignored."""
        clean = path.split("?", 1)[0].rstrip("/") or "/"
        if clean in self.routes:
            return self.routes[clean]
        for written, label in self.routes.items():
            if "{" in written and _template(written).fullmatch(clean):
                return label
        return None

    def failure_status(self, route: str) -> str:
        """The statuses counted as the route's failures ("5.." unless said otherwise)."""
        return self.failures.get(route, self.server_errors)

    def message(self, quoted: str) -> Message | None:
        return self.messages.get(" ".join(quoted.lower().split()))


def _template(written: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}/]*\}", written)
    return re.compile("[^/]+".join(re.escape(p) for p in parts))
