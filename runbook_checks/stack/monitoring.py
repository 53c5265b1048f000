"""Real alerting for the stack: Prometheus, Alertmanager, the Debian exporters for
PostgreSQL and Redis, and the drill's own webhook receiver (`AlertInbox`).

A stack with monitoring runs, beside its servers and on 127.0.0.1 only:

- `prometheus`: scrapes every API instance's /metrics directly (the kit's api_job, file_sd:
  `Monitoring.set_api_targets`), the postgres exporter (job `postgres`) and the redis
  exporter (job `redis`) every second, evaluates the rules a drill loads
  (`Monitoring.set_rules`, `promtool check rules` first) every second and sends alerts to
- `alertmanager`: one route, grouped by alertname and runbook_section, to one webhook
  receiver, the `AlertInbox` in the drill's process (payload version 4, resolved
  notifications too, a firing alert repeated every 2 s: see REPEAT_INTERVAL). Started
  with `--cluster.listen-address=` (no gossip: its default binds 0.0.0.0:9094).
- `postgres_exporter`: connects to PostgreSQL directly as an operator's monitoring does
  (superuser, not through the fault proxy; its sessions are not counted by
  pg_stat_statements, so the runbook's slow-query ranking shows the service's statements).
- `redis_exporter`: connects to Redis directly (INFO and CONFIG only: it reads no key,
  so keyspace hits and misses are the service's).

The config files are JSON, which is YAML: Prometheus and Alertmanager read them as they
are (`promtool check config` / `amtool check-config` agree), without a YAML library here.

Timing (Prometheus 2.42): /-/ready answers in ~0.05 s, but Prometheus hands discovered
targets (file_sd and static ones alike, Alertmanagers included) to its scrape manager and
notifier at most every 5 s, a constant it has no flag for: the first scrape comes ~5.5 s
after its start, and a target added or removed later is scraped (or dropped) within 0-5 s.
`wait_fresh` waits for exactly that (every expected target scraped after a moment, a rule
evaluation after those scrapes); the stack's start does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from runbook_checks.clock import SYSTEM_CLOCK, Clock, WaitTimeout, wait_until
from runbook_checks.errors import StackError, UsageError
from runbook_checks.stack.component import LocalComponent
from runbook_checks.stack.ports import free_port
from runbook_checks.stack.process import ManagedProcess
from runbook_checks.stack.servers import _clean_env
from runbook_checks.tls import tls_context

SCRAPE_INTERVAL_S = 1.0
EVALUATION_INTERVAL_S = 1.0
SCRAPE_TIMEOUT = "800ms"
RESEND_DELAY = "1s"  # Prometheus re-sends active alerts to Alertmanager this often
FOR_GRACE_PERIOD = "1s"  # a restarted Prometheus restores an alert's `for` state at once
# Alertmanager notifies a group again only when its set of firing alerts grew, or after
# the repeat interval. An alert that resolves and fires again within one group interval
# (the stack's monitoring saw a blip before the fault: a scrape timing out under load, the
# last drill's alert resolving) keeps its fingerprint, so the group's firing set looks
# unchanged and, with a long repeat interval, the fault's alert is never delivered. A short
# one bounds that delay; who reads the inbox tells an alert of this fault by its start
# (`Notification.began_after`), not by when a notification arrived.
REPEAT_INTERVAL = "2s"
START_SLACK_S = 0.5  # Prometheus' clock against the drill's: the same machine's
APT_PACKAGES = (
    "prometheus",
    "prometheus-alertmanager",
    "prometheus-postgres-exporter",
    "prometheus-redis-exporter",
)
INSTALL = "apt-get install --no-install-recommends " + " ".join(APT_PACKAGES)
MONITORING_ENV = "RUNBOOK_CHECKS_MONITORING"  # "off": stacks start without monitoring
OFF_VALUES = frozenset({"off", "0", "no", "false"})
WEBHOOK_VERSION = "4"
EXPORTER_APP = "prometheus-postgres-exporter"  # its sessions' application_name


# -- the binaries ------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitoringBinaries:
    """Where the monitoring programs are (Debian's names first, upstream's second)."""

    prometheus: str
    alertmanager: str
    promtool: str
    amtool: str | None = None
    postgres_exporter: str | None = None
    redis_exporter: str | None = None


def _which(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def find_monitoring() -> MonitoringBinaries | str:
    """The monitoring binaries, or a sentence saying which are missing and how to
    install them (Prometheus, Alertmanager and promtool are needed; the exporters and
    amtool are optional: without an exporter its job is left out)."""
    prometheus = _which("prometheus")
    alertmanager = _which("prometheus-alertmanager", "alertmanager")
    promtool = _which("promtool")
    missing = [
        name
        for name, path in (
            ("prometheus", prometheus),
            ("alertmanager", alertmanager),
            ("promtool", promtool),
        )
        if path is None
    ]
    if prometheus is None or alertmanager is None or promtool is None:
        return (
            f"the monitoring binaries are missing ({', '.join(missing)}): "
            f"`{INSTALL}` (or `make setup` as root)"
        )
    return MonitoringBinaries(
        prometheus=prometheus,
        alertmanager=alertmanager,
        promtool=promtool,
        amtool=_which("amtool"),
        postgres_exporter=_which("prometheus-postgres-exporter", "postgres_exporter"),
        redis_exporter=_which("prometheus-redis-exporter", "redis_exporter"),
    )


def monitoring_switched_off(environ: Mapping[str, str] | None = None) -> str:
    """Why stacks start without monitoring by the environment ('' when they do not)."""
    value = (os.environ if environ is None else environ).get(MONITORING_ENV, "")
    if value.strip().lower() in OFF_VALUES:
        return f"switched off ({MONITORING_ENV}={value})"
    return ""


@cache
def binary_version(path: str) -> str:
    """'2.42.0+ds' from `PROGRAM --version` (Go programs print it on stdout or stderr)."""
    try:
        done = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return parse_version(done.stdout + done.stderr)


def parse_version(text: str) -> str:
    """The version in a monitoring program's `--version` output."""
    found = re.search(r"version[\s:=]+v?(\d[\w.+~-]*)", text, re.IGNORECASE)
    if found is None:  # redis_exporter: 'Redis Metrics Exporter 1.45.0-2+b4 build date ...'
        found = re.search(r"Exporter v?(\d[\w.+~-]*)", text)
    return found.group(1) if found else "unknown"


