"""Client-side faults: what users send that the service must cope with.

An oversized upload on a plan's limit, a set of odd files (empty, active content types,
executables, unicode and right-to-left names, path traversal, quotes, a 255-character
name), and an upload streamed slower than the API's upload timeout. Each fault creates
its own drill user through the API (POST /admin/users), sends real HTTP requests, and
records every answer in its handle (`handle.responses`, a list of `ObservedResponse`),
so a scenario can assert on what users saw while the runbook's diagnostics look at the
service's side (logs, its records of refused uploads).

Revert removes what the fault made: its user, the user's files (rows and objects) and
the records of refused uploads its requests caused, and puts back any API setting it changed.

`LiveHandle` and `adopt` let a fault return a handle with typed live state (here:
responses; traffic.py: load statistics) through the normal `Fault.inject` path.
"""

from __future__ import annotations

import functools
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Self, TypeVar

import httpx

from runbook_checks.clock import SYSTEM_CLOCK, Clock, wait_until
from runbook_checks.errors import UsageError
from runbook_checks.faults.base import Fault, FaultError, FaultHandle
from runbook_checks.faults.data import remove_users, unsupported_without
from runbook_checks.faults.deploy import api_settings, change_api_settings
from runbook_checks.service import ServiceClient, User
from runbook_checks.stack.base import Capability, Stack

__all__ = [
    "UNUSUAL_CASES",
    "LiveHandle",
    "ObservedResponse",
    "ObservingHandle",
    "OversizedUpload",
    "SlowClientUpload",
    "UnusualUploads",
    "UploadCase",
    "adopt",
    "create_drill_user",
    "drill_client",
]

MIB = 1024 * 1024
TIERS = ("free", "pro")
EXCERPT_CHARS = 500


# ------------------------------------------------------------------------- handles


@dataclass(frozen=True)
class ObservedResponse:
    """What one client request got back (status_code None: no HTTP answer at all)."""

    case: str
    name: str  # the file name sent
    content_type: str  # the content type sent
    size_bytes: int
    status_code: int | None
    elapsed_s: float
    detail: str | None = None  # the API's {"detail": ...} on an error
    file_id: str | None = None  # on 201/202
    stored_name: str | None = None  # the name the API kept (on 201/202)
    stored_content_type: str | None = None
    error: str | None = None  # the transport error when there was no answer
    sent_bytes: int | None = None  # body bytes sent, where it was streamed
    body: str = ""  # an excerpt of the answer

    @property
    def acknowledged(self) -> bool:
        """201 stored or 202 queued: the service promised to keep the file."""
        return self.status_code in (201, 202) and self.file_id is not None


class LiveHandle(FaultHandle):
    """A fault handle with typed live state of its own (responses, load counters ...).

    `Fault.inject` makes a plain `FaultHandle` and registers it (ACTIVE, and whatever the
    base does besides: the stack's state file and hooks); a fault that needs more state
    calls `adopt(handle, ItsHandle)` first thing in `_inject`, which turns that very
    object into the subclass and initialises its state. Being the same object, it stays
    registered everywhere. (A `handle_type` hook on `Fault` would make this unneeded.)
    """

    def __init__(self, fault: Fault, **options: Any) -> None:
        super().__init__(fault, **options)
        self._init_live_state()

    def _init_live_state(self) -> None:
        """Set up the subclass's own state (called once, by __init__ or adopt)."""

    def __enter__(self) -> Self:  # keep the subclass in `with fault.inject(...) as handle`
        return self


L = TypeVar("L", bound=LiveHandle)


def adopt(handle: FaultHandle, handle_type: type[L]) -> L:
    """`handle` as a `handle_type` (the same object; see `LiveHandle`)."""
    if isinstance(handle, handle_type):
        return handle
    if type(handle) is not FaultHandle:
        raise TypeError(f"cannot make a {type(handle).__name__} a {handle_type.__name__}")
    handle.__class__ = handle_type
    assert isinstance(handle, handle_type)
    handle._init_live_state()
    return handle


class ObservingHandle(LiveHandle):
    """A fault handle that also collects what the fault's requests got back."""

    def _init_live_state(self) -> None:
        self._responses: list[ObservedResponse] = []
        self._responses_lock = threading.Lock()

    @property
    def responses(self) -> list[ObservedResponse]:
        """The answers so far, in the order they came (a copy)."""
        with self._responses_lock:
            return list(self._responses)

    def observed(self, response: ObservedResponse) -> None:
        with self._responses_lock:
            self._responses.append(response)

    def wait_for_responses(self, count: int = 1, timeout_s: float = 60.0) -> list[ObservedResponse]:
        """Until at least `count` answers are in (for faults that send in the background)."""
        return wait_until(
            lambda: r if len(r := self.responses) >= count else None,
            what=f"{count} response(s) to {self.fault.describe()}",
            timeout_s=timeout_s,
            clock=self.clock,
            interval_s=0.05,
        )


