"""The twin's HTTP surface, from its OpenAPI document: routes, methods, path parameters
and which routes need a bearer token.

`from_stack` reads GET /openapi.json from the running API; `offline_document` asks the
service's kit for the same document, built without starting anything.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runbook_checks.errors import StackError
from runbook_checks.service import ServiceKit
from runbook_checks.tls import tls_context

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_PARAM = re.compile(r"\{([^{}/]+)\}")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Route:
    method: str  # upper case
    template: str  # "/share/{token}"
    security: tuple[str, ...] = ()  # scheme names that grant access; () when public
    param_formats: Mapping[str, str] = field(default_factory=dict)  # "file_id" -> "uuid"

    @property
    def pattern(self) -> re.Pattern[str]:
        return _template_pattern(self.template)

    @property
    def literal_segments(self) -> int:
        return sum(1 for part in self.template.split("/") if part and "{" not in part)

    def parameters(self, path: str) -> dict[str, str]:
        match = self.pattern.match(path)
        if match is None:
            return {}
        names = _PARAM.findall(self.template)
        return {name: match.group(_group(name)) for name in names}

    @property
    def needs_auth(self) -> bool:
        return bool(self.security)


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


@functools.lru_cache(maxsize=512)
def _template_pattern(template: str) -> re.Pattern[str]:
    """ "/share/{token}" -> ^/share/(?P<p_token>[^/]+)/?$"""
    regex, position = "", 0
    for match in _PARAM.finditer(template):
        regex += re.escape(template[position : match.start()])
        regex += f"(?P<{_group(match.group(1))}>[^/]+)"
        position = match.end()
    regex += re.escape(template[position:])
    return re.compile(f"^{regex}/?$")


@dataclass(frozen=True)
class ApiRoutes:
    routes: tuple[Route, ...]
    schemes: Mapping[str, Mapping[str, Any]]
    source: str  # where the document came from

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], source: str) -> ApiRoutes:
        default_security = doc.get("security") or []
        routes: list[Route] = []
        for template, item in (doc.get("paths") or {}).items():
            for method, op in item.items():
                if method not in HTTP_METHODS or not isinstance(op, Mapping):
                    continue
                requirements = op.get("security", default_security) or []
                optional = any(not r for r in requirements)  # {} means "or anonymous"
                names = () if optional else tuple(n for r in requirements for n in r)
                formats = {
                    str(p.get("name")): str((p.get("schema") or {}).get("format", ""))
                    for p in [*(item.get("parameters") or []), *(op.get("parameters") or [])]
                    if isinstance(p, Mapping) and p.get("in") == "path"
                }
                routes.append(Route(method.upper(), template, names, formats))
        schemes = (doc.get("components") or {}).get("securitySchemes") or {}
        return cls(tuple(routes), schemes, source)

    def matching(self, path: str) -> list[Route]:
        """Routes whose template matches `path`, the most specific first."""
        found = [r for r in self.routes if r.pattern.match(path)]
        return sorted(found, key=lambda r: -r.literal_segments)

    def token_hint(self, route: Route) -> str:
        """What to send for `route`'s scheme: `$ADMIN_TOKEN` or `TOKEN`."""
        for name in route.security:
            description = str(self.schemes.get(name, {}).get("description", ""))
            if re.fullmatch(r"[A-Z][A-Z0-9_]*", description):
                return f"${description}"
        return "TOKEN"


def looks_like_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def from_stack(api_url: str, *, timeout_s: float = 5.0) -> ApiRoutes:
    import httpx

    url = f"{api_url.rstrip('/')}/openapi.json"
    try:
        response = httpx.get(url, timeout=timeout_s, verify=tls_context())
        response.raise_for_status()
        doc = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise StackError(
            f"could not read the API's OpenAPI document at {url}: {exc}",
            hint="is the API healthy? `runbook-checks up` shows its URL",
        ) from exc
    return ApiRoutes.from_document(doc, url)


def offline_document(kit: ServiceKit) -> ApiRoutes:
    """The service's document, built in-process by its kit (no server, no database)."""
    return ApiRoutes.from_document(kit.openapi(), f"{kit.name}: its kit's offline document")
