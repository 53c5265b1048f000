"""The engine holds no Files name (issue 13): everything the Files service is lives in
its kit (`files_profile/`) and its profile, so the engine drills any service whose kit
a profile names. Every file under runbook_checks/ is read, code, comments and docstrings
alike (examples in the engine use generic names: api.example.com, /api/orders)."""

from __future__ import annotations

import re
from pathlib import Path

from files_profile import DATA, TWIN, VOCABULARY

ROOT = Path(__file__).resolve().parents[3]
ENGINE = ROOT / "runbook_checks"

# the Files runbook's, the twin's and the kit's names (matched case-insensitively)
NAMES = (
    "rolerabbit",
    "files_api",
    "files_profile",
    "/api/storage",
    "/api/shares",
    "file_shares",
    "storage_files",
    "upload_failures",
    "feature_flags",
    "FilesClient",
    "FILES_API",
    "supabase",
    "files-incident-response",  # the runbook's file name (the default runbook is found)
    "files-api",  # the twin's container image (the kit names it: twin.image)
)
# the twin's metric and table names, as its kit declares them. Not the pool's size gauge:
# `db_pool_size` is also a generic field name (LoadIncrease.db_pool_size).
KIT_NAMES = (
    VOCABULARY.requests_total,
    VOCABULARY.duration_bucket.removesuffix("_bucket"),
    VOCABULARY.pool_connections,
    VOCABULARY.pool.in_use,
    VOCABULARY.pool.waiting,
    VOCABULARY.pool.connections,
    VOCABULARY.pool.timeouts_total,
    DATA.objects,
    DATA.shares,
    DATA.failures,
    DATA.owner_index,
    DATA.listing_cache_key.split("{")[0],
)
# matched as written: the twin's setting names (environment-variable style) and what
# customers call the service
EXACT_NAMES = (
    TWIN.release_setting,
    TWIN.pool_size_setting,
    TWIN.quota_setting,
    TWIN.upload_timeout_setting,
    VOCABULARY.customer_name,
    *(feature for _, feature in VOCABULARY.customer_features),
)


def files_names_in(root: Path) -> list[str]:
    """Every line of every file under `root` that names the Files service, as
    `path:line: name`."""
    anycase = "|".join(re.escape(n) for n in (*NAMES, *KIT_NAMES))
    pattern = re.compile(f"(?i:{anycase})|" + "|".join(re.escape(n) for n in EXACT_NAMES))
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            for match in pattern.finditer(line):
                found.append(f"{path.relative_to(root.parent)}:{number}: {match.group(0)}")
    return found


def test_the_engine_holds_no_files_name() -> None:
    found = files_names_in(ENGINE)
    assert not found, "Files names in the engine (move them to files_profile/):\n" + "\n".join(
        found
    )


def test_a_files_name_anywhere_in_the_engine_is_named_by_file_and_line(tmp_path: Path) -> None:
    engine = tmp_path / "runbook_checks"
    (engine / "faults").mkdir(parents=True)
    (engine / "faults" / "x.py").write_text(
        '"""Generic."""\n\nQUERY = "SELECT 1"  # from Storage_Files\n', encoding="utf-8"
    )
    (engine / "README.md").write_text(f"rate({VOCABULARY.requests_total}[5m])\n", encoding="utf-8")
    (engine / "__pycache__").mkdir()
    (engine / "__pycache__" / "x.pyc").write_text("storage_files", encoding="utf-8")
    assert files_names_in(engine) == [
        f"runbook_checks/README.md:1: {VOCABULARY.requests_total}",
        "runbook_checks/faults/x.py:3: Storage_Files",
    ]
