"""The ledger of acknowledged writes (Jepsen's idea: every write the service acknowledged
is either still there, byte for byte, or counted as lost).

A writer thread uploads small, unique, checksummed files through the API before, during
and after a fault, bounded in count and time. `verify()` downloads every acknowledged
upload and compares checksums.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

import httpx

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.service import ServiceClient, Upload, User


@dataclass(frozen=True)
class LedgerEntry:
    phase: str
    at_s: float  # monotonic offset from the ledger's start
    upload: Upload


@dataclass(frozen=True)
class LostWrite:
    name: str
    file_id: str
    phase: str
    reason: str  # "missing (404)", "checksum differs", ...


@dataclass(frozen=True)
class LedgerResult:
    attempted: int
    acknowledged: int
    stable: int
    lost: tuple[LostWrite, ...]
    unacknowledged: int  # refused writes: not promised, so not lost
    by_phase: dict[str, tuple[int, int]] = field(default_factory=dict)  # phase -> (ack, lost)

    @property
    def ok(self) -> bool:
        return not self.lost

    def summary(self) -> str:
        return (
            f"{self.acknowledged} acknowledged of {self.attempted} attempted, "
            f"{self.stable} stable, {len(self.lost)} lost"
        )


class Ledger:
    def __init__(
        self,
        client: ServiceClient,
        user: User,
        *,
        clock: Clock = SYSTEM_CLOCK,
        max_writes: int = 400,
        write_timeout_s: float = 3.0,
    ) -> None:
        self.client = client
        self.user = user
        self.clock = clock
        self.max_writes = max_writes
        self.write_timeout_s = write_timeout_s
        self.entries: list[LedgerEntry] = []
        self.phase = "steady"
        self._started = clock.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0

    def write(self) -> LedgerEntry:
        with self._lock:
            self._seq += 1
            seq, phase = self._seq, self.phase
        content = f"ledger {self.user.id} #{seq} {phase}\n".encode() * 8
        name = f"ledger-{seq:05d}.txt"
        try:
            upload = self.client.upload(
                self.user, name, content, "text/plain", timeout_s=self.write_timeout_s
            )
        except httpx.HTTPError as exc:
            upload = Upload(
                0,
                None,
                name,
                hashlib.sha256(content).hexdigest(),
                len(content),
                f"{type(exc).__name__}: {exc}",
            )
        entry = LedgerEntry(phase, self.clock.monotonic() - self._started, upload)
        with self._lock:
            self.entries.append(entry)
        return entry

    # -- background writer ---------------------------------------------------------------
    def start(self, interval_s: float = 0.25) -> None:
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.is_set() and len(self.entries) < self.max_writes:
                self.write()
                self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="ledger-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.write_timeout_s + 5)
            self._thread = None

    # -- verification --------------------------------------------------------------------
    def verify(self) -> LedgerResult:
        self.stop()
        lost: list[LostWrite] = []
        by_phase: dict[str, list[int]] = {}
        acked = 0
        with self._lock:
            entries = list(self.entries)
        for entry in entries:
            counts = by_phase.setdefault(entry.phase, [0, 0])
            upload = entry.upload
            if not upload.acknowledged or upload.file_id is None:
                continue
            acked += 1
            counts[0] += 1
            reason = self._check(upload.file_id, upload.checksum)
            if reason:
                counts[1] += 1
                lost.append(LostWrite(upload.name, upload.file_id, entry.phase, reason))
        return LedgerResult(
            attempted=len(entries),
            acknowledged=acked,
            stable=acked - len(lost),
            lost=tuple(lost),
            unacknowledged=len(entries) - acked,
            by_phase={k: (v[0], v[1]) for k, v in by_phase.items()},
        )

    def _check(self, file_id: str, checksum: str) -> str:
        try:
            response = self.client.download(self.user, file_id)
        except httpx.HTTPError as exc:
            return f"download failed: {type(exc).__name__}"
        if response.status_code != 200:
            return f"download answered {response.status_code}"
        if hashlib.sha256(response.content).hexdigest() != checksum:
            return "checksum differs"
        return ""
