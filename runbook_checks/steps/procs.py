"""Running commands as argv lists (never through a shell), alone or as a pipeline.

A pipeline's stages are chained the way a shell chains them (stdout of one is the stdin
of the next) with `subprocess.Popen`; its exit code is the last stage's (a shell
without `pipefail`). Every run has a deadline: on expiry every stage is killed and the
outcome says so. stderr goes to a temporary file per stage so a chatty stage can never
block the pipe.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


@dataclass(frozen=True)
class ProcOutcome:
    exit_codes: tuple[int | None, ...]  # per stage; None when killed at the deadline
    stdout: bytes
    stderr: str  # all stages' stderr, in stage order
    timed_out: bool = False

    @property
    def exit_code(self) -> int | None:
        """The pipeline's status: the last stage's exit code."""
        return self.exit_codes[-1] if self.exit_codes else None

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")


def find_tool(name: str) -> str | None:
    """The executable for `name`: PATH, then PostgreSQL's bin folders (newest first)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        Path("/").glob(PG_BIN_GLOB.lstrip("/")),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    for folder in candidates:
        path = folder / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def _version_key(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        parts.append(int(piece) if piece.isdigit() else 0)
    return tuple(parts)


def tool_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A small, predictable environment: C locale, no proxies, HOME in the work folder."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "COLUMNS": "200",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if extra:
        env.update(extra)
    return env


def run_pipeline(
    stages: Sequence[Sequence[str]],
    *,
    timeout_s: float,
    env: Mapping[str, str],
    cwd: Path,
    stdin: bytes | None = None,
) -> ProcOutcome:
    """Run `stages` chained by pipes; wait at most `timeout_s` for the last to finish."""
    if not stages:
        raise ValueError("a pipeline needs at least one stage")
    procs: list[subprocess.Popen[bytes]] = []
    errs: list[IO[bytes]] = []  # one temporary file per stage
    previous: IO[bytes] | None = None
    try:
        for index, argv in enumerate(stages):
            err_file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finally
            errs.append(err_file)
            last = index == len(stages) - 1
            if previous is not None:
                stage_in: IO[bytes] | int = previous
            elif stdin is not None:
                stage_in = subprocess.PIPE
            else:
                stage_in = subprocess.DEVNULL
            proc = subprocess.Popen(  # argv list, no shell
                list(argv),
                stdin=stage_in,
                stdout=subprocess.PIPE,
                stderr=err_file,
                env=dict(env),
                cwd=str(cwd),
                start_new_session=True,
            )
            procs.append(proc)
            if previous is not None:
                previous.close()  # the next stage owns it now (SIGPIPE reaches the writer)
            previous = None if last else proc.stdout
        first, final = procs[0], procs[-1]
        if stdin is not None and first.stdin is not None:
            if first is final:
                pass  # communicate() writes it
            else:
                with contextlib.suppress(BrokenPipeError):
                    first.stdin.write(stdin)
                first.stdin.close()
        timed_out = False
        try:
            out, _ = final.communicate(input=stdin if first is final else None, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_all(procs)
            out, _ = final.communicate()
        codes: list[int | None] = []
        for proc in procs:
            try:
                codes.append(proc.wait(timeout=max(timeout_s, 1.0)))
            except subprocess.TimeoutExpired:
                _kill_all(procs)
                timed_out = True
                codes.append(None)
        if timed_out:
            codes = [None if c is not None and c < 0 else c for c in codes]
        stderr_parts: list[str] = []
        for stage_err in errs:
            stage_err.seek(0)
            stderr_parts.append(stage_err.read().decode(errors="replace"))
        return ProcOutcome(tuple(codes), out or b"", "".join(stderr_parts), timed_out)
    finally:
        _kill_all(procs)
        for proc in procs:
            for stream in (proc.stdout, proc.stdin):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
        for stage_err in errs:
            stage_err.close()


def _kill_all(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """Kill every stage still running (each by its own process group)."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, 9)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
