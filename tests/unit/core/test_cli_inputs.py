"""Every command checks its inputs once, up front: a bad runbook given to `drill` is one
clear error and exit 2, never one pytest error per scenario (no servers start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.cli import main


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01binary\x00", "binary content"),
        (None, "no such file"),
    ],
    ids=["empty", "binary", "missing"],
)
def test_drill_refuses_a_bad_runbook_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, said: str
) -> None:
    runbook = tmp_path / "runbook.md"
    if content is not None:
        runbook.write_bytes(content)
    assert main(["drill", "--runbook", str(runbook)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    assert said in err
    assert str(runbook) in err


def test_a_drill_leaves_the_test_suites_pytest_plugins_unloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dev extra's hypothesis and schemathesis register pytest plugins that every
    drill process (the session and each worker) would load for nothing; the drill's pytest
    is told not to, by the names they are installed under."""
    from importlib.metadata import entry_points

    import runbook_checks.cli as cli

    installed = {e.name for e in entry_points(group="pytest11")}
    assert set(cli.UNUSED_BY_DRILLS) <= installed, "a plugin's entry point was renamed"
    ran: list[list[str]] = []

    def pytest_main(argv: list[str]) -> int:
        ran.append(list(argv))
        return 0

    monkeypatch.setattr(pytest, "main", pytest_main)
    monkeypatch.chdir(tmp_path)
    runbook = Path(__file__).resolve().parents[3] / "runbooks" / "files-incident-response.md"
    assert main(["drill", "--runbook", str(runbook), "--workers", "1"]) == 0
    (argv,) = ran
    blocked = {argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-p"}
    assert {f"no:{name}" for name in cli.UNUSED_BY_DRILLS} <= blocked
    assert not any(name in blocked for name in ("no:xdist", "no:timeout", "no:runbook_checks"))


def test_up_has_the_control_plane_come_up_before_the_first_aws_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The local stack starts its AWS control plane at its first use; `up` is for people
    poking at the stack, whose first command may well be an aws one."""
    import contextlib
    import signal

    import runbook_checks.stack as stack_module
    from tests.fake_stack import offline_stack

    asked: list[str] = []

    class Stack:
        def __init__(self) -> None:
            self.__dict__.update(vars(offline_stack(tmp_path, prepare=asked.append)))

        def start(self) -> None:
            pass

        def __enter__(self) -> Stack:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    def interrupted() -> None:
        assert asked == ["aws"]  # asked for before the stack is handed over
        raise KeyboardInterrupt

    monkeypatch.setattr(stack_module, "create_stack", lambda config: Stack())
    monkeypatch.setattr(signal, "pause", interrupted)
    with contextlib.chdir(tmp_path):
        assert main(["up"]) == 0
    assert asked == ["aws"]
    assert "stopped; nothing left behind." in capsys.readouterr().out
