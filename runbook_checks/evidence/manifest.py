"""manifest.json: the sha256 of every file of a bundle, so it can be shown unaltered.

`write_manifest` hashes every file under the folder (except the manifest itself);
`verify_manifest` says which files were altered, are missing or were added since.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
ALGORITHM = "sha256"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST
    )


def write_manifest(folder: Path, bundle_id: str = "") -> Path:
    files = {name: sha256_file(folder / name) for name in _files(folder)}
    document = {"bundle": bundle_id or folder.name, "algorithm": ALGORITHM, "files": files}
    path = folder / MANIFEST
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class ManifestCheck:
    folder: Path
    verified: tuple[str, ...] = ()
    altered: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    problem: str = ""  # the manifest itself is missing or unreadable

    @property
    def ok(self) -> bool:
        return not (self.altered or self.missing or self.extra or self.problem)

    def lines(self) -> list[str]:
        if self.problem:
            return [self.problem]
        out = [f"altered: {name} (sha256 differs from the manifest)" for name in self.altered]
        out += [
            f"missing: {name} (listed in the manifest, not in the folder)" for name in self.missing
        ]
        out += [f"extra: {name} (in the folder, not in the manifest)" for name in self.extra]
        return out


def verify_manifest(folder: Path) -> ManifestCheck:
    path = folder / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        listed = document["files"]
        if document.get("algorithm", ALGORITHM) != ALGORITHM or not isinstance(listed, dict):
            raise ValueError("not a sha256 manifest")
    except FileNotFoundError:
        return ManifestCheck(folder, problem=f"{path}: no manifest (is this an evidence folder?)")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return ManifestCheck(folder, problem=f"{path}: unreadable manifest: {exc}")
    present = set(_files(folder))
    altered, verified, missing = [], [], []
    for name, digest in sorted(listed.items()):
        if name not in present:
            missing.append(name)
        elif sha256_file(folder / name) != digest:
            altered.append(name)
        else:
            verified.append(name)
    extra = sorted(present - set(listed))
    return ManifestCheck(folder, tuple(verified), tuple(altered), tuple(missing), tuple(extra))
