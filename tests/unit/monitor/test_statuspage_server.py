"""The status page stand-in: Statuspage's incident API on 127.0.0.1, updates kept."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from runbook_checks.clock import FakeClock
from runbook_checks.monitor.statuspage import StatusPageClient, StatusPageError, StatusPageServer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def page(clock: FakeClock) -> Iterator[StatusPageServer]:
    with StatusPageServer(clock=clock) as server:
        yield server


def _http(page: StatusPageServer, key: str | None = None) -> httpx.Client:
    headers = {} if key is None else {"Authorization": f"OAuth {key}"}
    return httpx.Client(base_url=page.url, headers=headers, trust_env=False)


def test_it_listens_on_the_loopback_only(page: StatusPageServer) -> None:
    assert page.url.startswith("http://127.0.0.1:")


def test_requests_without_the_api_key_are_refused(page: StatusPageServer) -> None:
    incidents = f"/v1/pages/{page.page_id}/incidents"
    body = {"incident": {"name": "Files API Issues"}}
    with _http(page) as anonymous, _http(page, "not-the-key") as wrong:
        assert anonymous.post(incidents, json=body).status_code == 401
        assert wrong.post(incidents, json=body).status_code == 401
        assert anonymous.get(incidents).json() == {"error": "Could not authenticate"}
    assert page.updates() == []


def test_an_incident_opens_with_its_first_update(page: StatusPageServer, clock: FakeClock) -> None:
    clock.advance(42)
    with _http(page, page.api_key) as http:
        answer = http.post(
            f"/v1/pages/{page.page_id}/incidents",
            json={
                "incident": {
                    "name": "Files API Issues",
                    "status": "investigating",
                    "body": "We're investigating reports of errors.",
                    "impact_override": "critical",
                    "component_ids": ["api"],
                }
            },
        )
        assert answer.status_code == 201
        incident = answer.json()
        assert (incident["status"], incident["impact"]) == ("investigating", "critical")
        assert incident["components"] == [{"id": "api"}]
        [update] = incident["incident_updates"]
        assert update["body"] == "We're investigating reports of errors."
        listed = http.get(f"/v1/pages/{page.page_id}/incidents").json()
    assert [i["id"] for i in listed] == [incident["id"]]
    [kept] = page.updates()
    assert (kept.incident_id, kept.status, kept.name) == (
        incident["id"],
        "investigating",
        "Files API Issues",
    )
    assert (kept.posted_mono, kept.posted_wall) == (42.0, clock.epoch + 42)


@pytest.mark.parametrize(
    ("incident", "status", "error"),
    [
        ({"status": "investigating"}, 422, "Name can't be blank"),
        ({"name": "  "}, 422, "Name can't be blank"),
        ({"name": "x", "status": "fixed"}, 422, "Status 'fixed' is not included"),
        ({"name": "x", "impact_override": "huge"}, 422, "Impact override 'huge'"),
        ({"name": "x", "component_ids": "api"}, 422, "Component ids"),
        ({"name": "x", "body": 3}, 422, "Body must be text"),
        (None, 400, "param is missing"),
    ],
)
def test_invalid_input_is_refused_with_an_error_body(
    page: StatusPageServer, incident: dict[str, object] | None, status: int, error: str
) -> None:
    body = {} if incident is None else {"incident": incident}
    with _http(page, page.api_key) as http:
        answer = http.post(f"/v1/pages/{page.page_id}/incidents", json=body)
    assert answer.status_code == status
    assert error in answer.json()["error"]
    assert page.updates() == []


def test_a_body_that_is_not_json_is_a_bad_request(page: StatusPageServer) -> None:
    with _http(page, page.api_key) as http:
        answer = http.post(f"/v1/pages/{page.page_id}/incidents", content=b"{name")
    assert answer.status_code == 400


def test_another_page_or_incident_is_not_found(page: StatusPageServer) -> None:
    with _http(page, page.api_key) as http:
        assert http.get("/v1/pages/otherpage/incidents").status_code == 404
        missing = http.patch(
            f"/v1/pages/{page.page_id}/incidents/nope", json={"incident": {"status": "resolved"}}
        )
        assert missing.status_code == 404


def test_the_client_opens_then_updates_one_incident(
    page: StatusPageServer, clock: FakeClock
) -> None:
    with page.client() as client:
        first = client.post("investigating", "Files API Issues", "Looking into it.", "major")
        clock.advance(600)
        second = client.post("resolved", "Files API Fully Operational", "Fixed.", "major")
        [incident] = client.incidents()
    assert first.incident_id == second.incident_id == incident["id"]
    assert [(u.status, u.name, u.body, u.posted_mono) for u in page.updates()] == [
        ("investigating", "Files API Issues", "Looking into it.", 0.0),
        ("resolved", "Files API Fully Operational", "Fixed.", 600.0),
    ]
    assert incident["resolved_at"] is not None
    updates = incident["incident_updates"]
    assert isinstance(updates, list)
    assert [u["status"] for u in updates] == ["resolved", "investigating"]  # newest first
    page.clear()
    assert page.updates() == []


def test_the_client_says_what_the_page_refused(page: StatusPageServer) -> None:
    with page.client() as client, pytest.raises(StatusPageError) as refused:
        client.post("fixed", "Files API Issues", "", "major")
    assert refused.value.status == 422
    assert "refused the fixed update: HTTP 422" in str(refused.value)
    assert "not included in the list" in str(refused.value)


def test_a_client_with_the_wrong_key_is_told_so(page: StatusPageServer) -> None:
    client = StatusPageClient(page.url, page.page_id, "wrong")
    with client, pytest.raises(StatusPageError, match="HTTP 401 Could not authenticate"):
        client.post("investigating", "Files API Issues", "", "major")


def test_an_update_without_an_impact_keeps_the_pages(page: StatusPageServer) -> None:
    with page.client() as client:
        client.post("investigating", "Files API Issues", "", "")
        client.post("identified", "Files API Issues", "", "major")
        client.post("monitoring", "Files API Issues", "", "")
    assert [u.impact for u in page.updates()] == ["none", "major", "major"]