# ------------------------------------------------------------------------- drill users


def drill_client(stack: Stack, timeout_s: float = 30.0, *, keepalive: bool = True) -> ServiceClient:
    return stack.kit.client(
        stack.endpoints.api_url,
        stack.endpoints.admin_token,
        timeout_s=timeout_s,
        keepalive=keepalive,
    )


# how long a user's creation is tried again while the API answers 503 (its pool still
# filling after a restart with new settings, a starved machine): the harness's own setup,
# not the drill's subject
SIGN_UP_WAIT_S = 10.0
SIGN_UP_RETRY_S = 0.5


def sign_up(
    client: ServiceClient, label: str, tier: str, *, injecting: str, clock: Clock = SYSTEM_CLOCK
) -> User:
    """A new user (`label-<hex>@drill.test`) for the fault `injecting` describes. A 503 is
    tried again, under a fresh address, for up to SIGN_UP_WAIT_S; any other failure, or a
    503 past that, raises a FaultError naming the fault, the address and the API's answer."""
    deadline = clock.monotonic() + SIGN_UP_WAIT_S
    while True:
        email = f"{label}-{secrets.token_hex(4)}@drill.test"
        try:
            return client.create_user(email, tier)
        except httpx.HTTPError as exc:
            answer = exc.response if isinstance(exc, httpx.HTTPStatusError) else None
            if answer is None or answer.status_code != 503 or clock.monotonic() >= deadline:
                detail = _detail(answer) if answer is not None else None
                raise FaultError(
                    f"cannot inject {injecting}: creating user {email} failed: {exc}"
                    + (f" ({detail})" if detail else ""),
                    hint="the API must answer POST /admin/users (check /health)",
                ) from exc
        clock.sleep(SIGN_UP_RETRY_S)


def create_drill_user(
    stack: Stack, handle: FaultHandle, client: ServiceClient, *, tier: str, label: str
) -> User:
    """A new user for this fault, removed (with its files) when the fault is reverted."""
    user = sign_up(client, label, tier, injecting=handle.fault.describe(), clock=handle.clock)
    email = user.email
    handle.did(
        f"created {tier} user {email} ({user.id})",
        lambda: handle.notes.append(remove_users(stack, [user.id])),
        f"remove user {email} and everything it uploaded",
    )
    return user


def _detail(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return str(data["detail"])
    return None


class _StopSending(Exception):
    """Raised inside a streamed request body to abort the request."""


def _observe(
    case: str,
    name: str,
    content_type: str,
    size_bytes: int,
    send: Callable[[], httpx.Response],
    clock: Clock,
) -> ObservedResponse:
    started = clock.monotonic()
    try:
        response = send()
    except (httpx.HTTPError, _StopSending) as exc:
        return ObservedResponse(
            case,
            name,
            content_type,
            size_bytes,
            None,
            clock.monotonic() - started,
            error=f"{type(exc).__name__}: {exc}",
        )
    elapsed = clock.monotonic() - started
    file_id = stored_name = stored_type = None
    if response.status_code in (201, 202):
        data = response.json()
        file_id, stored_name = str(data.get("id")), str(data.get("name"))
        stored_type = str(data.get("content_type"))
    return ObservedResponse(
        case,
        name,
        content_type,
        size_bytes,
        response.status_code,
        elapsed,
        detail=_detail(response),
        file_id=file_id,
        stored_name=stored_name,
        stored_content_type=stored_type,
        body=response.text[:EXCERPT_CHARS],
    )


def _post_file(
    client: ServiceClient,
    user: User,
    name: str,
    content: bytes,
    content_type: str,
    timeout_s: float,
) -> httpx.Response:
    return client.post_upload(
        user, files={"file": (name, content, content_type)}, timeout_s=timeout_s
    )


def _check_tier(kind: str, tier: str) -> None:
    if tier not in TIERS:
        raise UsageError(f"{kind}: unknown tier {tier!r}; expected one of {', '.join(TIERS)}")


# ------------------------------------------------------------------------- oversized upload


@dataclass(frozen=True)
class OversizedUpload(Fault):
    """A user of plan `tier` uploads a `size_mb` MB file (over the plan's limit: the API
    should answer 413 stating both sizes, as the runbook's fix asks)."""

    kind: ClassVar[str] = "oversized-upload"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})

    tier: str = "free"
    size_mb: float = 15.0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        _check_tier(self.kind, self.tier)
        if not 0 < self.size_mb <= 1024:
            raise UsageError(f"{self.kind}: size_mb must be in (0, 1024], got {self.size_mb!r}")

    @property
    def size_bytes(self) -> int:
        return round(self.size_mb * MIB)

    def describe(self) -> str:
        return f"a {self.tier}-plan user uploads a {self.size_mb:g} MB file"

    def inject(self, stack: Stack, *, clock: Clock = SYSTEM_CLOCK) -> ObservingHandle:
        return adopt(super().inject(stack, clock=clock), ObservingHandle)

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        handle = adopt(handle, ObservingHandle)
        name = f"oversized-{self.size_mb:g}MB.bin"
        content = b"\x5a" * self.size_bytes
        with drill_client(stack) as client:
            user = create_drill_user(stack, handle, client, tier=self.tier, label=self.kind)
            observed = _observe(
                "oversized",
                name,
                "application/octet-stream",
                len(content),
                lambda: _post_file(
                    client, user, name, content, "application/octet-stream", self.timeout_s
                ),
                handle.clock,
            )
        handle.observed(observed)
        handle.did(
            f"uploaded {name} ({len(content)} bytes) as {user.email}: "
            f"{observed.status_code or observed.error}"
        )


