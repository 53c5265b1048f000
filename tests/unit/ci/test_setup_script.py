"""scripts/setup.sh decides how to install Debian packages: as root, through `sudo -n`, or
not at all (the missing packages named with the command, exit 2).

The real script runs with a PATH of fakes only: `id` says who we are, `sudo` answers
without a password or asks for one, `apt-get`, `systemctl`, `tee` ... record their argv
in a log and do nothing. The tools it looks for (redis-server, pg_config, runuser,
chromium, Prometheus' binaries) are there or not per case, and $PG_LIB points at an
empty folder, so the machine's own installs do not count. After the Debian part the real
script would build the venv: the cases that get that far give it a venv whose stamp is
current, so it stops there, as it does on a machine that is already set up.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SETUP = REPO / "scripts" / "setup.sh"
BASH = shutil.which("bash") or "/bin/bash"

REQUIRED = ("redis-server", "pg_config", "runuser")
OPTIONAL = (
    "chromium",
    "prometheus",
    "prometheus-alertmanager",
    "prometheus-postgres-exporter",
    "prometheus-redis-exporter",
)
#: real tools the script needs beside the fakes
REAL_TOOLS = ("dirname", "ls", "cat", "sha256sum", "cut", "env", "sed")

RECORD = '#!{bash}\nprintf "%s\\n" "$(basename "$0") $*" >>"$FAKE_LOG"\n'
FAKE_ID = '#!{bash}\n[ "$1" = -u ] && echo "$FAKE_UID" || echo "uid=$FAKE_UID"\n'
# sudo -n: without a password (FAKE_SUDO=ok) it runs the command, through this PATH's
# fakes; else it refuses as the real one does.
FAKE_SUDO = """#!{bash}
printf "%s\\n" "sudo $*" >>"$FAKE_LOG"
[ "$1" = -n ] && shift
if [ "$FAKE_SUDO" != ok ]; then echo "sudo: a password is required" >&2; exit 1; fi
exec "$@"
"""
FAKE_APT = """#!{bash}
printf "%s\\n" "apt-get $* [DEBIAN_FRONTEND=${{DEBIAN_FRONTEND:-}}]" >>"$FAKE_LOG"
"""


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    log: list[str]  # every fake's argv, in order


@dataclass
class Machine:
    """A fake machine for one run of the real setup.sh."""

    tmp: Path
    uid: int = 1001
    sudo: str | None = "ok"  # "ok": no password asked; "password"; None: no sudo at all
    present: tuple[str, ...] = ()  # tools found on PATH
    venv_ready: bool = True  # a venv whose stamp is current (the script stops there)
    ensurepip: bool = True
    policy_rc_d: bool = False  # the machine has a policy-rc.d of its own

    def run(self, *args: str) -> Run:
        bin_dir = self.tmp / "bin"
        bin_dir.mkdir()
        for tool in REAL_TOOLS:
            real = shutil.which(tool)
            assert real, tool
            (bin_dir / tool).symlink_to(real)
        fakes = {"id": FAKE_ID, "apt-get": FAKE_APT}
        for name in ("systemctl", "sh", "rm", "basename", "true", *self.present):
            fakes[name] = RECORD
        if self.sudo is not None:
            fakes["sudo"] = FAKE_SUDO
        for name, text in fakes.items():
            path = bin_dir / name
            path.write_text(text.format(bash=BASH))
            path.chmod(0o755)
        (bin_dir / "basename").unlink()  # RECORD itself calls basename: the real one
        (bin_dir / "basename").symlink_to(shutil.which("basename") or "/usr/bin/basename")
        python = self.tmp / "python3"  # $PYTHON: only asked whether ensurepip is there
        python.write_text(f"#!{BASH}\nexit {0 if self.ensurepip else 1}\n")
        python.chmod(0o755)
        venv = self.tmp / "venv"
        if self.venv_ready:
            (venv / "bin").mkdir(parents=True)
            (venv / "bin" / "python").symlink_to(python)
            want = (REPO / "pyproject.toml").read_bytes() + SETUP.read_bytes()
            (venv / ".runbook-checks-setup").write_text(hashlib.sha256(want).hexdigest()[:16])
        log = self.tmp / "log"
        log.touch()
        (self.tmp / "pg").mkdir(exist_ok=True)
        if self.policy_rc_d:
            (self.tmp / "policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
        env = {
            "PATH": str(bin_dir),
            "HOME": str(self.tmp),
            "FAKE_LOG": str(log),
            "FAKE_UID": str(self.uid),
            "FAKE_SUDO": self.sudo or "",
            "VENV": str(venv),
            "PYTHON": str(python),
            "PG_LIB": str(self.tmp / "pg"),
            "POLICY_RC_D": str(self.tmp / "policy-rc.d"),
        }
        done = subprocess.run(
            [BASH, str(SETUP), *args], env=env, capture_output=True, text=True, timeout=30
        )
        assert "Traceback" not in done.stderr
        lines = [line for line in log.read_text().splitlines() if not line.startswith("true")]
        return Run(done.returncode, done.stdout, done.stderr, lines)


MISSING = "redis-server postgresql postgresql-contrib"
WRITE_POLICY = (
    'printf "#!/bin/sh\\n# runbook-checks setup: no service starts during its install'
    '\\nexit 101\\n" >"$1" && chmod 755 "$1"'
)


def test_as_root_apt_get_runs_directly(tmp_path: Path) -> None:
    run = Machine(tmp_path, uid=0, sudo=None, present=("runuser", *OPTIONAL)).run()
    assert run.code == 0, run.stderr
    assert run.log == [
        "apt-get update -qq [DEBIAN_FRONTEND=]",
        f"apt-get install -y -qq --no-install-recommends {MISSING} "
        "[DEBIAN_FRONTEND=noninteractive]",
    ]
    assert f"installing Debian packages: {MISSING}" in run.stdout


def test_root_never_asks_sudo_even_where_it_would_answer(tmp_path: Path) -> None:
    run = Machine(tmp_path, uid=0, sudo="ok", present=("runuser", *OPTIONAL)).run()
    assert run.code == 0, run.stderr
    assert not [line for line in run.log if line.startswith("sudo")]


def test_not_root_with_passwordless_sudo_installs_through_sudo_n(tmp_path: Path) -> None:
    run = Machine(tmp_path, uid=1001, sudo="ok", present=("runuser", *OPTIONAL)).run()
    assert run.code == 0, run.stderr
    assert run.log == [
        "sudo -n true",  # the question: can sudo run without a password?
        "sudo -n apt-get update -qq",
        "apt-get update -qq [DEBIAN_FRONTEND=]",
        f"sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        f"--no-install-recommends {MISSING}",
        f"apt-get install -y -qq --no-install-recommends {MISSING} "
        "[DEBIAN_FRONTEND=noninteractive]",
    ]


@pytest.mark.parametrize("sudo", ["password", None], ids=["sudo-asks-a-password", "no-sudo"])
def test_neither_root_nor_sudo_names_the_packages_and_the_command(
    tmp_path: Path, sudo: str | None
) -> None:
    run = Machine(tmp_path, uid=1001, sudo=sudo, present=("runuser", *OPTIONAL)).run()
    assert run.code == 2
    assert f"setup: missing Debian packages: {MISSING}" in run.stderr
    assert f"sudo apt-get install -y --no-install-recommends {MISSING}" in run.stderr
    assert not [line for line in run.log if line.startswith("apt-get")]
    assert run.log == (["sudo -n true"] if sudo else [])


def test_nothing_missing_asks_nobody(tmp_path: Path) -> None:
    run = Machine(tmp_path, uid=1001, sudo="password", present=(*REQUIRED, *OPTIONAL)).run()
    assert (run.code, run.log, run.stderr) == (0, [], "")


def test_optional_parts_without_root_are_named_not_fatal(tmp_path: Path) -> None:
    run = Machine(tmp_path, uid=1001, sudo="password", present=REQUIRED).run()
    assert run.code == 0, run.stderr
    assert run.log == ["sudo -n true"]
    assert (
        "optional prometheus prometheus-alertmanager prometheus-postgres-exporter "
        "prometheus-redis-exporter missing: stacks start without monitoring; install with: "
        "sudo apt-get install -y --no-install-recommends prometheus" in run.stderr
    )


@pytest.mark.parametrize(("uid", "prefix"), [(0, ""), (1001, "sudo -n ")], ids=["root", "sudo"])
def test_dry_run_prints_every_privileged_command_and_runs_none(
    tmp_path: Path, uid: int, prefix: str
) -> None:
    run = Machine(tmp_path, uid=uid, present=(), venv_ready=False, ensurepip=False).run("--dry-run")
    policy = tmp_path / "policy-rc.d"
    assert run.code == 0, run.stderr
    assert run.log == ([] if uid == 0 else ["sudo -n true"])  # nothing ran
    would = [
        line.removeprefix("setup: would run: ")
        for line in run.stdout.splitlines()
        if line.startswith("setup: would run: ")
    ]
    mon = (
        "prometheus prometheus-alertmanager prometheus-postgres-exporter prometheus-redis-exporter"
    )
    install = "env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends"
    expected = [
        f"{prefix}apt-get update -qq",
        # runuser (util-linux) only as root: only root runs tools as the postgres user
        f"{prefix}{install} {MISSING}{' util-linux' if uid == 0 else ''} python3-venv",
        f"{prefix}apt-get update -qq",
        f"{prefix}{install} chromium fonts-dejavu-core",
        # the services of the monitoring packages are kept from starting, through sudo too
        f"{prefix}sh -c {WRITE_POLICY} sh {policy}",
        f"{prefix}apt-get update -qq",
        f"{prefix}{install} {mon}",
        *(f"{prefix}systemctl disable {unit}.service" for unit in mon.split()),
        f"{prefix}rm -f {policy}",
    ]
    assert would == expected
    assert run.stdout.rstrip().endswith("pip install -e '.[load,dev,docker]'")


def test_dry_run_without_root_still_exits_2_naming_what_is_missing(tmp_path: Path) -> None:
    run = Machine(tmp_path, uid=1001, sudo=None, present=("pg_config",), venv_ready=False).run(
        "--dry-run"
    )
    assert run.code == 2
    assert "missing Debian packages: redis-server\n" in run.stderr  # runuser: root's only
    assert "sudo apt-get install -y --no-install-recommends redis-server\n" in run.stderr
    assert "would run" not in run.stdout


def test_unknown_argument_is_refused(tmp_path: Path) -> None:
    run = Machine(tmp_path, present=(*REQUIRED, *OPTIONAL)).run("--dryrun")
    assert run.code == 2
    assert "unknown argument --dryrun" in run.stderr


def test_postgres_is_found_in_pg_lib(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=1001, sudo=None, present=("redis-server", "runuser"))
    initdb = tmp_path / "pg" / "15" / "bin" / "initdb"
    initdb.parent.mkdir(parents=True)
    initdb.touch()
    os.chmod(initdb, 0o755)
    run = machine.run()
    assert run.code == 0, run.stderr
    assert "postgresql" not in run.stderr.replace("prometheus-postgres-exporter", "")


def test_a_policy_rc_d_of_the_machine_is_left_alone(tmp_path: Path) -> None:
    machine = Machine(tmp_path, uid=1001, present=(*REQUIRED, "chromium"), policy_rc_d=True)
    run = machine.run("--dry-run")
    assert run.code == 0, run.stderr
    assert "policy-rc.d" not in run.stdout
    assert "apt-get install -y -qq --no-install-recommends prometheus " in run.stdout
    assert (tmp_path / "policy-rc.d").read_text() == "#!/bin/sh\nexit 101\n"