# -- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class PrometheusPlan:
    """What Prometheus' config names, as Prometheus reaches it (host:port addresses)."""

    alertmanager: str
    rules_glob: str  # rule files (set_rules copies them there)
    api_targets_file: str  # file_sd JSON of the API instances
    api_job: str  # the API instances' job (the service kit's vocabulary names it)
    postgres_exporter: str | None = None
    redis_exporter: str | None = None


def prometheus_config(plan: PrometheusPlan) -> dict[str, object]:
    """prometheus.yml: 1 s scrapes and evaluations, the three jobs, one Alertmanager."""
    jobs: list[dict[str, object]] = [
        {
            "job_name": plan.api_job,
            "file_sd_configs": [{"files": [plan.api_targets_file], "refresh_interval": "5s"}],
        }
    ]
    for job, address in (("postgres", plan.postgres_exporter), ("redis", plan.redis_exporter)):
        if address is not None:
            jobs.append({"job_name": job, "static_configs": [{"targets": [address]}]})
    return {
        "global": {
            "scrape_interval": f"{SCRAPE_INTERVAL_S:g}s",
            "evaluation_interval": f"{EVALUATION_INTERVAL_S:g}s",
            "scrape_timeout": SCRAPE_TIMEOUT,
        },
        "rule_files": [plan.rules_glob],
        "scrape_configs": jobs,
        "alerting": {
            "alertmanagers": [
                {
                    "api_version": "v2",
                    "timeout": "1s",
                    "static_configs": [{"targets": [plan.alertmanager]}],
                }
            ]
        },
    }


