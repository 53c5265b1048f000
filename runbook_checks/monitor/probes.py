"""A runbook's symptoms as probes: what would show each one, measured on the stack.

Every symptom bullet of every scenario section becomes one `Probe`, for the triage stage
(does this section's symptom show under a given fault?) and, where the bullet carries a
number or a measurable condition, an alert rule (`runbook_checks.monitor.rules`).

Recognised shapes, first match wins (the text is read with Markdown marks removed):

- "<Provider> status page shows outage": STATUS_PAGE of the provider;
- "page loads": MANUAL (timed in the browser; the stack has no front end);
- "No system-wide outage", a negative: HTTP GET /health, observed on 2xx;
- a quoted message the vocabulary knows: LOG of the service's own words for it, or the
  4xx/5xx answers of its routes (`Vocabulary.messages`);
- people's reports ("users report", "complaints"): MANUAL, unless they quote a known
  message;
- a quoted message after "logs" / "error": LOG of the text as written;
- a time threshold ("> 2s (p95)", "over 2 seconds"): histogram_quantile per route;
- "error rate > 5% [on ROUTE]": the failed share of the answers;
- "N req/s": the request rate (an API answering nothing has no series: that is 0);
- "database connections = 0": the postgres exporter's pg_up == 0;
- a status code ("returns 500", "5xx") or "times out": an HTTP probe of a path that
  answers an anonymous GET, else the rate of those answers; "all requests" is their
  share >= 90% of the answers;
- "API down / unreachable": up == 0;
- "errors" (a spike, no number): the 5xx rate > 0, without an alert;
- anything else: MANUAL "no measurable signal recognised in: ...".

Every shape with a number or a status code gets an alert rule (`RuleSpec`: its name and
the cases of its promtool unit tests); one without (a spike, a message) does not.
A written 500 is read as any 5xx (the twin answers 503 for a dependency failure); the
scrape's own route (/metrics) counts neither as traffic nor in error and latency figures.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from runbook_checks.runbook import severity as severity_text
from runbook_checks.runbook.model import Runbook, Section
from runbook_checks.vocabulary import Message, Vocabulary


class ProbeKind(StrEnum):
    PROMQL = "promql"
    HTTP = "http"
    LOG = "log"
    STATUS_PAGE = "status-page"
    MANUAL = "manual"


# HttpProbe.observed_when: when the symptom counts as shown by one call of the probe
OBSERVED_WHEN: Mapping[str, str] = MappingProxyType(
    {
        "2xx": "the call is answered with a 2xx status",
        "4xx": "the call is answered with a 4xx status",
        "5xx": "the call is answered with a 5xx status",
        "5xx-or-timeout": "the call is answered with a 5xx status, or not answered within "
        "the probe's timeout (connection refused or reset, or no answer in time)",
    }
)


@dataclass(frozen=True)
class HttpProbe:
    """One call, relative to the API's front door, with no placeholders."""

    method: str
    path: str
    observed_when: str  # a key of OBSERVED_WHEN

    def __post_init__(self) -> None:
        if self.observed_when not in OBSERVED_WHEN:
            known = ", ".join(OBSERVED_WHEN)
            raise ValueError(f"observed_when {self.observed_when!r} is not one of {known}")


@dataclass(frozen=True)
class Series:
    """A series for a promtool unit test: `start`, then `step` more every interval."""

    selector: str
    start: float = 0.0
    step: float = 0.0

    def values(self, points: int) -> str:
        return f"{_num(self.start)}+{_num(self.step)}x{points}"


@dataclass(frozen=True)
class FiringCase:
    """Series under which the rule must fire, and the labels its alert then carries."""

    what: str
    series: tuple[Series, ...]
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleSpec:
    """What an alert rule derived from a probe needs beyond its expression: a name and
    the cases its promtool unit tests feed it."""

    name: str  # CamelCase, without the service prefix: "UploadErrorRateHigh"
    window_s: float
    firing: tuple[FiringCase, ...]
    quiet: tuple[Series, ...]


