"""A status page stand-in: the incident API of a hosted status page, on 127.0.0.1.

Shaped like Atlassian Statuspage's REST API v1, the part an incident responder uses:

- ``POST /v1/pages/{page_id}/incidents`` with ``{"incident": {"name", "status", "body",
  "impact_override", "component_ids"}}`` opens an incident (201);
- ``PATCH /v1/pages/{page_id}/incidents/{incident_id}`` posts an update to it (200);
- ``GET /v1/pages/{page_id}/incidents`` (newest first) and ``.../incidents/{id}``.

Every request needs ``Authorization: OAuth <api key>`` (401 without it, or with another
key); an unknown page or incident is 404. Input is validated as the hosted service does:
a body that is not a JSON object holding an ``incident`` object is 400; a blank name, a
status outside investigating|identified|monitoring|resolved, an impact outside
none|minor|major|critical or component ids that are not strings are 422. Error bodies
are ``{"error": "..."}``. Each update is kept with the time it was received (the injected
clock), so drills and game days can say what customers read and when.

The server is stdlib `http.server` on a daemon thread (port 0: the OS picks a free
port), so nothing leaves the machine; `StatusPageClient` speaks to it with httpx.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar

import httpx

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.errors import RunbookChecksError
from runbook_checks.tls import tls_context

STATUSES = ("investigating", "identified", "monitoring", "resolved")
IMPACTS = ("none", "minor", "major", "critical")


@dataclass(frozen=True)
class PostedUpdate:
    """One incident update as the status page received it."""

    incident_id: str
    status: str
    name: str  # the incident's name when the update was posted
    body: str
    impact: str
    posted_wall: float
    posted_mono: float


class StatusPageError(RunbookChecksError):
    """The status page refused a request (4xx) or did not answer."""

    def __init__(self, message: str, *, status: int = 0, hint: str | None = None) -> None:
        self.status = status
        super().__init__(message, hint=hint)


class _Invalid(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass
class _Incident:
    id: str
    name: str
    status: str
    impact: str
    component_ids: list[str]
    created_wall: float
    updates: list[tuple[str, PostedUpdate]] = field(default_factory=list)  # (update id, ...)


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")


def _new_id() -> str:
    return secrets.token_hex(6)  # Statuspage ids are 12 lowercase alphanumerics


class StatusPageServer:
    """The incident API on 127.0.0.1:0 in a thread; a context manager."""

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        page_id: str | None = None,
        api_key: str | None = None,
    ) -> None:
        self.clock = clock
        self.page_id = page_id or _new_id()
        self.api_key = api_key or secrets.token_hex(16)
        self._lock = threading.Lock()
        self._incidents: dict[str, _Incident] = {}
        self._updates: list[PostedUpdate] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> StatusPageServer:
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {"page": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how soon `stop` is noticed
            name="status-page",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> StatusPageServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the status page is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def client(self, clock: Clock | None = None) -> StatusPageClient:
        return StatusPageClient(self.url, self.page_id, self.api_key, clock=clock or self.clock)

    # -- what was posted ------------------------------------------------------------------
    def updates(self) -> list[PostedUpdate]:
        """Every update received, in the order received."""
        with self._lock:
            return list(self._updates)

    def clear(self) -> None:
        with self._lock:
            self._incidents.clear()
            self._updates.clear()

    # -- the API (called by the handler, under no lock) ------------------------------------
    def _create(self, fields: dict[str, Any]) -> dict[str, Any]:
        name = _name(fields, required=True)
        status = _choice(fields, "status", STATUSES) or "investigating"
        impact = _choice(fields, "impact_override", IMPACTS) or "none"
        components = _components(fields)
        body = _body(fields)
        with self._lock:
            incident = _Incident(_new_id(), name, status, impact, components, self.clock.wall())
            self._incidents[incident.id] = incident
            self._record(incident, body)
            return self._json(incident)

    def _update(self, incident_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        name = _name(fields, required=False)
        status = _choice(fields, "status", STATUSES)
        impact = _choice(fields, "impact_override", IMPACTS)
        components = _components(fields) if "component_ids" in fields else None
        body = _body(fields)
        with self._lock:
            incident = self._incidents.get(incident_id)
            if incident is None:
                raise _Invalid(HTTPStatus.NOT_FOUND, f"no incident {incident_id!r} on this page")
            incident.name = name or incident.name
            incident.status = status or incident.status
            incident.impact = impact or incident.impact
            if components is not None:
                incident.component_ids = components
            if body or status:  # an update entry, as the hosted service adds one
                self._record(incident, body)
            return self._json(incident)

    def _list(self) -> list[dict[str, Any]]:
        with self._lock:
            incidents = sorted(self._incidents.values(), key=lambda i: -i.created_wall)
            return [self._json(i) for i in incidents]

    def _get(self, incident_id: str) -> dict[str, Any]:
        with self._lock:
            incident = self._incidents.get(incident_id)
            if incident is None:
                raise _Invalid(HTTPStatus.NOT_FOUND, f"no incident {incident_id!r} on this page")
            return self._json(incident)

    def _record(self, incident: _Incident, body: str) -> None:
        update = PostedUpdate(
            incident_id=incident.id,
            status=incident.status,
            name=incident.name,
            body=body,
            impact=incident.impact,
            posted_wall=self.clock.wall(),
            posted_mono=self.clock.monotonic(),
        )
        incident.updates.append((_new_id(), update))
        self._updates.append(update)

    def _json(self, incident: _Incident) -> dict[str, Any]:
        last = incident.updates[-1][1].posted_wall if incident.updates else incident.created_wall
        resolved = next(
            (u.posted_wall for _, u in incident.updates if u.status == "resolved"), None
        )
        return {
            "id": incident.id,
            "page_id": self.page_id,
            "name": incident.name,
            "status": incident.status,
            "impact": incident.impact,
            "impact_override": incident.impact,
            "created_at": _iso(incident.created_wall),
            "updated_at": _iso(last),
            "resolved_at": None if resolved is None else _iso(resolved),
            "components": [{"id": c} for c in incident.component_ids],
            "incident_updates": [
                {
                    "id": update_id,
                    "incident_id": incident.id,
                    "status": u.status,
                    "body": u.body,
                    "created_at": _iso(u.posted_wall),
                    "display_at": _iso(u.posted_wall),
                }
                for update_id, u in reversed(incident.updates)  # newest first
            ],
        }


def _name(fields: dict[str, Any], *, required: bool) -> str:
    if "name" not in fields and not required:
        return ""
    name = fields.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _Invalid(HTTPStatus.UNPROCESSABLE_ENTITY, "Name can't be blank")
    return name


def _choice(fields: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    if key not in fields:
        return ""
    value = fields[key]
    if value not in allowed:
        raise _Invalid(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            f"{key.replace('_', ' ').capitalize()} {value!r} is not included in the list "
            f"({', '.join(allowed)})",
        )
    return str(value)


def _components(fields: dict[str, Any]) -> list[str]:
    value = fields.get("component_ids", [])
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise _Invalid(HTTPStatus.UNPROCESSABLE_ENTITY, "Component ids must be a list of ids")
    return list(value)


def _body(fields: dict[str, Any]) -> str:
    body = fields.get("body", "")
    if not isinstance(body, str):
        raise _Invalid(HTTPStatus.UNPROCESSABLE_ENTITY, "Body must be text")
    return body


class _Handler(BaseHTTPRequestHandler):
    page: ClassVar[StatusPageServer]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no stderr noise
        return

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        try:
            status, answer = self._route(method)
        except _Invalid as exc:
            status, answer = exc.status, {"error": str(exc)}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> tuple[HTTPStatus, object]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""  # read it even when refusing
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) < 4 or parts[:2] != ["v1", "pages"] or parts[3] != "incidents":
            raise _Invalid(HTTPStatus.NOT_FOUND, f"no route {self.path}")
        if self.headers.get("Authorization", "") != f"OAuth {self.page.api_key}":
            raise _Invalid(HTTPStatus.UNAUTHORIZED, "Could not authenticate")
        if parts[2] != self.page.page_id:
            raise _Invalid(HTTPStatus.NOT_FOUND, f"no page {parts[2]!r}")
        incident_id = parts[4] if len(parts) == 5 else None
        if len(parts) > 5:
            raise _Invalid(HTTPStatus.NOT_FOUND, f"no route {self.path}")
        if method == "GET":
            if incident_id is None:
                return HTTPStatus.OK, self.page._list()
            return HTTPStatus.OK, self.page._get(incident_id)
        if method == "POST" and incident_id is None:
            return HTTPStatus.CREATED, self.page._create(_incident_fields(raw))
        if method == "PATCH" and incident_id is not None:
            return HTTPStatus.OK, self.page._update(incident_id, _incident_fields(raw))
        raise _Invalid(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed on {self.path}")


def _incident_fields(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Invalid(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {exc}") from None
    incident = data.get("incident") if isinstance(data, dict) else None
    if not isinstance(incident, dict):
        raise _Invalid(HTTPStatus.BAD_REQUEST, "param is missing or the value is empty: incident")
    return incident


class StatusPageClient:
    """Posts a responder's updates: the first `post` opens the incident, later ones
    PATCH it. A refusal (4xx) raises `StatusPageError` with the page's own words."""

    def __init__(
        self,
        url: str,
        page_id: str,
        api_key: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        timeout_s: float = 5.0,
    ) -> None:
        self.page_id = page_id
        self.clock = clock
        self.incident_id: str | None = None
        self._http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"OAuth {api_key}"},
            timeout=timeout_s,
            trust_env=False,  # never through a proxy: the page is on this machine
            verify=tls_context(),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StatusPageClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def post(self, stage: str, name: str, body: str, impact: str) -> PostedUpdate:
        """Post one update; `impact` "" leaves the page's impact as it is (not overridden)."""
        fields = {"name": name, "status": stage, "body": body}
        if impact:
            fields["impact_override"] = impact
        base = f"/v1/pages/{self.page_id}/incidents"
        try:
            if self.incident_id is None:
                answer = self._http.post(base, json={"incident": fields})
            else:
                answer = self._http.patch(f"{base}/{self.incident_id}", json={"incident": fields})
        except httpx.HTTPError as exc:
            raise StatusPageError(
                f"the status page did not take the {stage} update: {exc}",
                hint="is the status page running?",
            ) from exc
        if answer.is_error:
            raise StatusPageError(
                f"the status page refused the {stage} update: HTTP {answer.status_code} "
                f"{_error_text(answer)}",
                status=answer.status_code,
            )
        incident = answer.json()
        self.incident_id = str(incident["id"])
        return PostedUpdate(
            incident_id=self.incident_id,
            status=str(incident["status"]),
            name=str(incident["name"]),
            body=body,
            impact=str(incident["impact"]),
            posted_wall=self.clock.wall(),
            posted_mono=self.clock.monotonic(),
        )

    def incidents(self) -> list[dict[str, object]]:
        answer = self._http.get(f"/v1/pages/{self.page_id}/incidents")
        answer.raise_for_status()
        data: list[dict[str, object]] = answer.json()
        return data


def _error_text(answer: httpx.Response) -> str:
    try:
        data = answer.json()
    except ValueError:
        return answer.text[:300]
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return str(data)[:300]


__all__ = [
    "IMPACTS",
    "STATUSES",
    "PostedUpdate",
    "StatusPageClient",
    "StatusPageError",
    "StatusPageServer",
]
