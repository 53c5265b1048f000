"""curl lines against the twin's OpenAPI document: the route exists, the method is one
it answers, path parameters have the right shape, and a route that needs a bearer token
is sent one (else the twin answers 401).

The runbook's hosts are mapped to the API by its profile, the way the executors map them
(the hosts the profile maps to "api" and "api-instance"); a URL on any other host is
not the API and is reported as not checked.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from runbook_checks.errors import UsageError
from runbook_checks.findings import Finding, Level
from runbook_checks.gate.locate import Located
from runbook_checks.gate.openapi import ApiRoutes, looks_like_uuid
from runbook_checks.runbook.model import Step, StepKind
from runbook_checks.steps.binding import Bindings, bind
from runbook_checks.steps.curl import CurlRequest, parse_curl

UNKNOWN_ROUTE = "curl-unknown-route"
WRONG_METHOD = "curl-wrong-method"
MISSING_AUTH = "curl-missing-auth"
BAD_PARAMETER = "curl-invalid-path-parameter"
UNPARSEABLE = "curl-unparseable"
UNKNOWN_OPTION = "curl-unknown-option"
EXTERNAL = "curl-external-host"
KINDS = (
    UNKNOWN_ROUTE,
    WRONG_METHOD,
    MISSING_AUTH,
    BAD_PARAMETER,
    UNPARSEABLE,
    UNKNOWN_OPTION,
    EXTERNAL,
)


@dataclass(frozen=True)
class CurlLine:
    located: Located
    text: str  # the curl command (the inner one of `watch '...'`)


def curl_lines(steps: Sequence[Located]) -> Iterator[CurlLine]:
    """HTTP steps, and curl commands run by a shell step (`watch -n 5 'curl ...'`)."""
    from runbook_checks.steps.shell import Delegate, plan_shell

    for item in steps:
        if item.step.kind is StepKind.HTTP:
            yield CurlLine(item, item.step.text)
        elif item.step.kind is StepKind.SHELL:
            try:
                planned = plan_shell(item.step, Bindings())
            except Exception:
                continue
            plan = planned.plan
            if isinstance(plan, Delegate) and plan.step.kind is StepKind.HTTP:
                yield CurlLine(item, plan.step.raw or plan.step.text)


def _line_of(step: Step, needle: str) -> int:
    raw = step.raw or step.text
    at = raw.find(needle) if needle else -1
    return step.line + (raw.count("\n", 0, at) if at >= 0 else 0)


def _with_auth(command: str, token: str) -> str:
    head, _, rest = command.partition("curl")
    return f'{head}curl -H "Authorization: Bearer {token}"{rest}'


def check_curl(
    steps: Sequence[Located], routes: ApiRoutes, api_hosts: Collection[str]
) -> list[Finding]:
    findings: list[Finding] = []
    for line in curl_lines(steps):
        findings += _check_one(line, routes, api_hosts)
    return findings


def _check_one(line: CurlLine, routes: ApiRoutes, api_hosts: Collection[str]) -> list[Finding]:
    item, step = line.located, line.located.step

    def finding(
        level: Level, kind: str, message: str, suggestion: str = "", at: str = ""
    ) -> Finding:
        return Finding(
            level,
            kind,
            item.section.id,
            message,
            line=_line_of(step, at),
            statement=step.text,
            suggestion=suggestion,
        )

    try:
        request = parse_curl(line.text)
    except UsageError as exc:
        return [
            finding(
                Level.ERROR,
                UNPARSEABLE,
                f"cannot read this curl line: {exc.message}",
                exc.hint or "",
            )
        ]
    found: list[Finding] = []
    if request.unknown:
        found.append(
            finding(
                Level.WARNING,
                UNKNOWN_OPTION,
                f"curl does not know option(s) {', '.join(request.unknown)}",
                "remove or correct them (see `curl --help all`)",
                request.unknown[0],
            )
        )
    parts = urlsplit(request.url if "://" in request.url else f"http://{request.url}")
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if netloc not in api_hosts and (parts.hostname or "") not in api_hosts:
        found.append(
            finding(
                Level.INFO,
                EXTERNAL,
                f"not checked: the profile maps {netloc} to no API (no route document for it)",
                at=request.url,
            )
        )
        return found
    path = parts.path or "/"
    return found + _check_route(request, line.text.replace("\\\n", " "), path, routes, finding)


def _check_route(
    request: CurlRequest, command: str, path: str, routes: ApiRoutes, finding: _Make
) -> list[Finding]:
    method = request.method.upper()
    matches = routes.matching(path)
    if not matches:
        templates = sorted({r.template for r in routes.routes})
        close = difflib.get_close_matches(path, templates, n=3, cutoff=0.6)
        suggestion = (
            f"the API has {' or '.join(f'{m} {t}' for t in close for m in _methods(routes, t))}"
            if close
            else f"routes of the API ({routes.source}): " + ", ".join(templates)
        )
        return [
            finding(
                Level.ERROR,
                UNKNOWN_ROUTE,
                f"{method} {path}: the API has no such route (it would answer 404)",
                suggestion,
                path,
            )
        ]
    with_method = [r for r in matches if r.method == method]
    if not with_method:
        allowed = sorted({r.method for r in matches})
        template = matches[0].template
        return [
            finding(
                Level.ERROR,
                WRONG_METHOD,
                f"{method} {path}: {template} answers {', '.join(allowed)} only (405)",
                f"use -X {allowed[0]}" if allowed[0] != "GET" else "drop -X / the request body",
                path,
            )
        ]
    route = with_method[0]
    found: list[Finding] = []
    for name, value in route.parameters(path).items():
        shape = route.param_formats.get(name, "")
        placeholder = bool(bind(value, Bindings()).unbound)
        if shape == "uuid" and not placeholder and not looks_like_uuid(value):
            found.append(
                finding(
                    Level.ERROR,
                    BAD_PARAMETER,
                    f"{method} {route.template}: {name}={value!r} is not a uuid (422)",
                    f"put the {name} (a uuid) in the path",
                    value,
                )
            )
    authorised = request.header("Authorization") is not None or request.user is not None
    if route.needs_auth and not authorised:
        token = routes.token_hint(route)
        schemes = " or ".join(route.security)
        found.append(
            finding(
                Level.ERROR,
                MISSING_AUTH,
                f"{method} {route.template} requires a bearer token ({schemes}) but the line "
                "sends no Authorization header: the API answers 401",
                f"`{_with_auth(' '.join(command.split()), token)}`",
                path,
            )
        )
    return found


def _methods(routes: ApiRoutes, template: str) -> list[str]:
    return sorted({r.method for r in routes.routes if r.template == template})


class _Make(Protocol):  # the `finding` closure's type
    def __call__(
        self, level: Level, kind: str, message: str, suggestion: str = "", at: str = ""
    ) -> Finding: ...
