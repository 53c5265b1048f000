"""The Files API's security as a Hypothesis state machine over the real stack.

Users upload, download, delete and restore files, share them (with expiry and download
limits), open shares, and download through a share many times at once, interleaved in
orders Hypothesis picks. A model says what must happen; the service must agree:

- no user ever reads another user's file (download, metadata, listing, share creation,
  delete: all 404 for someone else's file);
- a share never serves after its expiry, after its download limit, or for a deleted file;
- download_count never exceeds max_downloads, even under concurrent downloads (and
  exactly the remaining downloads succeed);
- an acknowledged upload (201/202) is never lost: its owner lists it and reads back the
  same bytes until they delete it;
- every download is inert in a browser (attachment, nosniff, CSP sandbox; active types
  served as application/octet-stream).

Expiry is reached by moving the share's `expires_at` into the past (the clock passing),
the same predicate the service evaluates in SQL with now().
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from files_profile import FilesClient, User
from runbook_checks.stack.base import Stack

pytestmark = pytest.mark.integration

ACTIVE_TYPES = ("text/html", "image/svg+xml", "application/xhtml+xml", "text/javascript")
CONTENT_TYPES = (*ACTIVE_TYPES, "text/plain", "application/pdf", "image/png")
CONCURRENT = 6


@dataclass
class StoredFile:
    id: str
    owner: User
    content: bytes
    content_type: str
    deleted: bool = False


@dataclass
class Share:
    token: str
    file: StoredFile
    permission: str
    max_downloads: int | None
    downloads: int = 0
    expired: bool = False

    def serves(self) -> bool:
        if self.file.deleted or self.expired:
            return False
        return self.max_downloads is None or self.downloads < self.max_downloads


@dataclass
class Tally:
    steps: int = 0
    runs: int = 0
    violations: list[str] = field(default_factory=list)
    concurrent_downloads: int = 0


TALLY = Tally()
STACK: list[Stack] = []  # the stack the machine runs against (set by the test)


def assert_inert(response: httpx.Response, content_type: str) -> None:
    """Headers that keep a browser from rendering or running a download."""
    headers = response.headers
    assert headers["content-disposition"].startswith("attachment"), headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "sandbox"
    served = headers["content-type"].split(";")[0].strip()
    if content_type in ACTIVE_TYPES:
        assert served == "application/octet-stream", (content_type, served)


class FilesApiMachine(RuleBasedStateMachine):
    users = Bundle("users")
    files = Bundle("files")
    shares = Bundle("shares")

    def __init__(self) -> None:
        super().__init__()
        stack = STACK[0]
        self.stack = stack
        self.client = FilesClient(stack.endpoints.api_url, stack.endpoints.admin_token)
        self.all_files: list[StoredFile] = []
        self.all_shares: list[Share] = []
        self.run = secrets.token_hex(3)
        TALLY.runs += 1

    def teardown(self) -> None:
        try:
            self._every_acknowledged_upload_is_there()
        finally:
            self.client.close()

    def _step(self) -> None:
        TALLY.steps += 1

    # -- users and files -----------------------------------------------------------------
    @rule(target=users, tier=st.sampled_from(["free", "pro"]))
    def create_user(self, tier: str) -> User:
        self._step()
        return self.client.create_user(f"sm-{self.run}-{secrets.token_hex(3)}@drill.test", tier)

    @rule(
        target=files,
        user=users,
        content=st.binary(min_size=0, max_size=2048),
        content_type=st.sampled_from(CONTENT_TYPES),
        name=st.sampled_from(
            [
                "a.txt",
                "page.html",
                "logo.svg",
                "x.js",
                "r\u00e9sum\u00e9.pdf",
                'q"uote.html',
                "../../etc/passwd",
            ]
        ),
    )
    def upload(self, user: User, content: bytes, content_type: str, name: str) -> StoredFile:
        self._step()
        upload = self.client.upload(user, name, content, content_type)
        assert upload.acknowledged, upload
        assert upload.file_id is not None
        stored = StoredFile(upload.file_id, user, content, content_type)
        self.all_files.append(stored)
        return stored

    @rule(file=files)
    def owner_downloads(self, file: StoredFile) -> None:
        self._step()
        response = self.client.download(file.owner, file.id)
        if file.deleted:
            assert response.status_code == 404
            return
        assert response.status_code == 200, response.text
        assert response.content == file.content
        assert_inert(response, file.content_type)

    @rule(file=files, other=users)
    def another_user_never_reads_it(self, file: StoredFile, other: User) -> None:
        self._step()
        if other.id == file.owner.id:
            return
        http = self.client.http
        for response in (
            self.client.download(other, file.id),
            http.get(f"/api/storage/files/{file.id}", headers=other.auth),
            http.post(f"/api/storage/files/{file.id}/shares", headers=other.auth, json={}),
            http.post(f"/api/storage/files/{file.id}/restore", headers=other.auth),
        ):
            assert response.status_code == 404, (response.request.url, response.text)
            assert file.content not in response.content or not file.content
        listing = self.client.list_files(other).json()["files"]
        assert file.id not in {f["id"] for f in listing}

    @rule(file=files, other=users)
    def another_user_cannot_delete_it(self, file: StoredFile, other: User) -> None:
        self._step()
        if other.id == file.owner.id:
            return
        assert self.client.delete(other, file.id).status_code == 404

    @rule(file=files)
    def owner_deletes(self, file: StoredFile) -> None:
        self._step()
        response = self.client.delete(file.owner, file.id)
        assert response.status_code == (404 if file.deleted else 200), response.text
        file.deleted = True

    @rule(file=files)
    def owner_restores(self, file: StoredFile) -> None:
        self._step()
        response = self.client.http.post(
            f"/api/storage/files/{file.id}/restore", headers=file.owner.auth
        )
        assert response.status_code == (200 if file.deleted else 404), response.text
        file.deleted = False

    # -- shares ----------------------------------------------------------------------------
    @precondition(lambda self: any(not f.deleted for f in self.all_files))
    @rule(
        target=shares,
        data=st.data(),
        permission=st.sampled_from(["download", "download", "view"]),
        max_downloads=st.sampled_from([None, 1, 2, 3]),
    )
    def share(self, data: st.DataObject, permission: str, max_downloads: int | None) -> Share:
        self._step()
        live = [f for f in self.all_files if not f.deleted]
        file = data.draw(st.sampled_from(live))
        token = self.client.share(
            file.owner,
            file.id,
            permission=permission,
            expires_in_s=3600,
            max_downloads=max_downloads,
        )
        share = Share(token, file, permission, max_downloads)
        self.all_shares.append(share)
        return share

    @rule(share=shares)
    def open_share(self, share: Share) -> None:
        self._step()
        response = self.client.http.get(f"/share/{share.token}/download")
        if share.permission == "view":
            assert response.status_code in (403, 404)
            view = self.client.open_share(share.token)
            assert view.status_code == (200 if share.serves() else 404), view.text
            if view.status_code == 200:
                assert view.headers["content-type"].startswith("application/json")
            return
        if share.serves():
            assert response.status_code == 200, response.text
            assert response.content == share.file.content
            assert_inert(response, share.file.content_type)
            share.downloads += 1
        else:
            assert response.status_code == 404, (share, response.text)
            assert response.json()["detail"] == "Share link expired or invalid"

    @rule(share=shares)
    def many_download_at_once(self, share: Share) -> None:
        """CONCURRENT downloads of one share at the same moment."""
        self._step()
        url = f"{self.stack.endpoints.api_url}/share/{share.token}/download"
        with httpx.Client(timeout=20) as http, ThreadPoolExecutor(CONCURRENT) as pool:
            statuses = list(pool.map(lambda _: http.get(url).status_code, range(CONCURRENT)))
        TALLY.concurrent_downloads += CONCURRENT
        ok = statuses.count(200)
        assert set(statuses) <= {200, 403, 404}, statuses
        if share.permission == "view" or not share.serves():
            assert ok == 0, statuses
            return
        remaining = (
            CONCURRENT
            if share.max_downloads is None
            else min(share.max_downloads - share.downloads, CONCURRENT)
        )
        assert ok == remaining, (share, statuses)
        share.downloads += ok

    @rule(share=consumes(shares))
    def time_passes_past_the_expiry(self, share: Share) -> None:
        self._step()
        with psycopg.connect(self.stack.endpoints.admin_database_url) as conn:
            conn.execute(
                "UPDATE file_shares SET expires_at = now() - interval '1 second' WHERE token = %s",
                (share.token,),
            )
        share.expired = True
        response = self.client.http.get(f"/share/{share.token}/download")
        assert response.status_code == 404, response.text
        assert self.client.open_share(share.token).status_code == 404

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def download_count_never_exceeds_max(self) -> None:
        with psycopg.connect(self.stack.endpoints.admin_database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM file_shares "
                "WHERE max_downloads IS NOT NULL AND download_count > max_downloads"
            ).fetchone()
        assert row == (0,)

    def _every_acknowledged_upload_is_there(self) -> None:
        by_owner: dict[str, User] = {f.owner.id: f.owner for f in self.all_files}
        for owner in by_owner.values():
            listed = {f["id"]: f for f in self.client.list_files(owner).json()["files"]}
            for file in self.all_files:
                if file.owner.id != owner.id:
                    continue
                if file.deleted:
                    assert file.id not in listed
                    continue
                assert file.id in listed, f"acknowledged upload {file.id} lost"
                assert (
                    listed[file.id]["checksum_sha256"] == hashlib.sha256(file.content).hexdigest()
                )


def test_files_api_security_state_machine(
    fresh_stack: Stack, record_property: Callable[[str, object], None]
) -> None:
    STACK[:] = [fresh_stack]
    try:
        run_state_machine_as_test(
            FilesApiMachine,
            settings=settings(
                max_examples=20,
                stateful_step_count=40,
                deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    except AssertionError as exc:
        TALLY.violations.append(str(exc)[:300])
        raise
    finally:
        record_property(
            "figure",
            f"stateful Files API: {TALLY.steps} steps in {TALLY.runs} runs "
            f"({TALLY.concurrent_downloads} concurrent share downloads), "
            f"{len(TALLY.violations)} invariant violations",
        )


@pytest.mark.parametrize("max_downloads", [1, 3, 7])
def test_a_download_limit_holds_under_a_burst_of_concurrent_downloads(
    fresh_stack: Stack, max_downloads: int
) -> None:
    """20 downloads of one share at once: exactly max_downloads succeed, the count in the
    database is exactly max_downloads, the others are told the link is used up."""
    burst = 20
    with FilesClient(fresh_stack.endpoints.api_url, fresh_stack.endpoints.admin_token) as c:
        user = c.create_user(f"burst-{secrets.token_hex(3)}@drill.test", "pro")
        upload = c.upload(user, "a.bin", secrets.token_bytes(1024))
        assert upload.file_id is not None
        token = c.share(user, upload.file_id, max_downloads=max_downloads)
    url = f"{fresh_stack.endpoints.api_url}/share/{token}/download"
    with httpx.Client(timeout=30) as http, ThreadPoolExecutor(burst) as pool:
        responses = list(pool.map(lambda _: http.get(url), range(burst)))
    TALLY.concurrent_downloads += burst
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * max_downloads + [404] * (burst - max_downloads)
    with psycopg.connect(fresh_stack.endpoints.admin_database_url) as conn:
        row = conn.execute(
            "SELECT download_count FROM file_shares WHERE token = %s", (token,)
        ).fetchone()
    assert row == (max_downloads,)
