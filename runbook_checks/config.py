"""One frozen configuration object, folded from CLI flags and ini keys (pytest-postgresql's
pattern): every option is declared once, with one help text, in `OPTIONS`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from runbook_checks.errors import UsageError

BACKENDS = ("local", "docker", "external")


@dataclass(frozen=True)
class Option:
    name: str  # ini key, and the CLI flag as --NAME with dashes
    help: str
    default: str


OPTIONS: tuple[Option, ...] = (
    Option("runbook", "the runbook under test (Markdown)", "runbooks/files-incident-response.md"),
    Option("backend", f"where the stack runs: {', '.join(BACKENDS)}", "local"),
    Option("evidence_dir", "folder that receives the evidence of each drill", "evidence"),
    Option("pool_size", "DB_POOL_SIZE of the Files API in the stack", "20"),
)


@dataclass(frozen=True)
class ChecksConfig:
    runbook: Path
    backend: str
    evidence_dir: Path
    pool_size: int

    @classmethod
    def from_values(cls, values: dict[str, str], *, root: Path) -> ChecksConfig:
        backend = values["backend"]
        if backend not in BACKENDS:
            raise UsageError(f"--backend {backend!r} is not one of {', '.join(BACKENDS)}")
        try:
            pool = int(values["pool_size"])
            if pool < 1:
                raise ValueError
        except ValueError:
            raise UsageError(f"--pool-size {values['pool_size']!r}: expected a whole number >= 1"
                             ) from None
        runbook = Path(values["runbook"])
        evidence = Path(values["evidence_dir"])
        return cls(
            runbook=runbook if runbook.is_absolute() else root / runbook,
            backend=backend,
            evidence_dir=evidence if evidence.is_absolute() else root / evidence,
            pool_size=pool,
        )


class _PytestConfig(Protocol):
    rootpath: Path

    def getoption(self, name: str) -> object: ...

    def getini(self, name: str) -> object: ...


def from_pytest(config: _PytestConfig) -> ChecksConfig:
    values: dict[str, str] = {}
    for option in OPTIONS:
        flag = config.getoption(f"runbook_checks_{option.name}")
        ini = config.getini(f"runbook_checks_{option.name}")
        values[option.name] = str(flag if flag is not None else (ini or option.default))
    return ChecksConfig.from_values(values, root=config.rootpath)
