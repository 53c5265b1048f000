"""Plant known secrets in a stack, run drills with evidence, and look for them in EVERY
output: the evidence folder (journal, reports, bundle, the audit log), the JUnit file,
the captured stdout and stderr of the drill command, the service's own logs, the state
folders. Zero hits.

The planted secrets: the admin token the API is restarted with, the password of the
database role the drills connect as, and every user token the drills create (those are
made by the API and never seen by the test: a trigger keeps the sha256 the API stores,
and every token-shaped string in the outputs is hashed and looked up).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from runbook_checks.stack.base import Stack
from runbook_checks.stack.local import LocalStack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DRILLS = " or ".join(
    [
        "test_cause_1_a_recently_expired_share_is_extended",
        "test_cause_2_a_used_up_share_gets_more_downloads",
        "test_cause_3_a_soft_deleted_file_is_restored",
        "sev2_file_upload_failures",
    ]
)
TOKEN_RUN = re.compile(rb"[A-Za-z0-9_\-]{43,}")
TOKEN_LEN = 43  # secrets.token_urlsafe(32), the API's user tokens


@dataclass(frozen=True)
class Planted:
    admin_token: str
    db_role: str
    db_password: str
    environment: Path


@pytest.fixture
def planted(fresh_stack: Stack, tmp_path: Path) -> Iterator[Planted]:
    """The session's stack with an admin token and a database role the test chose, and
    a trigger that keeps the hash of every user token created meanwhile."""
    assert isinstance(fresh_stack, LocalStack)
    old_admin = fresh_stack.api.settings["ADMIN_TOKEN"]
    admin = "plantedAdmin" + secrets.token_hex(16)
    role = "drill_ops_" + secrets.token_hex(3)
    password = "plantedDbPw" + secrets.token_hex(12)
    ep = fresh_stack.endpoints
    with psycopg.connect(ep.admin_database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        conn.execute("CREATE TABLE IF NOT EXISTS planted_token_hashes (h text)")
        conn.execute(
            "CREATE OR REPLACE FUNCTION keep_token_hash() RETURNS trigger LANGUAGE plpgsql "
            "SECURITY DEFINER AS $$ BEGIN "
            "INSERT INTO planted_token_hashes VALUES (NEW.api_token_hash); RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER keep_token_hash AFTER INSERT ON users "
            "FOR EACH ROW EXECUTE FUNCTION keep_token_hash()"
        )
    fresh_stack.restart_api(ADMIN_TOKEN=admin)
    database_url = f"postgresql://{role}:{password}@127.0.0.1:{ep.database_port}/{ep.database_name}"
    environment = tmp_path / "environment.toml"
    environment.write_text(
        f'name = "secrets-drill"\napi_url = "{ep.api_url}"\n'
        f'database_url = "{database_url}"\nadmin_token = "{admin}"\n'
        f's3_endpoint = "{ep.s3_endpoint}"\nredis_url = "{ep.redis_url}"\n'
    )
    try:
        yield Planted(admin, role, password, environment)
    finally:
        fresh_stack.restart_api(ADMIN_TOKEN=old_admin)
        with psycopg.connect(ep.admin_database_url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER IF EXISTS keep_token_hash ON users")
            conn.execute("DROP FUNCTION IF EXISTS keep_token_hash()")
            conn.execute("DROP TABLE IF EXISTS planted_token_hashes")
            conn.execute(
                sql.SQL(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {}"
                ).format(sql.Literal(role))
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def token_hashes(stack: Stack) -> set[str]:
    with psycopg.connect(stack.endpoints.admin_database_url) as conn:
        return {str(r[0]) for r in conn.execute("SELECT h FROM planted_token_hashes")}


def user_tokens_in(data: bytes, hashes: set[str]) -> list[str]:
    """Token-shaped strings in `data` that are some drill user's token."""
    found = []
    for match in TOKEN_RUN.finditer(data):
        run = match.group()
        for start in range(len(run) - TOKEN_LEN + 1):
            candidate = run[start : start + TOKEN_LEN]
            if hashlib.sha256(candidate).hexdigest() in hashes:
                found.append(candidate.decode()[:6] + "…")
    return found