@dataclass(frozen=True)
class Probe:
    section_id: str
    section_title: str
    severity: str | None
    symptom: str  # the bullet as written
    line: int  # its line in the runbook (0 when the parser gave none)
    kind: ProbeKind
    # PromQL that returns a non-empty instant vector while the symptom shows (PROMQL; set
    # for HTTP and LOG probes too when an alert rule exists for them)
    expr: str = ""
    http: HttpProbe | None = None
    log_pattern: str = ""  # LOG: a regex over the API's log lines written since the fault
    provider: str = ""  # STATUS_PAGE: whose status page ("acme", as the runbook names it)
    reason: str = ""  # MANUAL: why it cannot be measured here
    threshold: str = ""  # the number as written, for display ("> 5%", "> 2s (p95)")
    alert: bool = False  # an alert rule is derived from it
    note: str = ""  # how the measurement reads the text (the service's words, a choice)
    rule: RuleSpec | None = field(default=None, compare=False, repr=False)

    @property
    def measurable(self) -> bool:
        return self.kind is not ProbeKind.MANUAL


def symptom_probes(runbook: Runbook, vocab: Vocabulary, *, window_s: float = 10.0) -> list[Probe]:
    """Every symptom bullet of every scenario section, in order. Never raises on odd
    text: a shape not recognised is MANUAL with the reason."""
    reader = _Reader(vocab, window_s)
    probes: list[Probe] = []
    for section in runbook.scenarios:
        for index, symptom in enumerate(section.symptoms):
            line = section.symptom_lines[index] if index < len(section.symptom_lines) else 0
            probes.append(reader.probe(section, symptom, line))
    return probes


# ------------------------------------------------------------------------ reading text

