"""`propose` end to end on runbooks with no profile (the gate's static mode: no stack),
as the review pack will call it: a CRLF file fixed and verified by the gate, and a
cp1252 file whose repaired line it cannot hold left to the owner."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from runbook_checks.clock import FakeClock
from runbook_checks.fix.api import propose

RUNBOOK = (
    "# Files runbook\n\n"
    "## SEV-1: Outage\n\n### Symptoms\n- errors\n\n### Investigation\n\n"
    "```bash\npg_isready\n```\n\n### Mitigation\n\n**Option A: Restart**\n"
    "```bash\nsudo systemctl restart api\n```\n\n"
    "## Status Page Updates\n\n"
    "\u00f0\u0178\u0178\u00a1 Investigating - [Feature] Issues\n\n"
    "## Contacts\n\n| Role | Primary |\n|------|---------|\n| On-Call | [Name] |\n"
)
CLOCK = FakeClock(epoch=dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp())


def test_a_crlf_runbook_is_fixed_verified_by_the_gate_and_its_owner_items_listed(
    tmp_path: Path,
) -> None:
    runbook = tmp_path / "svc.md"
    runbook.write_bytes(RUNBOOK.replace("\n", "\r\n").encode("utf-8"))
    plan = propose(runbook, verify="gate", clock=CLOCK)
    assert plan.gate_mode == "static"
    assert [(f.edit.kind, f.edit.new) for f in plan.fixes] == [
        ("text-mis-encoded", "\U0001f7e1 Investigating - [Feature] Issues")
    ]
    assert plan.patched == RUNBOOK.replace("\u00f0\u0178\u0178\u00a1", "\U0001f7e1").replace(
        "\n", "\r\n"
    ).encode("utf-8")
    assert plan.verification is not None
    assert [c.status for c in plan.verification.checks] == ["gate"]
    assert not plan.worse
    assert "contact-placeholder" in {o.finding.kind for o in plan.owner_items}
    text = plan.patch_text()
    head = text.split("\n--- a/")[0]
    assert "For the owner" in head
    assert "[ ] line " in head
    assert "+\U0001f7e1 Investigating" in text
    report = plan.to_json()
    assert report["worse"] is False
    # which text the patch is for (the review pack judges it by these)
    assert report["runbook_sha256"] == hashlib.sha256(runbook.read_bytes()).hexdigest()
    assert report["patched_sha256"] == hashlib.sha256(plan.patched).hexdigest()
    assert report["verdict"] == plan.verdict()


def test_a_line_the_files_encoding_cannot_hold_is_left_to_the_owner(tmp_path: Path) -> None:
    """A cp1252 file (a Latin-1 'é'): the repaired emoji has no cp1252 byte, so the line
    stays as it is and the owner is told to save the file as UTF-8."""
    runbook = tmp_path / "svc.md"
    text = RUNBOOK.replace("# Files runbook", "# Files runbook (caf\u00e9)")
    runbook.write_bytes(text.encode("cp1252"))
    plan = propose(runbook, verify="none", clock=CLOCK)
    assert plan.encoding == "cp1252"
    assert plan.fixes == ()
    assert plan.patched == runbook.read_bytes()
    saved = [o for o in plan.owner_items if "save the runbook as UTF-8" in o.why]
    assert [o.finding.kind for o in saved] == ["text-mis-encoded"]


def test_a_runbook_without_a_stack_gets_its_catalog_names_from_stock_postgresql(
    tmp_path: Path,
) -> None:
    runbook = tmp_path / "svc.md"
    runbook.write_text(
        RUNBOOK.replace(
            "```bash\npg_isready\n```",
            "```sql\nSELECT pid, querry FROM pg_stat_activity;\n"
            "SELECT * FROM pg_stat_activty;\n```",
        )
    )
    plan = propose(runbook, verify="gate", clock=CLOCK)
    fixed = {f.edit.kind: f.edit.new for f in plan.fixes}
    assert fixed["sql-undefined-column"] == "SELECT pid, query FROM pg_stat_activity;"
    assert fixed["sql-undefined-table"] == "SELECT * FROM pg_stat_activity;"
    assert plan.verification is not None
    assert not plan.worse
