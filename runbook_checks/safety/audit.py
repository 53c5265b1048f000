"""An append-only audit log, written BEFORE each action happens.

One JSON object per line: when, which process, which environment, what is about to be
done (or was refused, or how it ended), to what. Each line is flushed and fsynced before
the caller goes on, so the log names an action even if the process dies during it.
Every string passes the environment's `Redactor` first: no secret reaches the file.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from runbook_checks.redact import Redactor


@dataclass(frozen=True)
class AuditEntry:
    at: str
    pid: int
    environment: str
    phase: str  # "before", "after", "refused", "note"
    action: str
    target: str
    detail: str


@dataclass
class AuditLog:
    path: Path
    environment: str
    redactor: Redactor = field(default_factory=Redactor)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def write(self, phase: str, action: str, target: str, detail: str = "") -> AuditEntry:
        entry = AuditEntry(
            at=time.strftime("%Y-%m-%dT%H:%M:%S")
            + f".{int(time.time() * 1000) % 1000:03d}"
            + time.strftime("%z"),
            pid=os.getpid(),
            environment=self.environment,
            phase=phase,
            action=action,
            target=self.redactor.text(target),
            detail=self.redactor.text(detail),
        )
        line = json.dumps(entry.__dict__, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        return entry

    def before(self, action: str, target: str, detail: str = "") -> AuditEntry:
        return self.write("before", action, target, detail)

    def after(self, action: str, target: str, detail: str = "") -> AuditEntry:
        return self.write("after", action, target, detail)

    def refused(self, action: str, target: str, detail: str) -> AuditEntry:
        return self.write("refused", action, target, detail)

    def entries(self) -> list[AuditEntry]:
        if not self.path.exists():
            return []
        return [
            AuditEntry(**json.loads(line))
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
