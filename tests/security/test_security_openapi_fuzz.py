"""Fuzz the Files API from its own OpenAPI document (schemathesis): every operation, with
valid and deliberately invalid inputs (positive and negative generation), without a
token, with a garbage one, a user's and the admin's. Bounded and deterministic.

What must hold: no 5xx, whatever the input; every 4xx says what was wrong in a `detail`
(a sentence, or FastAPI's list of {loc, msg} for a malformed request).
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from files_profile import FilesClient
from runbook_checks.stack.base import Stack

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 25  # per operation and generation mode


@dataclass
class Tally:
    requests: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)
    unsendable: int = 0
    nothing_to_generate: list[str] = field(default_factory=list)


class _HasJson(Protocol):
    def json(self) -> Any: ...


def clear_detail(response: _HasJson) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return bool(detail.strip())
    if isinstance(detail, list) and detail:
        return all(isinstance(d, dict) and d.get("msg") and "loc" in d for d in detail)
    return False


def fuzz_operation(
    operation: schemathesis.APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    api: str,
    auths: dict[str, str | None],
    session: requests.Session,
    tally: Tally,
) -> None:
    """EXAMPLES_PER_OPERATION generated requests to one operation, checked as they come."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode), auth=st.sampled_from(sorted(auths)))
    def fuzz(case: schemathesis.Case[Any], auth: str) -> None:
        headers = dict(case.headers or {})
        token = auths[auth]
        if token is not None:
            headers["Authorization"] = token
        try:
            response = case.call(base_url=api, session=session, headers=headers, timeout=30)
        except (requests.RequestException, ValueError, UnicodeError):
            tally.unsendable += 1  # the client library refused to send it
            return
        tally.requests += 1
        status = response.status_code
        tally.by_class[f"{status // 100}xx"] += 1
        where = f"{operation.label} ({mode.value}, {auth} token) -> {status}"
        if status >= 500:
            tally.server_errors.append(f"{where}: {response.text[:200]}")
        elif 400 <= status < 500 and not clear_detail(response):
            tally.unclear.append(f"{where}: {response.text[:200]}")

    try:
        fuzz()
    except Unsatisfiable:  # e.g. no invalid input exists for an operation without inputs
        tally.nothing_to_generate.append(f"{operation.label} ({mode.value})")


def test_no_input_makes_the_api_fail_or_answer_unclearly(
    fresh_stack: Stack, record_property: Callable[[str, object], None]
) -> None:
    api = fresh_stack.endpoints.api_url
    schema = schemathesis.openapi.from_url(f"{api}/openapi.json")
    with FilesClient(api, fresh_stack.endpoints.admin_token) as client:
        user = client.create_user(f"fuzz-{secrets.token_hex(3)}@drill.test", "pro")
    auths: dict[str, str | None] = {
        "none": None,
        "garbage": "Bearer " + secrets.token_urlsafe(8),
        "user": f"Bearer {user.token}",
        "admin": f"Bearer {fresh_stack.endpoints.admin_token}",
    }
    tally = Tally()
    session = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15, [op.label for op in operations]

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(operation, mode, api, auths, session, tally)

    # the fuzzing may have switched uploads off through the admin route: put it back
    httpx.put(
        f"{api}/admin/uploads",
        json={"disabled": False, "banner": ""},
        headers={"Authorization": str(auths["admin"])},
    ).raise_for_status()
    classes = ", ".join(f"{k} {v}" for k, v in sorted(tally.by_class.items()))
    record_property(
        "figure",
        f"OpenAPI fuzz: {tally.requests} requests fuzzed over {len(operations)} operations "
        f"({classes}), {len(tally.server_errors)} 5xx seen, {len(tally.unclear)} 4xx without "
        f"a clear detail",
    )
    assert tally.server_errors == []
    assert tally.unclear == []
    assert tally.requests > len(operations) * EXAMPLES_PER_OPERATION


UPLOAD = "/api/storage/files/upload"
MALFORMED: list[tuple[str, str, dict[str, str], bytes]] = [
    ("POST", UPLOAD, {"Content-Type": "multipart/form-data"}, b"--x\r\n"),  # no boundary
    ("POST", UPLOAD, {"Content-Type": "multipart/form-data; boundary=x"}, b"garbage"),
    (
        "POST",
        UPLOAD,
        {"Content-Type": "multipart/form-data; boundary=x"},
        b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
    ),  # never ends
    (
        "POST",
        UPLOAD,
        {"Content-Type": "multipart/form-data; boundary=x"},
        b'--x\r\nContent-Disposition: form-data; name="other"\r\n\r\nabc\r\n--x--\r\n',
    ),
    ("POST", UPLOAD, {"Content-Type": "application/json"}, b'{"file": "x"}'),
    ("POST", UPLOAD, {"Content-Type": "text/plain"}, b"x" * 10),
    (
        "POST",
        "/api/storage/files/{file}/shares",
        {"Content-Type": "application/json"},
        b"{not json",
    ),
    (
        "POST",
        "/api/storage/files/{file}/shares",
        {"Content-Type": "application/json"},
        b'{"expires_in_s": 1e400, "max_downloads": -1}',
    ),
    (
        "POST",
        "/api/storage/files/{file}/shares",
        {"Content-Type": "application/json"},
        b'{"expires_in_s": 99999999999999999999999}',
    ),
    (
        "POST",
        "/api/storage/files/{file}/shares",
        {"Content-Type": "application/json"},
        b'{"permission": "admin"}',
    ),
    ("GET", "/api/storage/files/not-a-uuid", {}, b""),
    ("GET", "/api/storage/files/00000000-0000-0000-0000-000000000000/download", {}, b""),
    ("GET", "/api/storage/files/%00/download", {}, b""),
    ("GET", "/share/" + "a" * 5000, {}, b""),
    ("GET", "/share/%2e%2e%2f%2e%2e%2fetc%2fpasswd/download", {}, b""),
    ("GET", "/share/\u00e9\u00e9", {}, b""),
    ("POST", "/admin/users", {"Content-Type": "application/json"}, b'{"email": "a@b", "x": 1}'),
    (
        "POST",
        "/admin/users",
        {"Content-Type": "application/json"},
        b'{"email": "' + b"a" * 400 + b'@b.c"}',
    ),
    ("POST", "/admin/users", {"Content-Type": "application/json"}, b"[]"),
    ("PUT", "/admin/uploads", {"Content-Type": "application/json"}, b'{"disabled": "maybe"}'),
    ("GET", "/api/storage/files", {"Authorization": "Bearer " + "x" * 10000}, b""),
    ("GET", "/api/storage/files", {"Authorization": "Basic dXNlcjpwYXNz"}, b""),
    ("GET", "/api/storage/files", {"Authorization": "Bearer"}, b""),
]


@pytest.mark.parametrize(("method", "path", "headers", "body"), MALFORMED)
def test_hand_made_malformed_requests_get_a_clear_4xx(
    fresh_stack: Stack, method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    api = fresh_stack.endpoints.api_url
    with FilesClient(api, fresh_stack.endpoints.admin_token) as client:
        user = client.create_user(f"malformed-{secrets.token_hex(3)}@drill.test", "pro")
        upload = client.upload(user, "a.txt", b"hello", "text/plain")
    auth = {"Authorization": f"Bearer {user.token}"}
    if path.startswith("/admin"):
        auth = {"Authorization": f"Bearer {fresh_stack.endpoints.admin_token}"}
    url = api + path.replace("{file}", str(upload.file_id))
    response = httpx.request(method, url, headers={**auth, **headers}, content=body, timeout=40)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert clear_detail(response), response.text[:300]
