"""A storage provider's public status page, answered in-process (an outside edge).

A runbook's `curl https://status.example.com/api/v2/status.json` must never leave the
machine, so drills answer it here (`DrillContext.edges`): a Statuspage summary whose
state is measured, not scripted. Storage counts as up when the object store answers HTTP
on the API's own path to it (through the fault proxy), so the page shows an outage
exactly while the API cannot reach its storage, as the provider's monitoring would.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from runbook_checks.faults.deploy import api_settings
from runbook_checks.stack.base import Stack
from runbook_checks.tls import tls_context

STATUS_PATH = "/api/v2/status.json"


class ProviderStatusPage:
    """`GET https://<host>/api/v2/status.json` as Statuspage answers it."""

    def __init__(self, stack: Stack, host: str, name: str) -> None:
        self.host = host
        self.name = name
        self.store_url = api_settings(stack)["S3_ENDPOINT_URL"].rstrip("/")

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._serve)

    def storage_up(self) -> bool:
        try:
            httpx.get(f"{self.store_url}/", timeout=1.0, verify=tls_context())
        except httpx.HTTPError:
            return False
        return True

    def _serve(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET" or request.url.path != STATUS_PATH:
            return httpx.Response(404, json={"error": "Not found"})
        up = self.storage_up()
        status = (
            {"indicator": "none", "description": "All Systems Operational"}
            if up
            else {"indicator": "major", "description": "Partial System Outage"}
        )
        page = {
            "id": "xmltf7dy8rbn",
            "name": self.name,
            "url": f"https://{self.host}",
            "time_zone": "Etc/UTC",
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        # an unread stream, as from a server: the curl executor reads the raw stream
        body = json.dumps({"page": page, "status": status}).encode()
        return httpx.Response(
            200,
            headers={"content-type": "application/json"},
            stream=httpx.ByteStream(body),
        )