def alertmanager_config(webhook_url: str) -> dict[str, object]:
    """alertmanager.yml: every alert to the drill's inbox, firing at once, resolved too."""
    return {
        "route": {
            "receiver": "drill-inbox",
            "group_by": ["alertname", "runbook_section"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": REPEAT_INTERVAL,
        },
        "receivers": [
            {
                "name": "drill-inbox",
                "webhook_configs": [{"url": webhook_url, "send_resolved": True, "max_alerts": 0}],
            }
        ],
    }


def file_sd(addresses: Iterable[str]) -> list[dict[str, object]]:
    """A file_sd document: one target group with these host:port addresses."""
    targets = list(dict.fromkeys(addresses))
    return [{"targets": targets, "labels": {}}] if targets else []


def target_address(url: str) -> str:
    """'http://127.0.0.1:8080/x' -> '127.0.0.1:8080' (the form Prometheus targets take)."""
    parts = urlsplit(url if "//" in url else f"//{url}")
    if not parts.hostname or parts.port is None:
        raise UsageError(f"{url!r} is not a URL with a host and a port")
    return f"{parts.hostname}:{parts.port}"


def write_config(path: Path, data: object) -> None:
    """Written whole or not at all (a watcher never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def postgres_exporter_dsn(superuser_url: str) -> str:
    """The exporter's DATA_SOURCE_NAME: the operator's superuser URL, no TLS (loopback),
    named in pg_stat_activity, untracked by pg_stat_statements (lib/pq passes unknown
    parameters to the server as settings; a superuser may set this one)."""
    separator = "&" if "?" in superuser_url else "?"
    return (
        f"{superuser_url}{separator}sslmode=disable&application_name={EXPORTER_APP}"
        "&pg_stat_statements.track=none"
    )


# -- the components ------------------------------------------------------------------------


def prometheus_flags(*, config: str, listen: str, external_url: str, data: str) -> list[str]:
    return [
        f"--config.file={config}",
        f"--web.listen-address={listen}",
        f"--web.external-url={external_url}",
        "--web.enable-lifecycle",  # POST /-/reload
        f"--storage.tsdb.path={data}",
        f"--rules.alert.resend-delay={RESEND_DELAY}",
        f"--rules.alert.for-grace-period={FOR_GRACE_PERIOD}",
    ]


def alertmanager_flags(*, config: str, listen: str, external_url: str, data: str) -> list[str]:
    return [
        f"--config.file={config}",
        f"--web.listen-address={listen}",
        f"--web.external-url={external_url}",
        f"--storage.path={data}",
        "--cluster.listen-address=",  # no gossip (its default binds 0.0.0.0:9094)
    ]


def redis_exporter_flags(*, listen: str, redis_url: str) -> list[str]:
    return [f"-redis.addr={redis_url}", f"-web.listen-address={listen}", "-log-format=txt"]


READY_PATHS = {
    "prometheus": "/-/ready",
    "alertmanager": "/-/ready",
    "postgres_exporter": "/",  # its landing page: answering needs no database round trip
    "redis_exporter": "/health",
}


class HttpServerComponent(LocalComponent):
    """A monitoring server on 127.0.0.1:`port`, ready when GET its ready path answers
    200 (a cheap page: no scrape, no database). `run()` gives it its command line."""

    ready_timeout_s = 15.0

    def __init__(self, name: str, work_dir: Path, *, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(name, data_dir=work_dir, clock=clock)
        work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir = work_dir
        self.port = free_port()
        self.ready_path = READY_PATHS[name]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """host:port where Prometheus reaches it."""
        return f"127.0.0.1:{self.port}"

    @property
    def listen_address(self) -> str:
        """host:port it binds (another backend's container may bind otherwise)."""
        return f"127.0.0.1:{self.port}"

    def probe(self) -> bool:
        url = f"{self.url}{self.ready_path}"
        return httpx.get(url, timeout=0.5, verify=tls_context()).status_code == 200

    def run(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """The process to run (the environment: the parent's without proxies, plus `env`)."""
        self.process = ManagedProcess(
            self.name,
            argv,
            log_path=self.work_dir / f"{self.name}.log",
            env=_clean_env(env),
            clock=self.clock,
        )


# -- the inbox -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """One alert out of one Alertmanager webhook POST."""

    received_wall: float  # clock.wall() at arrival
    received_mono: float  # clock.monotonic() at arrival
    status: str  # "firing" | "resolved"
    alertname: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str
    fingerprint: str

    @property
    def started_wall(self) -> float:
        """When the alert began firing (startsAt: Prometheus' FiredAt), wall time; inf
        without a readable one (it is then taken for a new alert)."""
        try:
            return parse_timestamp(self.starts_at)
        except ValueError:
            return float("inf")

    def began_after(self, wall: float) -> bool:
        """Whether the alert began firing at or after `wall` (a fault's injection): a
        repeat of one firing before it is not that fault's."""
        return self.started_wall >= wall - START_SLACK_S


def _strings(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    return {str(k): str(v) for k, v in value.items()}


def parse_webhook(payload: object, *, wall: float, mono: float) -> list[Notification]:
    """The alerts of one Alertmanager webhook body (version 4); ValueError otherwise."""
    if not isinstance(payload, dict):
        raise ValueError("the body is not a JSON object")
    version = payload.get("version")
    if version != WEBHOOK_VERSION:
        raise ValueError(f"webhook payload version {version!r}, expected {WEBHOOK_VERSION!r}")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise ValueError("the body has no list of alerts")
    out = []
    for alert in alerts:
        if not isinstance(alert, dict):
            raise ValueError("an alert is not an object")
        labels = _strings(alert.get("labels", {}), "labels")
        out.append(
            Notification(
                received_wall=wall,
                received_mono=mono,
                status=str(alert.get("status", payload.get("status", ""))),
                alertname=labels.get("alertname", ""),
                labels=labels,
                annotations=_strings(alert.get("annotations", {}), "annotations"),
                starts_at=str(alert.get("startsAt", "")),
                ends_at=str(alert.get("endsAt", "")),
                fingerprint=str(alert.get("fingerprint", "")),
            )
        )
    return out


class _InboxServer(ThreadingHTTPServer):
    daemon_threads = True
    inbox: AlertInbox


class _InboxHandler(BaseHTTPRequestHandler):
    server: _InboxServer

    def do_POST(self) -> None:
        inbox = self.server.inbox
        wall, mono = inbox.clock.wall(), inbox.clock.monotonic()  # arrival, before parsing
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            received = parse_webhook(json.loads(body or b"null"), wall=wall, mono=mono)
        except ValueError as exc:  # JSONDecodeError is one
            inbox.refused(f"{exc}: {body[:200]!r}")
            self._answer(400, str(exc))
            return
        inbox.receive(received)
        self._answer(200, "ok")

    def _answer(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class AlertInbox:
    """The drill's own webhook receiver: Alertmanager POSTs its notifications here.

    Every alert of every POST is kept as a `Notification`, stamped with the injected
    clock at arrival (time-to-alert is measured from those stamps)."""

    def __init__(self, *, host: str = "127.0.0.1", clock: Clock = SYSTEM_CLOCK) -> None:
        self.host = host
        self.clock = clock
        self.url = ""
        self.errors: list[str] = []  # bodies that were not Alertmanager's (refused, 400)
        self._received: list[Notification] = []
        self._lock = threading.Lock()
        self._server: _InboxServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            return
        server = _InboxServer((self.host, 0), _InboxHandler)
        server.inbox = self
        self._server = server
        self.url = f"http://{self.host}:{server.server_address[1]}/alerts"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = "alert-inbox"
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def receive(self, notifications: Iterable[Notification]) -> None:
        with self._lock:
            self._received.extend(notifications)

    def refused(self, why: str) -> None:
        with self._lock:
            self.errors.append(why)

    def notifications(self) -> list[Notification]:
        with self._lock:
            return list(self._received)

    def since(self, mono: float) -> list[Notification]:
        """What arrived at or after `mono` (the clock's monotonic time)."""
        return [n for n in self.notifications() if n.received_mono >= mono]

    def wait_for(
        self,
        predicate: Callable[[Notification], bool],
        *,
        after_mono: float,
        timeout_s: float,
    ) -> Notification | None:
        """The first notification arrived at or after `after_mono` that `predicate`
        accepts, waiting up to `timeout_s` for it; None if none came."""

        def found() -> Notification | None:
            return next((n for n in self.since(after_mono) if predicate(n)), None)

        try:
            return wait_until(
                found,
                what="an alert notification",
                timeout_s=timeout_s,
                interval_s=0.01,
                clock=self.clock,
            )
        except WaitTimeout:
            return None

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self.errors.clear()


# -- what Prometheus says ----------------------------------------------------------------------


@dataclass(frozen=True)
class PromAlert:
    """One alert of Prometheus' /api/v1/alerts."""

    alertname: str
    state: str  # "pending" | "firing"
    labels: dict[str, str]
    annotations: dict[str, str]
    active_at: str
    value: str


@dataclass(frozen=True)
class RuleGroup:
    """One rule group of Prometheus' /api/v1/rules."""

    name: str
    file: str  # the copy in the stack folder Prometheus read it from
    rules: int
    last_evaluation: str


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


def parse_samples(data: object) -> list[Sample]:
    """The `data` of an instant query's answer: a vector, a scalar or a string."""
    if not isinstance(data, dict):
        raise StackError(f"Prometheus answered an unexpected query result: {data!r}")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector" and isinstance(result, list):
        return [Sample(_strings(r["metric"], "metric"), float(r["value"][1])) for r in result]
    if kind == "scalar" and isinstance(result, list):
        return [Sample({}, float(result[1]))]
    if kind == "matrix":
        raise UsageError(
            "the query selects a range vector, which has no single value per series",
            hint="wrap it in a function over the range (rate(...[1m]), max_over_time ...)",
        )
    raise StackError(f"Prometheus answered a {kind} result: {result!r}")


def parse_timestamp(text: str) -> float:
    """Seconds since the epoch of Prometheus' RFC 3339 times (nanoseconds, 'Z');
    0.0 for Go's zero time ('0001-01-01T00:00:00Z': never)."""
    if text.startswith("0001-01-01"):
        return 0.0
    found = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if found is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    base, fraction, zone = found.groups()
    moment = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    return moment.timestamp() + float(f"0.{fraction or 0}")


@dataclass(frozen=True)
class Freshness:
    """What /api/v1/targets and /api/v1/rules say about one moment: fresh or why not."""

    missing: tuple[str, ...]  # expected targets Prometheus does not scrape (yet)
    stale: tuple[str, ...]  # targets last scraped before the moment
    unevaluated: tuple[str, ...]  # rule groups last evaluated before those scrapes

    @property
    def fresh(self) -> bool:
        return not (self.missing or self.stale or self.unevaluated)


class FreshnessWatch:
    """Is Prometheus' view fresh for a moment (`after_wall`)? Fed the `data` of
    /api/v1/targets and /api/v1/rules again and again: fresh once every expected address
    is an active target, every active target has been scraped (up or not) after the
    moment, and every rule group has been evaluated after the FIRST such scrape of each
    (the latest scrape keeps moving: a rule group evaluated just before the scrapes'
    phase would never look newer than them)."""

    def __init__(self, expected: Iterable[str], after_wall: float) -> None:
        self.expected = frozenset(expected)
        self.after_wall = after_wall
        self.first_fresh: dict[str, float] = {}  # pool/instance -> end of its first scrape

    def observe(self, targets: object, rules: object) -> Freshness:
        active = targets.get("activeTargets", []) if isinstance(targets, dict) else []
        keys = []
        for target in active:
            key = f"{target.get('scrapePool', '')}/{target.get('labels', {}).get('instance', '')}"
            keys.append(key)
            scraped = parse_timestamp(str(target.get("lastScrape", "0001-01-01T00:00:00Z")))
            ended = scraped + float(target.get("lastScrapeDuration", 0.0) or 0.0)
            if scraped and ended > self.after_wall:
                self.first_fresh.setdefault(key, ended)
        missing = tuple(sorted(self.expected - {key.split("/", 1)[1] for key in keys}))
        stale = tuple(sorted(key for key in keys if key not in self.first_fresh))
        newest = max((self.first_fresh[k] for k in keys if k in self.first_fresh), default=0.0)
        newest = max(newest, self.after_wall)
        groups = rules.get("groups", []) if isinstance(rules, dict) else []
        unevaluated = tuple(
            sorted(
                str(group.get("name"))
                for group in groups
                if parse_timestamp(str(group.get("lastEvaluation", "0001-01-01T00:00:00Z")))
                <= newest
            )
        )
        return Freshness(missing, stale, unevaluated)


# -- the whole ----------------------------------------------------------------------------------


class Monitoring:
    """The Prometheus + Alertmanager (+ exporters) of one stack, and the drill's inbox.

    Built before the stack spawns anything: the inbox is listening and the config files
    are written; `components` are for the stack to spawn, wait for, track and stop with
    its own (they are not in `base.COMPONENTS`: faults never target them)."""

    scrape_interval_s = SCRAPE_INTERVAL_S
    evaluation_interval_s = EVALUATION_INTERVAL_S

    def __init__(
        self,
        folder: Path,
        binaries: MonitoringBinaries,
        *,
        postgres_url: str | None,
        redis_url: str | None,
        api_urls: Sequence[str],
        api_job: str,
        clock: Clock = SYSTEM_CLOCK,
        inbox_host: str = "127.0.0.1",
    ) -> None:
        self.folder = folder
        self.api_job = api_job
        self.binaries = binaries
        self.clock = clock
        self.rules_dir = folder / "rules"
        self.rules_dir.mkdir(parents=True, exist_ok=True)
        self.api_targets_path = folder / "api-targets.json"
        self.inbox = AlertInbox(host=inbox_host, clock=clock)
        self.inbox.start()
        self._rule_files: tuple[Path, ...] = ()
        try:
            self.components = self._make_components(postgres_url, redis_url)
        except BaseException:
            self.inbox.stop()
            raise
        self._api_targets: tuple[str, ...] = ()
        self.set_api_targets(api_urls)

    def _server(self, name: str) -> HttpServerComponent:
        """One monitoring server, its command line still to give (`run`); another backend
        overrides this: its servers, the same flags and configuration."""
        return HttpServerComponent(name, self.folder / name, clock=self.clock)

    def _make_components(
        self, postgres_url: str | None, redis_url: str | None
    ) -> list[HttpServerComponent]:
        folder, binaries = self.folder, self.binaries
        servers = []
        for name, binary, flags in (
            ("prometheus", binaries.prometheus, prometheus_flags),
            ("alertmanager", binaries.alertmanager, alertmanager_flags),
        ):
            server = self._server(name)
            server.run(
                [
                    binary,
                    *flags(
                        config=str(folder / f"{name}.yml"),
                        listen=server.listen_address,
                        external_url=server.url,
                        data=str(server.work_dir / "data"),
                    ),
                ]
            )
            servers.append(server)
        prometheus, alertmanager = servers
        exporters: list[HttpServerComponent] = []
        if binaries.postgres_exporter and postgres_url:
            exporter = self._server("postgres_exporter")
            # the password travels in the environment, never on the command line (ps)
            exporter.run(
                [binaries.postgres_exporter, f"--web.listen-address={exporter.listen_address}"],
                {"DATA_SOURCE_NAME": postgres_exporter_dsn(postgres_url)},
            )
            exporters.append(exporter)
        if binaries.redis_exporter and redis_url:
            exporter = self._server("redis_exporter")
            exporter.run(
                [
                    binaries.redis_exporter,
                    *redis_exporter_flags(listen=exporter.listen_address, redis_url=redis_url),
                ]
            )
            exporters.append(exporter)
        self.write_configs(prometheus, alertmanager, exporters)
        return [prometheus, alertmanager, *exporters]

    def write_configs(
        self,
        prometheus: HttpServerComponent,
        alertmanager: HttpServerComponent,
        exporters: Sequence[HttpServerComponent],
    ) -> None:
        by_name = {e.name: e.address for e in exporters}
        plan = PrometheusPlan(
            alertmanager=alertmanager.address,
            rules_glob=str(self.rules_dir / "*.yml"),
            api_targets_file=str(self.api_targets_path),
            api_job=self.api_job,
            postgres_exporter=by_name.get("postgres_exporter"),
            redis_exporter=by_name.get("redis_exporter"),
        )
        write_config(self.folder / "prometheus.yml", prometheus_config(plan))
        write_config(self.folder / "alertmanager.yml", alertmanager_config(self.inbox.url))
        self.prometheus_url = prometheus.url
        self.alertmanager_url = alertmanager.url
        self._exporter_targets = tuple(by_name.values())

    def component(self, name: str) -> HttpServerComponent:
        for component in self.components:
            if component.name == name:
                return component
        raise StackError(f"no monitoring component {name!r}")

    def close(self) -> None:
        """The inbox stops (the stack stops the components with its own)."""
        self.inbox.stop()

    # -- targets and rules --------------------------------------------------------------------
    def api_target(self, url: str) -> str:
        """The address Prometheus scrapes an API instance at (another backend may map it)."""
        return target_address(url)

    def set_api_targets(self, urls: Sequence[str]) -> None:
        """The API instances to scrape (file_sd; Prometheus takes it within 0-5 s)."""
        targets = tuple(dict.fromkeys(self.api_target(u) for u in urls))
        if targets == self._api_targets and self.api_targets_path.exists():
            return
        write_config(self.api_targets_path, file_sd(targets))
        self._api_targets = targets

    @property
    def expected_targets(self) -> tuple[str, ...]:
        return (*self._api_targets, *self._exporter_targets)

    def set_rules(self, files: Sequence[Path]) -> None:
        """Exactly these rule files, loaded: each is copied into the stack folder and
        checked there with `promtool check rules` (a refused one is a UsageError naming
        it, and nothing changes), then Prometheus is reloaded and waited for until
        /api/v1/rules lists them."""
        sources = [Path(f) for f in files]
        for source in sources:
            if not source.is_file():
                raise UsageError(f"rule file {source} does not exist")
        staging = self.rules_dir / ".staged"  # outside the rules glob
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        staged = [staging / f"{i:02d}-{s.stem}.yml" for i, s in enumerate(sources, 1)]
        for source, copy in zip(sources, staged, strict=True):
            shutil.copyfile(source, copy)
        counts = [self._check_rules(s, c) for s, c in zip(sources, staged, strict=True)]
        for old in self.rules_dir.glob("*.yml"):
            old.unlink()
        copies = [self.rules_dir / copy.name for copy in staged]
        for copy, final in zip(staged, copies, strict=True):
            os.replace(copy, final)
        try:
            self._reload()
        except UsageError:
            for copy in copies:  # back to no rules rather than a half-loaded set
                copy.unlink(missing_ok=True)
            self._rule_files = ()
            with contextlib.suppress(StackError):
                self._reload()
            raise
        self._rule_files = tuple(sources)
        want = {str(c): n for c, n in zip(copies, counts, strict=True) if n}

        def loaded() -> bool:
            have: dict[str, int] = {}
            for group in self.rule_groups():
                have[group.file] = have.get(group.file, 0) + group.rules
            return have == want

        wait_until(
            loaded,
            what=f"Prometheus to list the rules of {', '.join(map(str, files)) or 'no file'}",
            timeout_s=10.0,
            interval_s=0.02,
            transient=(httpx.HTTPError,),
            clock=self.clock,
        )

    def rule_groups(self) -> list[RuleGroup]:
        """The rule groups Prometheus has loaded (/api/v1/rules)."""
        data = self._api("/api/v1/rules")
        groups = data.get("groups", []) if isinstance(data, dict) else []
        return [
            RuleGroup(
                name=str(g.get("name", "")),
                file=str(g.get("file", "")),
                rules=len(g.get("rules", [])),
                last_evaluation=str(g.get("lastEvaluation", "")),
            )
            for g in groups
        ]

    @property
    def rule_files(self) -> tuple[Path, ...]:
        return self._rule_files

    def promtool(self, *args: str) -> tuple[int, str]:
        """`promtool ARGS` (exit status, output), where Prometheus runs (another backend
        runs it in Prometheus' container)."""
        done = subprocess.run(
            [self.binaries.promtool, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.returncode, done.stdout + done.stderr

    def _check_rules(self, source: Path, staged: Path) -> int:
        """The file's number of rules per promtool; UsageError naming `source` when it
        refuses the file (`staged`, its copy in the stack folder)."""
        status, output = self.promtool("check", "rules", str(staged))
        output = output.replace(str(staged), str(source)).strip()
        if status != 0:
            raise UsageError(
                f"Prometheus refuses the rule file {source}: {output}",
                hint=f"check it with `promtool check rules {source}`",
            )
        found = re.search(r"SUCCESS: (\d+) rules found", output)
        return int(found.group(1)) if found else 0

    def _reload(self) -> None:
        try:
            response = httpx.post(
                f"{self.prometheus_url}/-/reload", timeout=10, verify=tls_context()
            )
        except httpx.HTTPError as exc:
            raise StackError(f"Prometheus did not take a reload: {exc}") from exc
        if response.status_code != 200:
            raise UsageError(
                f"Prometheus refused its new configuration: {response.text.strip()}",
                hint="check the rule files with `promtool check rules FILE`",
            )

    # -- asking Prometheus ----------------------------------------------------------------------
    def _api(self, path: str, params: Mapping[str, str] | None = None) -> object:
        response = httpx.get(
            f"{self.prometheus_url}{path}", params=params, timeout=5, verify=tls_context()
        )
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise StackError(f"Prometheus {path}: {body.get('error', response.text)}")
        return body.get("data")

    def query(self, promql: str) -> list[Sample]:
        """An instant query; a bad expression is a UsageError with Prometheus' words."""
        response = httpx.get(
            f"{self.prometheus_url}/api/v1/query",
            params={"query": promql},
            timeout=10,
            verify=tls_context(),
        )
        body = response.json()
        if body.get("status") != "success":
            error = body.get("error", response.text)
            if body.get("errorType") == "bad_data":
                raise UsageError(f"Prometheus refuses the query {promql!r}: {error}")
            raise StackError(f"Prometheus could not run the query {promql!r}: {error}")
        return parse_samples(body.get("data"))

    def firing(self) -> list[PromAlert]:
        """Prometheus' active alerts (pending and firing)."""
        data = self._api("/api/v1/alerts")
        alerts = data.get("alerts", []) if isinstance(data, dict) else []
        out = []
        for alert in alerts:
            labels = _strings(alert.get("labels", {}), "labels")
            out.append(
                PromAlert(
                    alertname=labels.get("alertname", ""),
                    state=str(alert.get("state", "")),
                    labels=labels,
                    annotations=_strings(alert.get("annotations", {}), "annotations"),
                    active_at=str(alert.get("activeAt", "")),
                    value=str(alert.get("value", "")),
                )
            )
        return out

    def _observe(self, watch: FreshnessWatch) -> Freshness:
        return watch.observe(
            self._api("/api/v1/targets", {"state": "active"}), self._api("/api/v1/rules")
        )

    def lingering(self) -> list[str]:
        """Scrape targets and `up` series of addresses no longer expected (an API instance
        a reset removed, still scraped or not yet marked stale: down, its `up == 0` would
        fire an alert for the next drill or test); empty once Prometheus caught up."""
        expected = set(self.expected_targets)
        data = self._api("/api/v1/targets", {"state": "active"})
        active = data.get("activeTargets", []) if isinstance(data, dict) else []
        instances = {str(t.get("labels", {}).get("instance", "")) for t in active}
        instances |= {s.labels.get("instance", "") for s in self.query("up")}
        return sorted(instances - expected)

    def wait_fresh(self, after_wall: float, timeout_s: float = 5.0) -> None:
        """Until no address that is gone lingers in Prometheus' view, every expected target
        was scraped after `after_wall` (the clock's wall time) or after that, and every
        rule group evaluated after those scrapes."""
        deadline = self.clock.monotonic() + timeout_s
        if self.lingering():  # the view is fresh only from when they are gone
            self._until(
                lambda: not self.lingering(),
                deadline,
                lambda: (
                    f"Prometheus still scrapes or reports {self.lingering()} after "
                    f"{timeout_s:.1f}s, though the stack removed them"
                ),
                "Prometheus rereads its targets every 5 s and marks a gone target's series "
                "stale a few scrapes later",
            )
            after_wall = max(after_wall, self.clock.wall())
        watch = FreshnessWatch(self.expected_targets, after_wall)
        self._until(
            lambda: self._observe(watch).fresh,
            max(deadline, self.clock.monotonic() + 0.5),
            lambda: f"Prometheus' view is not fresh after {timeout_s:.1f}s: {self._observe(watch)}",
            "a target added less than 5 s ago may not be scraped yet (Prometheus batches "
            "target changes every 5 s)",
        )

    def _until(
        self, ready: Callable[[], bool], deadline: float, why: Callable[[], str], hint: str
    ) -> None:
        """Poll `ready` (Prometheus' API) until the clock's monotonic `deadline`; past it,
        a StackError saying `why()`."""
        try:
            wait_until(
                ready,
                what="Prometheus' view to be fresh",
                timeout_s=max(deadline - self.clock.monotonic(), 0.0),
                interval_s=0.05,
                transient=(httpx.HTTPError,),
                clock=self.clock,
            )
        except WaitTimeout as exc:
            raise StackError(why(), hint=hint) from exc

    # -- between tests, evidence ----------------------------------------------------------------
    def reset(self) -> None:
        """Between tests: the inbox emptied; a monitoring server that died is started
        again (no restart otherwise: rules and targets stay as they are)."""
        self.inbox.clear()
        for component in self.components:
            if not component.is_running():
                component.resume()
            if not component.process.is_alive():
                component.start()

    def versions(self) -> dict[str, str]:
        """Server -> its program's version (for evidence)."""
        return {c.name: f"{c.name} {self.version_of(c)}" for c in self.components}

    def version_of(self, server: HttpServerComponent) -> str:
        return binary_version(server.process.argv[0])
