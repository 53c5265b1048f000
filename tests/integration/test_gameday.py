"""Game-day mode end to end, with a scripted operator at a real terminal (a pty).

The operator waits for the clock to start, acknowledges, posts the investigating update
(the panel shows neither the hidden severity nor its SLA), marks "detected" and
"mitigating", mitigates for real with the runbook's own restart command (`run LINE`:
systemctl means the stack's API there), marks "resolved", and the tool verifies recovery;
the operator posts the resolved update, the fault is reverted and an evidence folder is
written whose manifest verifies, with the acknowledgement and the posts in it.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from runbook_checks.evidence.manifest import verify_manifest
from runbook_checks.gameday.game import find_step
from runbook_checks.runbook.parser import parse_runbook

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """A child process on a pseudo-terminal: `expect` a pattern, `send` keys."""

    def __init__(self, argv: list[str], *, cwd: Path) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 150, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "150", "LINES": "45"}
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.screen = ""  # everything printed, control sequences removed
        self.seen = 0

    def _pump(self, timeout_s: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the child closed the terminal
            return False
        if not data:
            return False
        self.screen += ANSI.sub("", data.decode(errors="replace"))
        return True

    def expect(self, pattern: str, timeout_s: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.screen, self.seen)
            if match:
                self.seen = match.end()
                return match
            if time.monotonic() > deadline or not self._pump(0.2):
                if match := regex.search(self.screen, self.seen):
                    return match
                raise AssertionError(
                    f"waited {timeout_s}s for {pattern!r}; the screen ends "
                    f"with:\n{self.screen[-3000:]}"
                )

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait(self, timeout_s: float = 60.0) -> int:
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._pump(0.2)
        return self.proc.wait(timeout=1)

    def close(self) -> None:
        if self.proc.poll() is None:  # never leave a game day (and its stack) behind
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        os.close(self.master)


@pytest.fixture
def restart_line() -> int:
    runbook = parse_runbook(ROOT / "runbooks" / "files-incident-response.md")
    return find_step(runbook, "systemctl restart rolerabbit-api").line


def test_a_scripted_operator_works_a_game_day(tmp_path: Path, restart_line: int) -> None:
    evidence = tmp_path / "evidence"
    term = Terminal(
        [
            sys.executable,
            "-m",
            "runbook_checks.cli",
            "gameday",
            "sev1_api_server_down:api_killed",
            "--operator",
            "scripted-oncall",
            "--evidence-dir",
            str(evidence),
        ],
        cwd=ROOT,
    )
    try:
        term.expect(r"export ADMIN_TOKEN=", 120)  # the stack is up, its exports printed
        term.expect(r"status page \(a local stand-in\): http://127\.0\.0\.1:\d+/v1/pages/", 120)
        term.expect(r"the fault is in; the clock runs\.", 60)
        panel = term.expect(r"alerts\s+(no alerting in this stack|none firing|\w+)", 10)
        assert "process-kill" not in term.screen  # not revealed
        alerting = panel.group(1) != "no alerting in this stack"
        if alerting:  # the rules derived from the runbook page the on-call engineer
            term.expect(r"ALERT \w+ firing", 90)
        term.send("a\r")
        since = "first alert" if alerting else "injection"
        term.expect(rf"acknowledged at T\+[\d.ms]+: [\d.ms]+ after the {since}")
        term.send("post investigating the API does not answer\r")
        term.expect(r"customers will read \(the runbook's 'Investigating' template, line 556\)")
        term.expect(r"We're investigating reports of the API does not answer\.")
        term.expect(r"investigating update: posted to the status page at T\+")
        term.send("d\r")
        term.expect(r"detected at T\+")
        term.send("mitigating\r")
        term.expect(r"mitigating at T\+")
        term.send(f"run {restart_line}\r")
        term.expect(rf"line {restart_line}: ok", 60)
        hidden = term.screen
        for answer in ("SLA", "(SEV-1)", "15m00s"):  # the panel never gave it away
            assert answer not in hidden
        term.send("r\r")
        term.expect(r"recovery verified at T\+", 30)
        term.expect(r"post the resolved update \(post resolved \[root cause\]\)", 60)
        term.send("post resolved the API process had died\r")
        term.expect(r"Root cause: Database connection pool exhaustion\.")  # the section's own
        term.expect(r"resolved update: posted to the status page at T\+")
        folder = Path(term.expect(r"evidence: (\S+)", 90).group(1))
        assert term.wait() == 0, term.screen[-2000:]
    finally:
        term.close()
    assert folder.parent == evidence
    assert verify_manifest(folder).ok
    journal = json.loads((folder / "journal.json").read_text())
    assert journal["kind"] == "gameday"
    [record] = journal["scenarios"]
    assert record["verdict"] == "passed"
    assert record["operator"] == "scripted-oncall"
    assert record["budget_s"] == 900.0  # SEV-1: 15 minutes, from the severity table
    names = [e["name"] for e in record["events"]]
    for name in ("injected", "detected", "mitigating", "resolved", "recovered", "reverted"):
        assert name in names
    at = {e["name"]: e["at_s"] for e in record["events"]}
    assert at["injected"] <= at["detected"] <= at["mitigating"] <= at["resolved"]
    operator_steps = [s for s in record["steps"] if s["phase"] == "operator"]  # run LINE
    assert [(s["line"], s["status"]) for s in operator_steps] == [(restart_line, "ok")]
    assert record["samples_aligned"] is True
    assert any(s["status"] != 200 and s["at_s"] >= 0 for s in record["samples"])
    assert "Game day" in (folder / "report.html").read_text()
    for name in ("acknowledged", "posted", *(["alert"] if alerting else [])):
        assert name in names
    posts = [(s["written"], s["status"], s["by"]) for s in record["steps"]]
    assert ("Investigating (investigating)", "ok", "person") in posts
    assert ("Resolution Update (resolved)", "ok", "person") in posts
    investigating = next(s for s in record["steps"] if s["phase"] == "communication")
    assert "We're investigating reports of the API does not answer." in investigating["output"]
    assert [(c["stage"], c["posted"]) for c in record["communication"]] == [
        ("investigating", True),
        ("resolved", True),
    ]
    assert record["alerting"]["measured"] is alerting
    if alerting:  # time-to-alert, as drills record it
        assert record["time_to_alert_s"] is not None
        assert record["alerting"]["alerts"]
    kinds = {(f["kind"], f["line"]) for f in record["findings"]}
    assert ("status-update-unreadable", 557) in kinds  # the Investigating template, as posted
    assert ("status-update-stale", 141) in kinds  # a pool exhaustion in the resolution
