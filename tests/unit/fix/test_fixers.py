"""One fixer per finding kind, on a few lines of Markdown: each changes exactly the
characters that are wrong, and gives up (None) where the fix is not mechanical."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.findings import Finding, Level
from runbook_checks.fix.fixers import (
    Models,
    fix_aws,
    fix_column,
    fix_curl_auth,
    fix_curl_method,
    fix_expiry,
    fix_idempotent_ddl,
    fix_mis_encoded,
    fix_table,
)
from runbook_checks.fix.plan import plan_fixes
from runbook_checks.gate.locate import runbook_steps
from runbook_checks.runbook.parser import parse_text

HEAD = "## SEV-1: Outage\n\n### Symptoms\n- errors\n\n### Investigation\n\n"


def runbook_of(*blocks: str, options: str = "") -> tuple[Models, list[str]]:
    """A one-section runbook whose investigation holds `blocks`; its models and lines."""
    text = HEAD + "\n".join(blocks) + "\n### Mitigation\n\n" + (options or "Restart.\n")
    runbook = parse_text(text, Path("runbook.md"))
    return Models(runbook, runbook_steps(runbook)), text.split("\n")


def line_of(lines: list[str], needle: str) -> int:
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


def finding(kind: str, line: int, **fields: str) -> Finding:
    return Finding(Level.ERROR, kind, "sev-1-outage", fields.pop("message", "m"), line, **fields)


# -- mis-encoded text --------------------------------------------------------------------


def test_mojibake_is_repaired_and_nothing_else_on_the_line_changes() -> None:
    lines = ["- ðŸŸ¡ Investigating â€” naïve “quotes” → kept, â†’ twice â†’"]
    edit = fix_mis_encoded(finding("text-mis-encoded", 1), lines)
    assert edit is not None
    assert edit.new == "- 🟡 Investigating — naïve “quotes” → kept, → twice →"
    assert (edit.line, edit.old) == (1, lines[0])


def test_a_line_without_mojibake_is_not_edited() -> None:
    assert fix_mis_encoded(finding("text-mis-encoded", 1), ["Café → ok"]) is None


# -- aws -------------------------------------------------------------------------------


def test_an_operation_of_the_sibling_service_and_its_required_parameter() -> None:
    models, lines = runbook_of(
        "```bash\naws elb deregister-targets --target-group-arn PRIMARY  # switch\n```\n"
    )
    at = line_of(lines, "aws elb")
    edit = fix_aws(finding("aws-invalid-operation", at), lines, models)
    assert edit is not None
    assert edit.new == (
        "aws elbv2 deregister-targets --target-group-arn PRIMARY --targets Id=TARGET_ID  # switch"
    )
    assert "elbv2" in edit.why
    assert "--targets" in edit.why
    assert "`--targets Id=TARGET_ID`: write the real value" in edit.todo
    # the plan lists the placeholder for the owner
    proposal = plan_fixes([finding("aws-invalid-operation", at)], lines, models)
    assert [(o.finding.kind, o.finding.line) for o in proposal.owner_items] == [
        ("fix-placeholder", at)
    ]


def test_a_misnamed_operation_is_renamed_on_the_first_line_of_a_continued_command() -> None:
    models, lines = runbook_of(
        "```bash\naws rds restore-db-instance-from-snapshot \\\n"
        "  --db-instance-identifier restored-db \\\n"
        "  --db-snapshot-identifier snap-1\n```\n"
    )
    at = line_of(lines, "aws rds")
    edit = fix_aws(finding("aws-invalid-operation", at), lines, models)
    assert edit is not None
    assert edit.new == "aws rds restore-db-instance-from-db-snapshot \\"


def test_a_missing_parameter_of_a_continued_command_goes_after_the_operation() -> None:
    models, lines = runbook_of(
        "```bash\naws elbv2 register-targets \\\n  --target-group-arn STANDBY\n```\n"
    )
    at = line_of(lines, "aws elbv2")
    edit = fix_aws(finding("aws-invalid-parameters", at), lines, models)
    assert edit is not None
    assert edit.new == "aws elbv2 register-targets --targets Id=TARGET_ID \\"


def test_a_right_aws_line_or_one_with_two_readings_is_left_alone() -> None:
    models, lines = runbook_of(
        "```bash\naws rds describe-db-instances\n"
        "aws ec2 modify-instance-attribute --instance-id i-1 --instance-typ t3.large\n```\n"
    )
    for needle in ("describe-db-instances", "modify-instance-attribute"):
        at = line_of(lines, needle)
        assert fix_aws(finding("aws-invalid-parameters", at), lines, models) is None


# -- curl ------------------------------------------------------------------------------


def test_the_profiles_header_for_the_route_goes_right_after_curl() -> None:
    models, lines = runbook_of(
        "```bash\ncurl -X POST https://api.example.test/admin/cache/warm\n```\n"
    )
    models = Models(models.runbook, models.steps, {"/admin/": "Authorization: Bearer $ADMIN_TOKEN"})
    at = line_of(lines, "curl")
    suggestion = '`curl -H "Authorization: Bearer TOKEN" -X POST ...`'
    edit = fix_curl_auth(finding("curl-missing-auth", at, suggestion=suggestion), lines, models)
    assert edit is not None
    assert edit.new == (
        'curl -H "Authorization: Bearer $ADMIN_TOKEN" -X POST '
        "https://api.example.test/admin/cache/warm"
    )


def test_without_a_profile_header_the_documents_placeholder_is_used_if_the_profile_binds_it() -> (
    None
):
    models, lines = runbook_of("```bash\ncurl -w '%{time_total}' https://api.test/api/files\n```\n")
    at = line_of(lines, "curl")
    suggestion = '`curl -H "Authorization: Bearer TOKEN" -w ...`'
    wanted = finding("curl-missing-auth", at, suggestion=suggestion)
    assert fix_curl_auth(wanted, lines, models) is None  # TOKEN: bound by nobody
    bound = Models(models.runbook, models.steps, placeholders=("TOKEN", "FILE_ID"))
    edit = fix_curl_auth(wanted, lines, bound)
    assert edit is not None
    assert edit.new.startswith('curl -H "Authorization: Bearer TOKEN" -w')


def test_a_literal_credential_is_never_written_and_a_sent_header_never_doubled() -> None:
    models, lines = runbook_of(
        "```bash\ncurl https://api.test/admin/x\n"
        'curl -H "Authorization: Bearer $T" https://api.test/admin/y\n```\n'
    )
    first, second = line_of(lines, "admin/x"), line_of(lines, "admin/y")
    for literal in ("s3cr3t-v4lue", "AKIAIOSFODNN7EXAMPLE"):
        secret = Models(
            models.runbook, models.steps, {"/admin/": f"Authorization: Bearer {literal}"}
        )
        assert fix_curl_auth(finding("curl-missing-auth", first), lines, secret) is None
    profile = Models(models.runbook, models.steps, {"/admin/": "Authorization: Bearer $T"})
    assert fix_curl_auth(finding("curl-missing-auth", second), lines, profile) is None


# -- SQL -------------------------------------------------------------------------------


class FakeSchema:
    def __init__(self, tables: dict[str, list[str]]) -> None:
        self.tables = tables

    def columns(self, table: str) -> list[str]:
        return self.tables.get(table, [])

    def relations(self) -> list[str]:
        return list(self.tables)


SELECT = (
    "```sql\nSELECT user_id, subscription_tier\nFROM users\n"
    "WHERE id IN (SELECT DISTINCT user_id FROM upload_failures);\n```\n"
)


def _column_finding(lines: list[str], statement: str) -> Finding:
    return finding(
        "sql-undefined-column",
        line_of(lines, "SELECT user_id"),
        message='column "user_id" does not exist [SQLSTATE 42703] on the twin\'s schema',
        statement=statement,
    )


def test_a_wrong_column_is_replaced_by_the_schemas_closest_one_on_its_line_only() -> None:
    models, lines = runbook_of(SELECT)
    statement = " ".join(lines[line_of(lines, "SELECT user_id") - 1 :][:3])
    schema = FakeSchema(
        {"users": ["id", "email", "subscription_tier"], "upload_failures": ["id", "user_id"]}
    )
    models = Models(models.runbook, models.steps, schema=schema)
    edit = fix_column(_column_finding(lines, statement), lines, models)
    assert edit is not None
    assert edit.new == "SELECT id, subscription_tier"
    assert "users has id" in edit.why


def test_two_equally_close_columns_are_the_owners_choice() -> None:
    models, lines = runbook_of(SELECT)
    statement = " ".join(lines[line_of(lines, "SELECT user_id") - 1 :][:3])
    schema = FakeSchema({"users": ["users_id", "user_ids"], "upload_failures": ["user_id"]})
    models = Models(models.runbook, models.steps, schema=schema)
    assert fix_column(_column_finding(lines, statement), lines, models) is None
    assert fix_column(_column_finding(lines, statement), lines, Models(models.runbook)) is None


@pytest.mark.parametrize(
    ("written", "fixed"),
    [
        (
            "CREATE INDEX CONCURRENTLY idx_files_user",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_files_user",
        ),
        ("create unique index idx_u", "create unique index if not exists idx_u"),
        (
            "ALTER TABLE files ADD COLUMN size bigint;",
            "ALTER TABLE files ADD COLUMN IF NOT EXISTS size bigint;",
        ),
        ("CREATE TABLE IF NOT EXISTS t (a int);", None),
        ("CREATE INDEX ON files(user_id);", None),  # no name: IF NOT EXISTS needs one
    ],
)
def test_ddl_is_made_idempotent_where_it_can_be(written: str, fixed: str | None) -> None:
    rest = "" if written.endswith(";") else "\nON files(user_id);"
    models, lines = runbook_of(f"```sql\n{written}{rest}\n```\n")
    at = line_of(lines, written)
    edit = fix_idempotent_ddl(finding("sql-already-exists", at), lines, models)
    assert (edit.new if edit else None) == fixed


@pytest.mark.parametrize(
    "interval", ["INTERVAL '7 days'", "'7 days'::interval", "make_interval(days => 7)"]
)
def test_an_expiry_extended_from_its_old_value_is_extended_from_now(interval: str) -> None:
    options = (
        "**1. Share Expired**\n```sql\nUPDATE file_shares\n"
        f"SET expires_at = expires_at + {interval}\nWHERE token = 'abc';\n```\n"
    )
    models, lines = runbook_of("```bash\npg_isready\n```\n", options=options)
    drill = finding(
        "mitigation-did-not-recover",
        0,
        statement="1. Share Expired :: the share expired 90 days ago",
    )
    edit = fix_expiry(drill, lines, models)
    assert edit is not None
    assert edit.new == f"SET expires_at = GREATEST(expires_at, NOW()) + {interval}"
    other = finding("mitigation-did-not-recover", 0, statement="2. Other :: x")
    assert fix_expiry(other, lines, models) is None


def test_a_line_naming_the_column_twice_is_the_owners_to_read() -> None:
    one_line = "SELECT user_id FROM users WHERE id IN (SELECT user_id FROM upload_failures);"
    models, lines = runbook_of(f"```sql\n{one_line}\n```\n")
    schema = FakeSchema({"users": ["id", "email"], "upload_failures": ["user_id"]})
    models = Models(models.runbook, models.steps, schema=schema)
    assert fix_column(_column_finding(lines, one_line), lines, models) is None


@pytest.mark.parametrize(
    ("written", "suggestion", "fixed"),
    [
        ("curl -X GET https://api.test/admin/warm", "use -X POST", "curl -X POST https://api.test/admin/warm"),
        ("curl https://api.test/admin/warm", "use -X POST", "curl -X POST https://api.test/admin/warm"),
        ("curl --request PUT https://api.test/health", "drop -X / the request body", "curl https://api.test/health"),
        ("curl -X PUT -d '{}' https://api.test/health", "drop -X / the request body", None),
    ],
)  # fmt: skip
def test_the_method_the_route_answers(written: str, suggestion: str, fixed: str | None) -> None:
    models, lines = runbook_of(f"```bash\n{written}\n```\n")
    wrong = finding("curl-wrong-method", line_of(lines, "curl"), suggestion=suggestion)
    edit = fix_curl_method(wrong, lines, models)
    assert (edit.new if edit else None) == fixed


def test_a_misspelt_table_is_the_schemas_closest_one_unless_an_extension_brings_it() -> None:
    models, lines = runbook_of("```sql\nSELECT count(*) FROM storage_file;\n```\n")
    schema = FakeSchema({"storage_files": ["id"], "file_shares": ["token"]})
    models = Models(models.runbook, models.steps, schema=schema)
    at = line_of(lines, "storage_file")
    message = 'relation "storage_file" does not exist [SQLSTATE 42P01]'
    edit = fix_table(finding("sql-undefined-table", at, message=message), lines, models)
    assert edit is not None
    assert edit.new == "SELECT count(*) FROM storage_files;"
    extension = finding(
        "sql-undefined-table",
        at,
        message=message,
        suggestion="storage_file comes with the storage extension, not installed here",
    )
    assert fix_table(extension, lines, models) is None
