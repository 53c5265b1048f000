"""The folder evidence store: idempotent upload per bundle id, refusal of a different
bundle under the same id, and `--store` URLs (S3 itself: tests/integration/
test_evidence_store.py, against a real moto server)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runbook_checks.errors import UsageError
from runbook_checks.evidence.bundle import bundle_time, write_bundle
from runbook_checks.evidence.journal import ScenarioRecord
from runbook_checks.evidence.review import parse_period
from runbook_checks.evidence.store import (
    FolderStore,
    S3Store,
    StoreError,
    open_store,
)
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook

if TYPE_CHECKING:
    from conftest import Builders


def _bundle(tmp_path: Path, build: Builders, runbook: Runbook) -> Path:
    journal = build.journal(
        [ScenarioRecord(build.result())], when=datetime(2026, 11, 3, 12, tzinfo=UTC)
    )
    return write_bundle(journal, tmp_path / "local", runbook=runbook, redactor=Redactor())


def test_store_urls() -> None:
    assert open_store("s3://bucket/team/files/") == S3Store("bucket", "team/files")
    assert open_store("s3://bucket") == S3Store("bucket", "")
    assert open_store("evidence") == FolderStore(Path("evidence"))
    for bad in ("s3://", "https://example.com/x", " "):
        with pytest.raises(UsageError, match="--store"):
            open_store(bad)


def test_bundle_time_is_read_from_the_id() -> None:
    assert bundle_time("20261103T120000Z-ab12cd") == datetime(2026, 11, 3, 12, tzinfo=UTC)
    assert bundle_time("review-2026Q4") is None


def test_upload_to_a_folder_is_idempotent_per_bundle(
    tmp_path: Path, build: Builders, runbook: Runbook
) -> None:
    folder = _bundle(tmp_path, build, runbook)
    store = FolderStore(tmp_path / "store")
    first = store.upload(folder)
    assert first.sent
    assert (tmp_path / "store" / folder.name / "manifest.json").read_bytes() == (
        folder / "manifest.json"
    ).read_bytes()
    again = store.upload(folder)
    assert not again.sent
    assert store.fetch(parse_period("2026Q4"), tmp_path / "cache") == tmp_path / "store"


def test_another_bundle_under_a_stored_id_is_refused(
    tmp_path: Path, build: Builders, runbook: Runbook
) -> None:
    folder = _bundle(tmp_path, build, runbook)
    store = FolderStore(tmp_path / "store")
    store.upload(folder)
    (folder / "report.md").write_text("rewritten")
    (folder / "manifest.json").write_text('{"files": {}}')
    with pytest.raises(StoreError, match=f"bundle {folder.name} is already in the store"):
        store.upload(folder)
    assert "rewritten" not in (tmp_path / "store" / folder.name / "report.md").read_text()


def test_a_folder_without_manifest_is_not_uploaded(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(UsageError, match=r"not an evidence bundle \(no manifest.json\)"):
        FolderStore(tmp_path / "store").upload(tmp_path / "x")


def test_gate_store_uploads_a_bundle_with_a_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gate writes no evidence folder of its own: with --store its report becomes a
    bundle (gate.json, a journal naming the runbook, a manifest) in the store."""
    from runbook_checks.cli import main
    from runbook_checks.evidence.journal import load_journal
    from runbook_checks.evidence.manifest import verify_manifest

    shipped = Path(__file__).resolve().parents[3] / "runbooks" / "files-incident-response.md"
    store = tmp_path / "store"
    code = main(["gate", str(shipped), "--offline", "--store", str(store)])
    assert code in (0, 1)  # the gate's own verdict
    (bundle,) = store.iterdir()
    assert sorted(p.name for p in bundle.iterdir()) == [
        "gate.json",
        "journal.json",
        "manifest.json",
    ]
    assert verify_manifest(bundle).ok
    journal = load_journal(bundle)
    assert journal.kind == "gate"
    assert journal.environment.runbook.path.endswith("files-incident-response.md")
    assert journal.environment.backend == "offline"
    assert f"evidence {bundle.name} stored: {bundle}" in capsys.readouterr().out