# ------------------------------------------------------------------------- unusual uploads


@dataclass(frozen=True)
class UploadCase:
    """One odd upload: a name for it, the file name and content type sent, the bytes."""

    case: str
    name: str
    content_type: str
    content: bytes


UNUSUAL_CASES: tuple[UploadCase, ...] = (
    UploadCase("empty file", "empty.txt", "text/plain", b""),
    UploadCase(
        "html",
        "page.html",
        "text/html",
        b"<!doctype html><title>x</title><script>alert(document.cookie)</script>",
    ),
    UploadCase(
        "svg with script",
        "drawing.svg",
        "image/svg+xml",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>',
    ),
    UploadCase(
        "windows executable",
        "setup.exe",
        "application/x-msdownload",
        b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00",
    ),
    UploadCase("no extension", "README", "application/octet-stream", b"no extension here\n"),
    UploadCase("unicode name", "résumé – 履歴書 📄.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n"),
    UploadCase(
        "right-to-left override",
        "invoice\u202egpj.exe",
        "image/jpeg",
        b"\xff\xd8\xff\xe0 not really a jpeg",
    ),
    UploadCase("right-to-left script", "تقرير-الربع.txt", "text/plain", "مرحبا\n".encode()),
    UploadCase("path traversal", "../../../etc/passwd", "text/plain", b"root:x:0:0\n"),
    UploadCase("windows path traversal", "..\\..\\windows\\win.ini", "text/plain", b"[fonts]\n"),
    UploadCase("quotes", 'a "quoted" \'name\'; x="y".txt', "text/plain", b"quotes\n"),
    UploadCase("255-character name", "n" * 251 + ".txt", "text/plain", b"long name\n"),
)
_CASE_NAMES = tuple(c.case for c in UNUSUAL_CASES)


@dataclass(frozen=True)
class UnusualUploads(Fault):
    """A user uploads a set of odd files (UNUSUAL_CASES: empty, HTML, SVG, an executable,
    no extension, unicode and right-to-left names, ../ and quotes, 255 characters), one
    request each; every answer is recorded."""

    kind: ClassVar[str] = "unusual-uploads"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})

    cases: tuple[str, ...] = ()  # case names from UNUSUAL_CASES; empty = all of them
    tier: str = "free"
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        _check_tier(self.kind, self.tier)
        unknown = [c for c in self.cases if c not in _CASE_NAMES]
        if unknown:
            raise UsageError(
                f"{self.kind}: unknown case(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(_CASE_NAMES)}"
            )

    @property
    def selected(self) -> tuple[UploadCase, ...]:
        if not self.cases:
            return UNUSUAL_CASES
        return tuple(c for c in UNUSUAL_CASES if c.case in self.cases)

    def describe(self) -> str:
        return f"a {self.tier}-plan user uploads {len(self.selected)} unusual file(s)"

    def inject(self, stack: Stack, *, clock: Clock = SYSTEM_CLOCK) -> ObservingHandle:
        return adopt(super().inject(stack, clock=clock), ObservingHandle)

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        handle = adopt(handle, ObservingHandle)
        with drill_client(stack) as client:
            user = create_drill_user(stack, handle, client, tier=self.tier, label=self.kind)
            for case in self.selected:
                send = functools.partial(
                    _post_file,
                    client,
                    user,
                    case.name,
                    case.content,
                    case.content_type,
                    self.timeout_s,
                )
                handle.observed(
                    _observe(
                        case.case,
                        case.name,
                        case.content_type,
                        len(case.content),
                        send,
                        handle.clock,
                    )
                )
        statuses = ", ".join(f"{r.case}: {r.status_code or r.error}" for r in handle.responses)
        handle.did(f"uploaded {len(self.selected)} unusual file(s) as {user.email}: {statuses}")


