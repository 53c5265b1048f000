"""Client faults without servers: settings, the paced body of a slow upload (fake clock),
observing handles adopted from `Fault.inject`. The requests themselves are in the
integration tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import ClassVar, cast

import httpx
import pytest

from runbook_checks.clock import SYSTEM_CLOCK, Clock, FakeClock, WaitTimeout
from runbook_checks.errors import UsageError
from runbook_checks.faults.base import ACTIVE, Fault, FaultError, FaultHandle
from runbook_checks.faults.client import (
    SIGN_UP_RETRY_S,
    SIGN_UP_WAIT_S,
    UNUSUAL_CASES,
    ObservedResponse,
    ObservingHandle,
    OversizedUpload,
    SlowClientUpload,
    UnusualUploads,
    _Pacer,
    _StopSending,
    adopt,
    sign_up,
)
from runbook_checks.service import ServiceClient, User
from runbook_checks.stack.base import Capability, Stack
from tests.fake_stack import NoStackExtras


@dataclass
class CapStack(NoStackExtras):
    capabilities: frozenset[Capability] = frozenset(Capability)
    backend: str = "fake"


def as_stack(fake: CapStack) -> Stack:
    return cast(Stack, fake)


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: OversizedUpload(tier="gold"), "unknown tier 'gold'"),
        (lambda: OversizedUpload(size_mb=0), r"size_mb must be in \(0, 1024\]"),
        (lambda: UnusualUploads(cases=("empty file", "zip bomb")), "unknown case.*'zip bomb'"),
        (lambda: SlowClientUpload(rate_kbps=0), "rate_kbps must be > 0"),
        (lambda: SlowClientUpload(upload_timeout_s=0), "upload_timeout_s must be > 0"),
        (lambda: SlowClientUpload(give_up_after_s=-1), "give_up_after_s must be > 0"),
        # 1 MB at 1000 KB/s takes 1.05 s: within a 5 s timeout, so nothing would time out
        (
            lambda: SlowClientUpload(size_mb=1, rate_kbps=1000, upload_timeout_s=5),
            r"takes 1\.0 s, within the API.s upload timeout of 5 s",
        ),
        (
            lambda: SlowClientUpload(
                size_mb=1, rate_kbps=10, upload_timeout_s=5, give_up_after_s=4
            ),
            "gives up after 4 s, before",
        ),
    ],
)
def test_bad_settings_are_refused_when_the_fault_is_built(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(UsageError, match=message):
        build()


def test_descriptions_and_sizes() -> None:
    assert OversizedUpload().describe() == "a free-plan user uploads a 15 MB file"
    assert OversizedUpload(size_mb=1.5).size_bytes == 1572864
    assert UnusualUploads().describe() == (
        f"a free-plan user uploads {len(UNUSUAL_CASES)} unusual file(s)"
    )
    assert UnusualUploads(cases=("html", "quotes")).describe().endswith("2 unusual file(s)")
    slow = SlowClientUpload(size_mb=1, rate_kbps=50, upload_timeout_s=1)
    assert slow.send_time_s == pytest.approx(20.97, abs=0.01)
    assert slow.describe() == (
        "a client streams a 1 MB upload at 50 KB/s (21 s, upload timeout 1 s)"
    )
    assert slow.give_up_s(1) == 1 + SlowClientUpload.GRACE_S
    assert SlowClientUpload(give_up_after_s=9).give_up_s(1) == 9


def test_the_unusual_cases_cover_what_the_runbook_cares_about() -> None:
    by_case = {c.case: c for c in UNUSUAL_CASES}
    assert len(by_case) == len(UNUSUAL_CASES)  # case names are unique
    assert by_case["empty file"].content == b""
    assert len(by_case["255-character name"].name) == 255
    assert "../" in by_case["path traversal"].name
    assert "\u202e" in by_case["right-to-left override"].name
    assert {"text/html", "image/svg+xml", "application/x-msdownload"} <= {
        c.content_type for c in UNUSUAL_CASES
    }
    assert "." not in by_case["no extension"].name
    assert UnusualUploads(cases=("quotes", "html")).selected == (
        by_case["html"],
        by_case["quotes"],
    )  # in catalogue order


def test_slow_upload_needs_reconfigure_only_when_it_sets_the_timeout() -> None:
    data_only = as_stack(CapStack(frozenset({Capability.DATA})))
    assert SlowClientUpload().unsupported_reason(data_only) is None
    reason = SlowClientUpload(size_mb=1, rate_kbps=10, upload_timeout_s=1).unsupported_reason(
        data_only
    )
    assert reason is not None
    assert "needs reconfigure" in reason


# --------------------------------------------------------------------------- the paced body


def pacer(
    clock: FakeClock,
    *,
    size: int = 10_000,
    rate: float = 10_000,
    give_up_s: float = 60,
    stop: threading.Event | None = None,
) -> _Pacer:
    return _Pacer(
        preamble=b"<head>",
        size_bytes=size,
        epilogue=b"<tail>",
        rate_bytes_per_s=rate,
        give_up_after_s=give_up_s,
        stop=stop or threading.Event(),
        clock=clock,
    )


def test_the_body_is_sent_at_the_rate_in_small_slices() -> None:
    clock = FakeClock()
    paced = pacer(clock)
    body = b"".join(paced.body())
    assert body == b"<head>" + b"\x33" * 10_000 + b"<tail>"
    assert paced.sent == 10_000
    assert not paced.gave_up
    assert clock.now == pytest.approx(1.0, abs=0.01)  # 10 000 bytes at 10 000 B/s
    assert max(clock.sleeps) <= _Pacer.SLICE_S


def test_giving_up_ends_the_body_early_with_its_closing_boundary() -> None:
    clock = FakeClock()
    paced = pacer(clock, size=1_000_000, give_up_s=0.5)
    body = b"".join(paced.body())
    assert paced.gave_up
    assert body.endswith(b"<tail>")
    assert 4_000 <= paced.sent <= 6_200  # about half a second's worth
    assert len(body) == len(b"<head><tail>") + paced.sent


def test_a_stop_aborts_the_body_instead_of_ending_it() -> None:
    clock = FakeClock()
    stop = threading.Event()
    body = pacer(clock, size=1_000_000, stop=stop).body()
    assert next(body) == b"<head>"
    next(body)
    stop.set()
    with pytest.raises(_StopSending, match="stopped by revert"):
        list(body)


# --------------------------------------------------------------------------- handles


@dataclass(frozen=True)
class Recording(Fault):
    kind: ClassVar[str] = "recording"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})
    fail: bool = False

    def inject(self, stack: Stack, *, clock: Clock = SYSTEM_CLOCK) -> ObservingHandle:
        return adopt(super().inject(stack, clock=clock), ObservingHandle)

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        observing = adopt(handle, ObservingHandle)
        assert observing is handle  # the same object: registrations keep holding it
        observing.did("armed", lambda: observing.notes.append("disarmed"))
        observing.observed(
            ObservedResponse("one", "a.txt", "text/plain", 1, 201, 0.1, file_id="f-1")
        )
        if self.fail:
            raise RuntimeError("boom")


def test_the_handle_fault_inject_made_becomes_the_typed_one_and_reverts_once() -> None:
    handle = Recording().inject(as_stack(CapStack()), clock=FakeClock())
    assert type(handle) is ObservingHandle
    assert handle in ACTIVE.handles
    assert [r.acknowledged for r in handle.responses] == [True]
    with handle as entered:
        assert entered is handle
    handle.revert()
    assert handle.notes.count("disarmed") == 1
    assert handle not in ACTIVE.handles


def test_a_failed_injection_is_reverted_by_fault_inject() -> None:
    before = set(ACTIVE.handles)
    with pytest.raises(RuntimeError, match="boom"):
        Recording(fail=True).inject(as_stack(CapStack()), clock=FakeClock())
    assert set(ACTIVE.handles) == before


def test_a_backend_that_cannot_carry_the_fault_is_refused() -> None:
    with pytest.raises(FaultError, match="needs data"):
        Recording().inject(as_stack(CapStack(frozenset())), clock=FakeClock())


def test_adopt_keeps_a_typed_handle_and_refuses_another_subclass() -> None:
    typed = ObservingHandle(Recording(), clock=FakeClock())
    assert adopt(typed, ObservingHandle) is typed
    assert typed.responses == []

    class Other(FaultHandle):
        pass

    other = Other(Recording())
    with pytest.raises(TypeError, match="cannot make a Other a ObservingHandle"):
        adopt(other, ObservingHandle)
    other.revert()
    typed.revert()


def test_waiting_for_responses_times_out_with_what_it_waited_for() -> None:
    handle = ObservingHandle(Recording(), clock=FakeClock())
    with pytest.raises(WaitTimeout, match=r"2 response\(s\) to recording"):
        handle.wait_for_responses(2, timeout_s=1)
    handle.observed(ObservedResponse("x", "x", "x", 0, None, 0.0, error="ConnectError"))
    handle.observed(ObservedResponse("y", "y", "y", 0, 408, 1.0))
    assert [r.status_code for r in handle.wait_for_responses(2, timeout_s=1)] == [None, 408]
    assert not any(r.acknowledged for r in handle.responses)
    handle.revert()


# --------------------------------------------------------------------------- sign-ups


@dataclass(frozen=True)
class _NewUser:
    email: str
    tier: str


class _SignUps:
    """A client whose POST /admin/users answers the statuses given, then 201."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.emails: list[str] = []

    def create_user(self, email: str, tier: str = "free") -> User:
        self.emails.append(email)
        if self.statuses:
            status = self.statuses.pop(0)
            request = httpx.Request("POST", "http://127.0.0.1/admin/users")
            answer = httpx.Response(status, json={"detail": f"said {status}"}, request=request)
            raise httpx.HTTPStatusError(f"{status}", request=request, response=answer)
        return cast(User, _NewUser(email, tier))


