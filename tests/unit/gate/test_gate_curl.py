"""curl lines against an OpenAPI document: routes, methods, path parameters, auth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from gate_samples import SEVERITIES

from runbook_checks.findings import Finding, Level
from runbook_checks.gate import curl_check
from runbook_checks.gate.locate import runbook_steps
from runbook_checks.gate.openapi import ApiRoutes
from runbook_checks.runbook import Runbook
from runbook_checks.runbook.source import read_source
from tests.profiles import FILES

MakeRunbook = Callable[..., Runbook]

USER: list[dict[str, list[str]]] = [{"UserToken": []}]
DOC: dict[str, Any] = {
    "paths": {
        "/health": {"get": {}},
        "/api/storage/files": {"get": {"security": USER}},
        "/api/storage/files/upload": {"post": {"security": USER}},
        "/api/storage/files/{file_id}": {
            "get": {
                "security": USER,
                "parameters": [{"name": "file_id", "in": "path", "schema": {"format": "uuid"}}],
            }
        },
        "/share/{token}": {"get": {"parameters": [{"name": "token", "in": "path"}]}},
        "/admin/cache/warm": {"post": {"security": [{"AdminToken": []}]}},
        "/public/optional": {"get": {"security": [{}, {"UserToken": []}]}},
    },
    "components": {
        "securitySchemes": {
            "UserToken": {"type": "http", "scheme": "bearer", "description": "user token"},
            "AdminToken": {"type": "http", "scheme": "bearer", "description": "ADMIN_TOKEN"},
        }
    },
}
ROUTES = ApiRoutes.from_document(DOC, "test document")


def check(make_runbook: MakeRunbook, *commands: str) -> tuple[list[Finding], Runbook]:
    block = "```bash\n" + "\n".join(commands) + "\n```\n"
    scenario = (
        "## SEV-1: Files Down\n\n### Symptoms\n- errors\n\n### Investigation\n\n"
        f"{block}\n### Mitigation\n\n**Option A: Warm**\n```bash\nsleep 1\n```\n"
    )
    runbook = make_runbook(SEVERITIES, scenario)
    hosts = FILES.hosts_to("api", "api-instance")
    return curl_check.check_curl(runbook_steps(runbook), ROUTES, hosts), runbook


def line_text(runbook: Runbook, finding: Finding) -> str:
    return read_source(runbook.path).lines[finding.line - 1]


@pytest.mark.parametrize(
    "command",
    [
        "curl https://api.rolerabbit.com/health",
        "curl http://localhost:5000/health",
        'curl -H "Authorization: Bearer TOKEN" https://api.rolerabbit.com/api/storage/files',
        "curl https://rolerabbit.com/share/abc123xyz",
        'curl -H "Authorization: Bearer TOKEN" https://api.rolerabbit.com/api/storage/files/FILE_ID',
        "curl https://api.rolerabbit.com/public/optional",
        "watch -n 5 'curl https://api.rolerabbit.com/health'",
    ],
)
def test_lines_the_api_answers(make_runbook: MakeRunbook, command: str) -> None:
    assert check(make_runbook, command)[0] == []


def test_an_unknown_route_names_its_line_and_the_closest_route(make_runbook: MakeRunbook) -> None:
    (finding,), runbook = check(
        make_runbook,
        "curl -X POST https://api.rolerabbit.com/api/storage/files/upload \\",
        '  -H "Authorization: Bearer TOKEN" -F "file=@x.txt"',
        "curl https://api.rolerabbit.com/healthz",
    )
    assert finding.kind == curl_check.UNKNOWN_ROUTE
    assert finding.level is Level.ERROR
    assert line_text(runbook, finding) == "curl https://api.rolerabbit.com/healthz"
    assert "GET /health" in finding.suggestion


def test_a_wrong_method(make_runbook: MakeRunbook) -> None:
    (finding,), _ = check(make_runbook, "curl -X DELETE https://api.rolerabbit.com/health")
    assert finding.kind == curl_check.WRONG_METHOD
    assert "GET only" in finding.message


def test_missing_auth_suggests_the_token_the_scheme_names(make_runbook: MakeRunbook) -> None:
    found, _ = check(
        make_runbook,
        "curl -X POST https://api.rolerabbit.com/admin/cache/warm",
        "curl https://api.rolerabbit.com/api/storage/files",
    )
    admin, user = found
    assert admin.kind == user.kind == curl_check.MISSING_AUTH
    assert "AdminToken" in admin.message
    assert "401" in admin.message
    assert admin.suggestion == (
        '`curl -H "Authorization: Bearer $ADMIN_TOKEN" -X POST '
        "https://api.rolerabbit.com/admin/cache/warm`"
    )
    assert 'Bearer TOKEN"' in user.suggestion


def test_a_path_parameter_of_the_wrong_shape(make_runbook: MakeRunbook) -> None:
    (finding,), _ = check(
        make_runbook,
        'curl -H "Authorization: Bearer TOKEN" https://api.rolerabbit.com/api/storage/files/123',
    )
    assert finding.kind == curl_check.BAD_PARAMETER


def test_other_hosts_are_not_checked_but_said_so(make_runbook: MakeRunbook) -> None:
    (finding,), _ = check(make_runbook, "curl https://status.supabase.com/api/v2/status.json")
    assert (finding.kind, finding.level) == (curl_check.EXTERNAL, Level.INFO)


def test_the_twins_own_document_offline() -> None:
    from files_profile import KIT
    from runbook_checks.gate.openapi import offline_document

    routes = offline_document(KIT)
    stats = routes.matching("/admin/storage/stats")
    assert [(r.method, r.needs_auth) for r in stats] == [("GET", True)]
    assert routes.token_hint(stats[0]) == "$ADMIN_TOKEN"
    (share,) = routes.matching("/share/abc123xyz")
    assert not share.needs_auth
    assert {r.method for r in routes.matching("/health")} == {"GET"}
