"""The Files runbook's profile, for tests that bind its names without a drill."""

from __future__ import annotations

from pathlib import Path

from runbook_checks.profile import load_profile

ROOT = Path(__file__).resolve().parents[1]
FILES_PROFILE_PATH = ROOT / "runbooks" / "files-incident-response.runbook-checks.toml"
FILES = load_profile(FILES_PROFILE_PATH)