def test_a_sign_up_answered_503_is_tried_again_under_a_fresh_address() -> None:
    client, clock = _SignUps(503, 503), FakeClock()
    user = sign_up(cast(ServiceClient, client), "load-001", "pro", injecting="a load", clock=clock)
    assert len(client.emails) == 3
    assert len(set(client.emails)) == 3  # a half-made user never blocks the next try
    assert all(e.startswith("load-001-") and e.endswith("@drill.test") for e in client.emails)
    assert user.email == client.emails[-1]
    assert clock.sleeps == [SIGN_UP_RETRY_S] * 2


def test_a_sign_up_fails_at_once_on_another_answer_and_past_the_wait_on_503() -> None:
    client, clock = _SignUps(500), FakeClock()
    with pytest.raises(FaultError, match=r"creating user load-\S+ failed: 500 \(said 500\)"):
        sign_up(cast(ServiceClient, client), "load", "pro", injecting="a load", clock=clock)
    assert (len(client.emails), clock.sleeps) == (1, [])
    always = _SignUps(*[503] * 1000)
    with pytest.raises(FaultError, match=r"said 503"):
        sign_up(cast(ServiceClient, always), "load", "pro", injecting="a load", clock=clock)
    assert sum(clock.sleeps) == pytest.approx(SIGN_UP_WAIT_S)