# ------------------------------------------------------------------------- slow upload


@dataclass
class _Pacer:
    """A multipart body paced to `rate_bytes_per_s`, sent chunked (no Content-Length), as
    a streaming client sends it. After `give_up_after_s` it ends the body early (the
    closing boundary right away), so the client gets to read the answer the API gave
    meanwhile: an HTTP/1.1 client reads the response only once its request is sent.
    `stop` aborts the request instead (revert)."""

    preamble: bytes
    size_bytes: int
    epilogue: bytes
    rate_bytes_per_s: float
    give_up_after_s: float
    stop: threading.Event
    clock: Clock
    sent: int = 0
    gave_up: bool = False
    chunk_bytes: int = field(init=False)

    SLICE_S: ClassVar[float] = 0.1  # pacing granularity, and how fast a stop is noticed

    def __post_init__(self) -> None:
        self.chunk_bytes = max(1024, int(self.rate_bytes_per_s * self.SLICE_S))

    def body(self) -> Iterator[bytes]:
        yield self.preamble
        started = self.clock.monotonic()
        block = b"\x33" * self.chunk_bytes
        while self.sent < self.size_bytes and not self._giving_up(started):
            piece = min(self.chunk_bytes, self.size_bytes - self.sent)
            yield block[:piece]
            self.sent += piece
            due = started + self.sent / self.rate_bytes_per_s
            while (delay := due - self.clock.monotonic()) > 0 and not self._giving_up(started):
                self.clock.sleep(min(delay, self.SLICE_S))
        yield self.epilogue

    def _giving_up(self, started: float) -> bool:
        if self.stop.is_set():
            raise _StopSending("stopped by revert before the upload was sent")
        if self.clock.monotonic() - started >= self.give_up_after_s:
            self.gave_up = True
        return self.gave_up