def test_no_planted_secret_reaches_any_output(
    planted: Planted,
    fresh_stack: Stack,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    out = tmp_path / "outputs"
    evidence = out / "evidence"
    junit = out / "junit.xml"
    work = Path(tempfile.mkdtemp(prefix="runbook-checks-secrets-"))
    work.chmod(0o755)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "runbook_checks.cli",
                "drill",
                "--backend",
                "external",
                "--evidence-dir",
                str(evidence),
                "--",
                "-k",
                DRILLS,
                f"--junitxml={junit}",
                "-o",
                "junit_logging=all",
            ],
            cwd=ROOT,
            capture_output=True,
            timeout=300,
            check=False,
            env={
                **os.environ,
                "RUNBOOK_CHECKS_ENVIRONMENT": str(planted.environment),
                "RUNBOOK_CHECKS_WORK_ROOT": str(work),
            },
        )
        (out / "stdout.txt").write_bytes(done.stdout)
        (out / "stderr.txt").write_bytes(done.stderr)
        assert done.returncode in (0, 1), done.stderr[-3000:].decode(errors="replace")
        assert junit.exists()
        bundles = [p for p in evidence.iterdir() if p.is_dir() and p.name != "audit"]
        assert bundles, "the drills wrote no evidence bundle"
        assert (evidence / "audit" / "secrets-drill.jsonl").exists()
        # the runbook's own commands ran with the planted credentials (a drill reached a
        # verdict: passed, or xfailed on a finding the baseline acknowledges)
        assert re.search(rb"\d+ (passed|xfailed)", done.stdout), done.stdout[-6000:].decode(
            errors="replace"
        )

        outputs = [p for p in out.rglob("*") if p.is_file()]
        outputs += [p for p in Path(fresh_stack.endpoints.log_dir).rglob("*") if p.is_file()]
        outputs += [p for p in work.rglob("*") if p.is_file()]
        hashes = token_hashes(fresh_stack)
        assert len(hashes) >= 3, "the drills created users (ledger, sharers, uploaders)"
        known = {
            "admin token": planted.admin_token.encode(),
            "database password": planted.db_password.encode(),
        }
        hits: list[str] = []
        for path in outputs:
            data = path.read_bytes()
            hits += [f"{name} in {path}" for name, value in known.items() if value in data]
            hits += [f"user token {t} in {path}" for t in user_tokens_in(data, hashes)]
        planted_count = len(known) + len(hashes)
        record_property(
            "figure",
            f"secrets: {planted_count} planted (admin token, database password, "
            f"{len(hashes)} user tokens), {len(hits)} found in {len(outputs)} output files",
        )
        assert hits == []
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_no_secret_of_a_local_stack_reaches_any_output(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """The local backend's own secrets (random per stack; the spy plugin records them
    once the stack is up): a real drill's outputs hold none of them."""
    out = tmp_path / "outputs"
    spy = tmp_path / "secrets.txt"
    work = Path(tempfile.mkdtemp(prefix="runbook-checks-secrets-"))
    work.chmod(0o755)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "runbook_checks.cli",
                "drill",
                "--evidence-dir",
                str(out / "evidence"),
                "--",
                "-k",
                "option_a_restart or used_up_share",
                "-p",
                "secret_spy",
                f"--junitxml={out / 'junit.xml'}",
                "-o",
                "junit_logging=all",
            ],
            cwd=ROOT,
            capture_output=True,
            timeout=300,
            check=False,
            env={
                **os.environ,
                "SECRET_SPY_FILE": str(spy),
                "RUNBOOK_CHECKS_WORK_ROOT": str(work),
                "PYTHONPATH": str(Path(__file__).parent),
            },
        )
        (out / "stdout.txt").write_bytes(done.stdout)
        (out / "stderr.txt").write_bytes(done.stderr)
        assert done.returncode == 0, done.stdout[-4000:].decode(errors="replace")
        known = [s for s in spy.read_text().split() if len(s) >= 8]
        assert len(known) >= 3, known  # admin token, superuser and app passwords
        outputs = [p for p in out.rglob("*") if p.is_file()]
        outputs += [p for p in work.rglob("*") if p.is_file()]
        hits = [
            f"secret {secret[:4]}… in {path}"
            for path in outputs
            for secret in known
            if secret.encode() in path.read_bytes()
        ]
        record_property(
            "figure",
            f"secrets (local stack): {len(known)} planted by the stack, {len(hits)} found in "
            f"{len(outputs)} output files",
        )
        assert hits == []
    finally:
        shutil.rmtree(work, ignore_errors=True)