_QUOTED = re.compile(r"[\"“”]([^\"“”]+)[\"“”]")
_PATH = re.compile(r"(?<![\w.:/])(/[A-Za-z0-9_{}.~%/-]*[A-Za-z0-9_}])")
_METHOD = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE|HEAD)\s+/")
_COMPARATORS: Sequence[tuple[str, str]] = (
    (r">=|≥|\bat least\b|\bno less than\b", ">="),
    (r"<=|≤|\bat most\b|\bno more than\b", "<="),
    (r">|\b(?:over|above|more than|greater than|exceeds?|exceeding|higher than)\b", ">"),
    (r"<|\b(?:under|below|less than|lower than)\b", "<"),
    (r"==?|\b(?:equals?|is|at)\b", "=="),
)
_UNIT = (
    r"%|req(?:uests?)?\s*/\s*s(?:ec)?\b|rps\b|requests? (?:per|a) second"
    r"|ms\b|milliseconds?\b|s\b|secs?\b|seconds?\b|m\b|mins?\b|minutes?\b"
)
_THRESHOLD = re.compile(
    r"(?P<cmp>"
    + "|".join(f"(?:{c})" for c, _ in _COMPARATORS)
    + r")?\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>"
    + _UNIT
    + r")?",
    re.IGNORECASE,
)
_QUANTILE = re.compile(
    r"\(?\s*\bp(?P<p>\d{2}(?:\.\d+)?)\b\s*\)?|\b(?P<q>\d{2})(?:th|st|nd|rd)?\s+percentile",
    re.IGNORECASE,
)
_STATUS = re.compile(r"(?<![\w.>=<])(?P<code>[1-5](?:\d\d|xx|XX))(?![\w.%]|\s*(?:ms|s|%)\b)")
# a three-digit number is a status after these words, or before "errors"/"responses"
_STATUS_BEFORE = re.compile(
    r"\b(?:return\w*|answer\w*|respon\w*|http|status|code|with|gets?|got|throw\w*|gives?"
    r"|sees?|fails? with)\W+(?:\w+\W+){0,2}$",
    re.IGNORECASE,
)
_STATUS_AFTER = re.compile(r"\W*(?:errors?|responses?|answers?|status)\b", re.IGNORECASE)
_TIMEOUT = re.compile(
    r"\b(?:times? out|timed out|timing out|timeouts?|no answer|no response|not respond\w*"
    r"|unreachable|hangs?)\b",
    re.IGNORECASE,
)
_DOWN = re.compile(
    r"\b(?:api|service|server|app|application|backend)s?\b.*\b(?:is |are )?"
    r"(?:down|unreachable|not responding|unavailable)\b",
    re.IGNORECASE,
)
_ALL = re.compile(r"\b(?:all|every|each)\b", re.IGNORECASE)
_PEOPLE = re.compile(
    r"\b(?:users?|customers?|people|clients?|support tickets?)\b.*"
    r"\b(?:reports?|reporting|reported|complain\w*|say|tickets?)\b"
    r"|\b(?:reports?|complaints?|tickets?)\b.*\b(?:from|by|of|about)\b.*\b(?:users?|customers?)\b"
    r"|\b(?:user|customer) (?:reports?|complaints?)\b",
    re.IGNORECASE,
)
_PAGE_LOADS = re.compile(r"\bpage[- ]?loads?\b|\bpage load time\b|\brender(?:ing)?\b", re.I)
_NEGATIVE = re.compile(r"^\s*(?:no|not an?)\s+(?:[\w-]+\s+){0,3}(?:outage|downtime)\b", re.I)
_STATUS_PAGE = re.compile(r"(?:\b(?P<name>[\w.-]+?)(?:'s)?\s+)?status\s*page\b", re.IGNORECASE)
_NOT_A_PROVIDER = frozenset({"the", "our", "a", "its", "their", "public", "own"})
_LATENCY = re.compile(r"\b(?:response times?|latency|slow\w*|takes?|duration|p\d{2})\b", re.I)
_ERROR_RATE = re.compile(r"\b(?:error|failure|5xx|4xx)s?\s*(?:rate|ratio|share)\b|%", re.I)
_TRAFFIC_UNIT = re.compile(r"^(?:req|rps|requests?)", re.IGNORECASE)
_CONNECTIONS = re.compile(r"\bconnections?\b", re.IGNORECASE)
_ERRORS = re.compile(r"\b(?:errors?|exceptions?|failures?|5xx)\b", re.IGNORECASE)
_LOG_CONTEXT = re.compile(r"\b(?:logs?|error|errors|exception|message)\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Threshold:
    op: str  # ">", ">=", "<", "<=", "=="
    value: float  # in the metric's unit: seconds, a fraction for %, req/s
    unit: str  # "s", "%", "req/s", ""
    text: str  # as written


def _threshold(text: str) -> _Threshold | None:
    """The first number with a comparator or a unit ("> 5%", "0 req/s", "= 0")."""
    for match in _THRESHOLD.finditer(text):
        raw_cmp, unit = match.group("cmp"), (match.group("unit") or "").lower()
        if not raw_cmp and not unit:
            continue
        if raw_cmp and raw_cmp.strip().lower() in ("is", "at") and not unit:
            continue  # "is 5 times higher": not a threshold
        op = ">"
        for pattern, name in _COMPARATORS:
            if raw_cmp and re.fullmatch(pattern, raw_cmp.strip(), re.IGNORECASE):
                op = name
                break
        if not raw_cmp:
            op = "=="  # "0 req/s"
        number = float(match.group("num"))
        kind = _unit_kind(unit)
        if kind == "%":
            value = number / 100
        elif kind == "s":
            value = number * _seconds_per(unit)
        else:
            value = number
        return _Threshold(op, value, kind, match.group(0).strip())
    return None


def _unit_kind(unit: str) -> str:
    if unit == "%":
        return "%"
    if _TRAFFIC_UNIT.match(unit):
        return "req/s"
    return "s" if unit else ""


def _seconds_per(unit: str) -> float:
    if unit.startswith("ms") or unit.startswith("milli"):
        return 0.001
    if unit.startswith("m"):
        return 60.0
    return 1.0


def _quantile(text: str) -> tuple[float, str] | None:
    match = _QUANTILE.search(text)
    if match is None:
        return None
    percent = float(match.group("p") or match.group("q"))
    return (percent / 100, match.group(0).strip()) if 0 < percent < 100 else None


def _status(text: str) -> str | None:
    """The first status code or class written ("500", "5xx", "404"), as a label regex;
    a number that is a threshold ("> 500 req/s") is not one."""
    numbers = [m.span() for m in _THRESHOLD.finditer(text) if m.group("cmp") or m.group("unit")]
    for match in _STATUS.finditer(text):
        code = match.group("code").lower()
        inside = any(a <= match.start() < b for a, b in numbers)
        if code[0] not in "45" or inside:
            continue
        named = code.endswith("xx") or _STATUS_BEFORE.search(text[: match.start()])
        if not named and not _STATUS_AFTER.match(text[match.end() :]):
            continue  # "holds 400 files": a count, not a status
        if code.endswith("xx"):
            return f"{code[0]}.."
        return "5.." if code == "500" else code
    return None


# ------------------------------------------------------------------------ PromQL


def format_duration(seconds: float) -> str:
    """A Prometheus duration: 10 -> "10s", 300 -> "5m", 150 -> "2m30s", 0.5 -> "500ms"."""
    total_ms = max(1, round(seconds * 1000))
    parts: list[str] = []
    for unit, size in _PROM_UNITS:
        amount, total_ms = divmod(total_ms, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


# largest first; "y" and "w" as Prometheus counts them (365 days, 7 days)
_PROM_UNITS: Sequence[tuple[str, int]] = (
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
)
PROM_UNIT_MS: Mapping[str, int] = MappingProxyType(dict(_PROM_UNITS))


def _num(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else "0"


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _selector(metric: str, *matchers: tuple[str, str, str]) -> str:
    inner = ",".join(f"{name}{op}{_quote(value)}" for name, op, value in matchers)
    return f"{metric}{{{inner}}}"


def _routes_regex(routes: Sequence[str]) -> str:
    return "|".join(re.escape(r) for r in routes)


def _camel(text: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.findall(r"[A-Za-z0-9]+", text))


def _route_name(route: str) -> str:
    static = [p for p in route.split("/") if p and not p.startswith("{")]
    return _camel(static[-1]) if static else "Root"


_OP_WORD = {">": "High", ">=": "High", "<": "Low", "<=": "Low"}


def _op_word(th: _Threshold) -> str:
    if th.op == "==":
        return "Zero" if th.value == 0 else f"Is{_camel(_num(th.value))}"
    return _OP_WORD[th.op]


# ------------------------------------------------------------------------ the reader


@dataclass(frozen=True)
class _Reading:
    kind: ProbeKind
    expr: str = ""
    http: HttpProbe | None = None
    log_pattern: str = ""
    provider: str = ""
    reason: str = ""
    threshold: str = ""
    note: str = ""
    rule: RuleSpec | None = None


class _Reader:
    def __init__(self, vocab: Vocabulary, window_s: float) -> None:
        self.v = vocab
        self.window_s = window_s
        self.w = format_duration(window_s)
        self.job = ("job", "=", vocab.api_job)
        self.not_scrape = ("route", "!=", vocab.metrics_route)
        self.instance = {"job": vocab.api_job, "instance": "api-1:5000"}

    def probe(self, section: Section, symptom: str, line: int) -> Probe:
        try:
            reading = self.read(symptom)
        except Exception as exc:  # never raise on odd text: say what happened
            reading = _Reading(
                ProbeKind.MANUAL,
                reason=f"no measurable signal recognised in: {symptom} ({type(exc).__name__})",
            )
        return Probe(
            section_id=section.id,
            section_title=section.title,
            severity=section.severity,
            symptom=symptom,
            line=line,
            kind=reading.kind,
            expr=reading.expr,
            http=reading.http,
            log_pattern=reading.log_pattern,
            provider=reading.provider,
            reason=reading.reason,
            threshold=reading.threshold,
            alert=reading.rule is not None and bool(reading.expr),
            note=reading.note,
            rule=reading.rule,
        )

    def read(self, symptom: str) -> _Reading:
        text = " ".join(severity_text.plain(symptom).split())
        steps: Sequence[Callable[[str], _Reading | None]] = (
            self._status_page,
            self._page_loads,
            self._negative,
            self._known_messages,
            self._people,
            self._quoted_log,
            self._latency,
            self._error_rate,
            self._traffic,
            self._connections,
            self._status_code,
            self._down,
            self._errors,
        )
        for step in steps:
            reading = step(text)
            if reading is not None:
                return reading
        return _Reading(
            ProbeKind.MANUAL, reason=f"no measurable signal recognised in: {symptom.strip()}"
        )

    # -- shapes without a metric ------------------------------------------------------

    def _status_page(self, text: str) -> _Reading | None:
        match = _STATUS_PAGE.search(text)
        if match is None:
            return None
        name = (match.group("name") or "").lower()
        if not name or name in _NOT_A_PROVIDER:
            return _Reading(
                ProbeKind.MANUAL, reason="a status page without a provider's name: whose?"
            )
        return _Reading(ProbeKind.STATUS_PAGE, provider=name)

    def _page_loads(self, text: str) -> _Reading | None:
        if not _PAGE_LOADS.search(text):
            return None
        th = _threshold(text)
        return _Reading(
            ProbeKind.MANUAL,
            reason="page loads are timed in the browser; the stack has no front end "
            "(the API's own latency is a separate symptom)",
            threshold=th.text if th else "",
        )

    def _negative(self, text: str) -> _Reading | None:
        if not _NEGATIVE.search(text):
            return None
        return _Reading(
            ProbeKind.HTTP,
            http=HttpProbe("GET", self.v.health_path, "2xx"),
            note=f"a negative symptom: shown while {self.v.health_path} answers 2xx",
        )

    def _known_messages(self, text: str) -> _Reading | None:
        quoted = _QUOTED.findall(text)
        known = [(q, m) for q in quoted if (m := self.v.message(q)) is not None]
        if not known:
            return None
        people = bool(_PEOPLE.search(text))
        notes = [m.note for _, m in known if m.note]
        if people:
            notes.insert(0, "reports from people are not a signal")
        logged = [m.log_pattern for _, m in known if m.log_pattern]
        if logged:
            return _Reading(ProbeKind.LOG, log_pattern="|".join(logged), note="; ".join(notes))
        return self._answers(known[0][1], "; ".join(notes))

    def _answers(self, message: Message, note: str) -> _Reading:
        rate = self._rate_sum(
            ("route", "=~", _routes_regex(message.routes)), ("status", "=~", message.status)
        )
        return _Reading(ProbeKind.PROMQL, expr=f"{rate} > 0", note=note)

    def _people(self, text: str) -> _Reading | None:
        if not _PEOPLE.search(text):
            return None
        return _Reading(
            ProbeKind.MANUAL,
            reason="reports from people (users, customers, support): people, not a signal",
        )

    def _quoted_log(self, text: str) -> _Reading | None:
        quoted = _QUOTED.findall(text)
        if not quoted or not _LOG_CONTEXT.search(text):
            return None
        return _Reading(
            ProbeKind.LOG,
            log_pattern="|".join(_literal(q) for q in quoted),
            note="not a message the service is known to write (vocabulary): matched as written",
        )

    # -- numbers ----------------------------------------------------------------------

    def _route(self, text: str) -> tuple[str | None, str]:
        """The route label of the first path written, and a note when it is unknown."""
        match = _PATH.search(text)
        if match is None:
            return None, ""
        written = match.group(1)
        route = self.v.route_of(written)
        if route is None:
            return written, f"{written} is not a route of the service: its label taken as written"
        return route, ""

    def _routes(self, route: str | None) -> tuple[str, str, str]:
        return ("route", "=", route) if route else self.not_scrape

    def _latency(self, text: str) -> _Reading | None:
        th = _threshold(text)
        if th is None or th.unit != "s" or (not _LATENCY.search(text) and not _quantile(text)):
            return None
        if th.op not in (">", ">="):
            return None
        q = _quantile(text)
        quantile, written = q if q else (0.5, "")
        route, note = self._route(text)
        if q is None:
            note = "; ".join(n for n in (note, "no percentile written: the median (p50)") if n)
        bucket = _selector(self.v.duration_bucket, self.job, self._routes(route))
        expr = (
            f"histogram_quantile({_num(quantile)}, sum by (route, le) "
            f"(rate({bucket}[{self.w}]))) {th.op} {_num(th.value)}"
        )
        shown = f"{th.text} ({written.strip('() ')})" if written else th.text
        label = route or self.v.main_route
        les = (th.value / 10, th.value, th.value * 4)

        def buckets(slow: bool) -> tuple[Series, ...]:
            out = []
            for le in (*les, math.inf):
                rises = le >= les[2] if slow else True
                sel = _selector(
                    self.v.duration_bucket,
                    *self._labels(route=label, le="+Inf" if le == math.inf else _num(le)),
                )
                out.append(Series(sel, 0, 10 if rises else 0))
            return tuple(out)

        name = f"{_route_name(route) if route else ''}LatencyP{_num(quantile * 100)}High"
        spec = RuleSpec(
            name,
            self.window_s,
            (
                FiringCase(
                    f"p{_num(quantile * 100)} above {shown}", buckets(True), {"route": label}
                ),
            ),
            buckets(False),
        )
        return _Reading(ProbeKind.PROMQL, expr=expr, threshold=shown, note=note, rule=spec)

    def _error_rate(self, text: str) -> _Reading | None:
        th = _threshold(text)
        if th is None or th.unit != "%" or not _ERROR_RATE.search(text):
            return None
        if th.op not in (">", ">="):
            return None
        route, note = self._route(text)
        status = self.v.failure_status(route) if route else self.v.server_errors
        explicit = _status(text)
        if explicit is not None:
            status = explicit
        scope = self._routes(route)
        failed = self._rate_sum(scope, ("status", "=~", status))
        every = self._rate_sum(scope)
        expr = f"{failed} / {every} {th.op} {_num(th.value)}"
        what = "4xx or 5xx" if status == "[45].." else status.replace("..", "xx")
        note = "; ".join(n for n in (note, f"an error is a {what} answer") if n)
        label = route or self.v.main_route
        bad, good = self._code(status), "200"
        spec = RuleSpec(
            f"{_route_name(route) if route else ''}ErrorRateHigh",
            self.window_s,
            (
                FiringCase(
                    f"every answer {bad}",
                    (self._req(label, bad, 10), self._req(label, good, 0)),
                ),
            ),
            (self._req(label, bad, 0), self._req(label, good, 10)),
        )
        return _Reading(ProbeKind.PROMQL, expr=expr, threshold=th.text, note=note, rule=spec)

    def _traffic(self, text: str) -> _Reading | None:
        th = _threshold(text)
        if th is None or th.unit != "req/s":
            return None
        total = self._rate_sum(self.not_scrape)
        quiet_rise: float
        firing: tuple[FiringCase, ...]
        if th.op in ("==", "<", "<="):
            expr = f"({total} or vector(0)) {th.op} {_num(th.value)}"
            firing = (
                FiringCase("the API is not scraped: no series", (self._up(0),)),
                FiringCase("requests stop", (self._up(1), self._req("/health", "200", 0))),
            )
            quiet_rise = (th.value + 1) * 20
        else:
            expr = f"{total} {th.op} {_num(th.value)}"
            firing = (
                FiringCase(
                    "requests above it",
                    (self._up(1), self._req("/health", "200", (th.value + 1) * 20)),
                ),
            )
            quiet_rise = 0
        if th.op == "==" and th.value == 0:
            name = "NoTraffic"
            note = "the API answering nothing (no series at all) counts as 0 req/s"
        else:
            name, note = f"Traffic{_op_word(th)}", ""
        quiet = (self._up(1), self._req("/health", "200", quiet_rise))
        spec = RuleSpec(name, self.window_s, firing, quiet)
        return _Reading(ProbeKind.PROMQL, expr=expr, threshold=th.text, note=note, rule=spec)

    def _connections(self, text: str) -> _Reading | None:
        th = _threshold(text)
        if th is None or th.unit or not _CONNECTIONS.search(text):
            return None
        db = ("job", "=", self.v.db_job)
        labels = {"job": self.v.db_job, "instance": "postgres-exporter:9187"}
        none = (th.value == 0 and th.op in ("==", "<=")) or (th.value == 1 and th.op == "<")
        if none:
            up = _selector(self.v.db_up, db)
            expr = f"{up} == 0"
            note = (
                f"the database's own count, from the postgres exporter: {self.v.db_up} is 0 "
                f"while it cannot connect (the API's {self.v.pool_connections} counts "
                "connections being opened, so with the database down it stays at 1)"
            )
            spec = RuleSpec(
                "DatabaseConnectionsZero",
                self.window_s,
                (
                    FiringCase(
                        "the exporter cannot reach the database",
                        (Series(_selector(self.v.db_up, *_eq(labels)), 0, 0),),
                        labels,
                    ),
                ),
                (Series(_selector(self.v.db_up, *_eq(labels)), 1, 0),),
            )
            return _Reading(ProbeKind.PROMQL, expr=expr, threshold=th.text, note=note, rule=spec)
        count = _selector(self.v.db_connections, db)
        expr = f"sum({count}) {th.op} {_num(th.value)}"
        gauge = _selector(self.v.db_connections, *_eq(labels), ("state", "=", "active"))
        high = th.value * 2 + 1
        low = 0.0 if th.op in (">", ">=") else high
        fire = high if th.op in (">", ">=") else 0.0
        if th.op == "==":
            fire, low = th.value, th.value + 1
        spec = RuleSpec(
            f"DatabaseConnections{_op_word(th)}",
            self.window_s,
            (FiringCase(f"{_num(fire)} connections", (Series(gauge, fire, 0),)),),
            (Series(gauge, low, 0),),
        )
        return _Reading(
            ProbeKind.PROMQL,
            expr=expr,
            threshold=th.text,
            note="the database's own count, from the postgres exporter",
            rule=spec,
        )

    def _status_code(self, text: str) -> _Reading | None:
        status = _status(text)
        timeout = bool(_TIMEOUT.search(text))
        if status is None and not timeout:
            return None
        route, note = self._route(text)
        status = status or "5.."
        code = self._code(status)
        if _ALL.search(text) and route is None:
            return self._all_requests(status, text)
        method = _METHOD.search(text)
        scope = [self.job, self._routes(route), ("status", "=~", status)]
        if method:
            scope.insert(2, ("method", "=", method.group(1)))
        rate = f"sum by (instance) (rate({_selector(self.v.requests_total, *scope)}[{self.w}]))"
        expr = f"{rate} > 0"
        label = route or self.v.main_route
        firing = [
            FiringCase(
                f"{label} answers {code}",
                (self._up(1), self._req(label, code, 10, method and method.group(1))),
                {"instance": self.instance["instance"]},
            )
        ]
        if timeout:
            expr = f"({_selector('up', self.job)} == 0) or ({expr})"
            firing.insert(0, FiringCase("the API answers no scrape", (self._up(0),), self.instance))
            note = "; ".join(
                n for n in (note, "a timeout: the API answers no scrape (up == 0)") if n
            )
        quiet = (
            self._up(1),
            self._req(label, code, 0, method and method.group(1)),
            self._req(label, "200", 10, method and method.group(1)),
        )
        written = status.replace("..", "xx")
        if status == "5.." and "500" in text:
            note = "; ".join(n for n in (note, "500 read as any 5xx (the twin answers 503)") if n)
        name = f"{_route_name(route) if route else 'Requests'}Failing"
        spec = RuleSpec(name, self.window_s, tuple(firing), quiet)
        reading = _Reading(
            ProbeKind.PROMQL,
            expr=expr,
            threshold=f"{written}{' or a timeout' if timeout else ''}",
            note=note,
            rule=spec,
        )
        if route is not None and route in self.v.anonymous_get and not method:
            observed = f"{status[0]}xx-or-timeout" if timeout else f"{status[0]}xx"
            if observed in OBSERVED_WHEN:
                http = HttpProbe("GET", route, observed)
                return _Reading(
                    ProbeKind.HTTP,
                    expr=expr,
                    http=http,
                    threshold=reading.threshold,
                    note=note,
                    rule=spec,
                )
        return reading

    def _all_requests(self, status: str, text: str) -> _Reading:
        failed = self._rate_sum(self.not_scrape, ("status", "=~", status))
        every = self._rate_sum(self.not_scrape)
        expr = f"{failed} / {every} >= 0.9"
        code = self._code(status)
        note = "all read as at least 90% of the answers over the window"
        if status == "5.." and "500" in text:
            note += "; 500 read as any 5xx (the twin answers 503 for a dependency failure)"
        spec = RuleSpec(
            "AllRequestsFailing",
            self.window_s,
            (
                FiringCase(
                    f"every answer {code}",
                    (self._req("/api/status", code, 10), self._req("/api/status", "200", 0)),
                ),
            ),
            (self._req("/api/status", code, 0), self._req("/api/status", "200", 10)),
        )
        shown = status.replace("..", "xx")
        return _Reading(ProbeKind.PROMQL, expr=expr, threshold=f"all {shown}", note=note, rule=spec)

    def _down(self, text: str) -> _Reading | None:
        if not _DOWN.search(text):
            return None
        spec = RuleSpec(
            "ApiDown",
            self.window_s,
            (FiringCase("the API answers no scrape", (self._up(0),), self.instance),),
            (self._up(1),),
        )
        expr = f"{_selector('up', self.job)} == 0"
        return _Reading(ProbeKind.PROMQL, expr=expr, threshold="down", rule=spec)

    def _errors(self, text: str) -> _Reading | None:
        if not _ERRORS.search(text):
            return None
        rate = self._rate_sum(self.not_scrape, ("status", "=~", self.v.server_errors))
        return _Reading(
            ProbeKind.PROMQL,
            expr=f"{rate} > 0",
            note=f"no number written: any 5xx answer over the window ({self.w})",
        )

    # -- building blocks --------------------------------------------------------------

    def _rate_sum(self, *matchers: tuple[str, str, str]) -> str:
        return f"sum(rate({_selector(self.v.requests_total, self.job, *matchers)}[{self.w}]))"

    def _labels(self, **extra: str) -> tuple[tuple[str, str, str], ...]:
        return (*_eq(self.instance), *_eq(extra))

    def _req(self, route: str, status: str, step: float, method: str | None = None) -> Series:
        labels = self._labels(route=route, method=method or "GET", status=status)
        return Series(_selector(self.v.requests_total, *labels), 0, step)

    def _up(self, value: float) -> Series:
        return Series(_selector("up", *_eq(self.instance)), value, 0)

    @staticmethod
    def _code(status: str) -> str:
        """A concrete status for a test series matching the regex ("5.." -> "503")."""
        if status == "[45]..":
            return "413"
        return status.replace("..", "03") if status.endswith("..") else status


def _literal(text: str) -> str:
    """A regex matching `text` as written (spaces left readable)."""
    return re.escape(text).replace("\\ ", " ")


def _eq(labels: Mapping[str, str]) -> tuple[tuple[str, str, str], ...]:
    return tuple((k, "=", v) for k, v in labels.items())