@dataclass(frozen=True)
class SlowClientUpload(Fault):
    """A user streams a `size_mb` MB upload at `rate_kbps` KB/s, slower than the API's
    upload timeout (the kit's `twin.upload_timeout_setting`, set to `upload_timeout_s` for
    the drill when given); the answer
    (408 expected) is recorded when it comes."""

    kind: ClassVar[str] = "slow-client-upload"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})
    requires_if_set: ClassVar[Mapping[str, frozenset[Capability]]] = {
        "upload_timeout_s": frozenset({Capability.RECONFIGURE})
    }

    GRACE_S: ClassVar[float] = 5.0  # how long past the API's timeout the client keeps going

    size_mb: float = 20.0
    rate_kbps: float = 100.0  # kilobytes (1000 bytes) per second, as the proxy's Bandwidth
    upload_timeout_s: float | None = None  # restart the API with this upload timeout
    give_up_after_s: float | None = None  # end the body early; None: API timeout + GRACE_S
    tier: str = "pro"

    def __post_init__(self) -> None:
        _check_tier(self.kind, self.tier)
        if not 0 < self.size_mb <= 1024:
            raise UsageError(f"{self.kind}: size_mb must be in (0, 1024], got {self.size_mb!r}")
        if not self.rate_kbps > 0:
            raise UsageError(f"{self.kind}: rate_kbps must be > 0, got {self.rate_kbps!r}")
        if self.give_up_after_s is not None and not self.give_up_after_s > 0:
            raise UsageError(
                f"{self.kind}: give_up_after_s must be > 0 or None, got {self.give_up_after_s!r}"
            )
        if self.upload_timeout_s is not None:
            if not self.upload_timeout_s > 0:
                raise UsageError(
                    f"{self.kind}: upload_timeout_s must be > 0 or None, got "
                    f"{self.upload_timeout_s!r}"
                )
            self._check_slower_than(self.upload_timeout_s)

    @property
    def size_bytes(self) -> int:
        return round(self.size_mb * MIB)

    @property
    def send_time_s(self) -> float:
        """How long the whole body takes to send at `rate_kbps`."""
        return self.size_bytes / (self.rate_kbps * 1000)

    def give_up_s(self, api_timeout_s: float) -> float:
        if self.give_up_after_s is not None:
            return self.give_up_after_s
        return api_timeout_s + self.GRACE_S

    def _check_slower_than(self, timeout_s: float) -> None:
        problem = None
        if self.send_time_s <= timeout_s:
            problem = (
                f"at {self.rate_kbps:g} KB/s the {self.size_mb:g} MB upload takes "
                f"{self.send_time_s:.1f} s, within the API's upload timeout of {timeout_s:g} s"
            )
        elif self.give_up_s(timeout_s) <= timeout_s:
            problem = (
                f"the client gives up after {self.give_up_s(timeout_s):g} s, before "
                f"the API's upload timeout of {timeout_s:g} s"
            )
        if problem:
            raise UsageError(
                f"{self.kind}: {problem}, so the upload would not time out",
                hint="lower rate_kbps, raise size_mb, or set upload_timeout_s",
            )

    def unsupported_reason(self, stack: Stack) -> str | None:
        return unsupported_without(self, stack)

    def describe(self) -> str:
        timeout = (
            f", upload timeout {self.upload_timeout_s:g} s"
            if self.upload_timeout_s is not None
            else ""
        )
        return (
            f"a client streams a {self.size_mb:g} MB upload at {self.rate_kbps:g} KB/s "
            f"({self.send_time_s:.0f} s{timeout})"
        )

    def inject(self, stack: Stack, *, clock: Clock = SYSTEM_CLOCK) -> ObservingHandle:
        return adopt(super().inject(stack, clock=clock), ObservingHandle)

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        handle = adopt(handle, ObservingHandle)
        twin = stack.kit.twin
        if self.upload_timeout_s is not None:
            api_timeout_s = self.upload_timeout_s
            change_api_settings(
                stack,
                handle,
                {twin.upload_timeout_setting: f"{api_timeout_s:g}"},
                why="a short upload timeout for the drill",
            )
        else:
            raw = api_settings(stack).get(twin.upload_timeout_setting) or ""
            api_timeout_s = float(raw) if raw else twin.default_upload_timeout_s
            try:
                self._check_slower_than(api_timeout_s)
            except UsageError as exc:
                raise FaultError(
                    f"cannot inject {self.describe()}: {exc.message}", hint=exc.hint
                ) from None
        give_up_s = self.give_up_s(api_timeout_s)
        client = drill_client(stack, timeout_s=give_up_s + 30)
        handle.did("opened an HTTP client", client.close, "close the HTTP client")
        user = create_drill_user(stack, handle, client, tier=self.tier, label=self.kind)
        stop = threading.Event()
        name = f"slow-{self.size_mb:g}MB.bin"
        boundary = f"drill-{secrets.token_hex(12)}"
        pacer = _Pacer(
            preamble=(
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode(),
            size_bytes=self.size_bytes,
            epilogue=f"\r\n--{boundary}--\r\n".encode(),
            rate_bytes_per_s=self.rate_kbps * 1000,
            give_up_after_s=give_up_s,
            stop=stop,
            clock=handle.clock,
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}

        def send() -> httpx.Response:
            return client.post_upload(user, headers=headers, content=pacer.body())

        def run() -> None:
            try:
                observed = _observe(
                    "slow upload",
                    name,
                    "application/octet-stream",
                    self.size_bytes,
                    send,
                    handle.clock,
                )
            except Exception as exc:  # recorded, never lost in a thread
                observed = ObservedResponse(
                    "slow upload",
                    name,
                    "application/octet-stream",
                    self.size_bytes,
                    None,
                    0.0,
                    error=f"{type(exc).__name__}: {exc}",
                )
            handle.observed(replace(observed, sent_bytes=pacer.sent))
            handle.notes.append(
                f"slow upload answered {observed.status_code or observed.error} after "
                f"{observed.elapsed_s:.1f} s, {pacer.sent} of {self.size_bytes} bytes sent"
                + (
                    f" (the client gave up at {give_up_s:g} s and ended the body early)"
                    if pacer.gave_up
                    else ""
                )
            )

        thread = threading.Thread(target=run, name=f"{self.kind}-{user.id}", daemon=True)

        def stop_sending() -> None:
            stop.set()
            if thread.is_alive():
                wait_until(
                    lambda: not thread.is_alive(),
                    what="the slow upload to stop",
                    timeout_s=30,
                    clock=handle.clock,
                    interval_s=0.05,
                )

        handle.did(
            f"streaming {name} ({self.size_bytes} bytes) at {self.rate_kbps:g} KB/s "
            f"as {user.email}; the client ends the body after {give_up_s:g} s",
            stop_sending,
            "stop the slow upload",
        )
        thread.start()
