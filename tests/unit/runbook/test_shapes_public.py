"""Other teams' runbooks, in the shapes public runbooks are written in, parse into steps.

The fixtures (tests/fixtures/runbooks/public/) are written here in the styles of public
runbooks: an alert page (Overview/Impact/Diagnosis/Mitigation), a troubleshooting page
of psql transcripts, a numbered cloud restore procedure, a Kubernetes volume alert, a
page with its severity in front matter, and a GitLab-style troubleshooting page with `$`
prompts and output. Every command in each is listed here with its line, kind and tool:
output lines of a transcript are never steps.
"""

from __future__ import annotations

import shlex
import textwrap
from pathlib import Path

import pytest

from runbook_checks.gate.locate import runbook_steps
from runbook_checks.runbook import Runbook, StepKind, parse_runbook, parse_text
from runbook_checks.runbook.classify import classify
from runbook_checks.runbook.shape import Shape
from runbook_checks.runbook.transcript import client_entries

PUBLIC = Path(__file__).resolve().parents[2] / "fixtures" / "runbooks" / "public"

SQL, SHELL, MANUAL, HTTP, AWS = (
    StepKind.SQL,
    StepKind.SHELL,
    StepKind.MANUAL,
    StepKind.HTTP,
    StepKind.AWS,
)

# every step of each fixture: (line, kind, tool)
EXPECTED: dict[str, list[tuple[int, StepKind, str]]] = {
    "alert-postgres-replication-lag.md": [
        (24, MANUAL, "promql"),
        (30, MANUAL, "kubectl"),
        (31, MANUAL, "kubectl"),
        (37, SQL, "sql"),
        (41, SQL, "sql"),
        (52, SQL, "sql"),
        (62, MANUAL, "kubectl"),
        (63, MANUAL, "kubectl"),
    ],
    "troubleshooting-connections-psql.md": [
        (16, MANUAL, "psql"),  # `$ sudo -u postgres psql orders`: the session opens
        (20, SQL, "psql"),  # orders=# select ... / orders-# from ... / orders-# group by
        (30, SQL, "psql"),  # show max_connections;
        (40, SQL, "psql"),  # \x
        (42, SQL, "psql"),
        (58, SQL, "psql"),  # orders=> (not a superuser)
        (71, SQL, "psql"),
        (85, SQL, "psql"),  # ALTER SYSTEM SET ...
        (87, SQL, "psql"),  # SELECT pg_reload_conf();
        (97, SHELL, "systemctl"),  # `# systemctl restart pgbouncer`: a root prompt
        (98, SHELL, "systemctl"),
    ],
    "procedure-rds-restore.md": [
        (20, MANUAL, "cf"),
        (21, MANUAL, "cf"),
        (27, AWS, "aws"),
        (36, AWS, "aws"),
        (40, AWS, "aws"),
        (46, MANUAL, "cf"),
        (47, MANUAL, "cf"),
        (48, MANUAL, "cf"),
        (54, SQL, "sql"),
    ],
    "k8s-volume-filling-up.md": [
        (19, MANUAL, "kubectl"),
        (22, MANUAL, "kubectl"),
        (28, MANUAL, "kubectl"),  # kubectl exec ... -- df -h
        (29, MANUAL, "kubectl"),
        (35, MANUAL, "kubectl"),  # kubectl logs ... | grep
        (41, MANUAL, "promql"),
        (51, MANUAL, "kubectl"),
        (58, MANUAL, "gcloud"),
        (66, MANUAL, "oc"),
    ],
    "front-matter-redis-memory.md": [
        (20, SHELL, "redis-cli"),
        (22, MANUAL, "redis-cli"),  # `redis-cli -h sessions-cache`: the session opens
        (23, SHELL, "redis-cli"),  # sessions-cache:6379> INFO keyspace
        (26, SHELL, "redis-cli"),  # ... MEMORY USAGE (the "# Keyspace" line is output)
        (33, MANUAL, "az"),
        (39, MANUAL, "ssh"),
        (47, SHELL, "redis-cli"),
        (54, MANUAL, "az"),
    ],
    "gitlab-style-search-indexer.md": [
        (11, MANUAL, "docsctl"),
        (13, HTTP, "curl"),
        (31, SQL, "psql"),  # psql -c "SELECT ..."
        (41, SHELL, "tail"),  # admin@docs-01:~$ sudo tail ...
        (43, SHELL, "grep"),  # [admin@docs-01 ~]$ grep ...
        (52, MANUAL, "docsctl"),
        (61, SQL, "psql"),  # docs_production=# in a plaintext block
        (71, SQL, "psql"),  # docs_production=# in a shell block
    ],
}

SHAPES = {
    "alert-postgres-replication-lag.md": (Shape.ALERT, "warning"),
    "troubleshooting-connections-psql.md": (Shape.TROUBLESHOOTING, None),
    "procedure-rds-restore.md": (Shape.PROCEDURE, None),
    "k8s-volume-filling-up.md": (Shape.ALERT, None),
    "front-matter-redis-memory.md": (Shape.TROUBLESHOOTING, "critical"),
    "gitlab-style-search-indexer.md": (Shape.TROUBLESHOOTING, None),
}


def load(name: str) -> Runbook:
    return parse_runbook(PUBLIC / name)


def test_the_fixtures_are_the_ones_listed() -> None:
    assert sorted(p.name for p in PUBLIC.glob("*.md")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_command_is_found_and_classified(name: str) -> None:
    runbook = load(name)
    found = [(i.step.line, i.step.kind, i.step.tool) for i in runbook_steps(runbook)]
    assert found == EXPECTED[name]
    for item in runbook_steps(runbook):
        if item.step.kind is StepKind.MANUAL:  # what cannot run here says why
            assert item.step.manual_reason, item.step


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_output_lines_are_never_commands(name: str) -> None:
    lines = (PUBLIC / name).read_text(encoding="utf-8").split("\n")
    for item in runbook_steps(load(name)):
        first = lines[item.step.line - 1]
        # the step's first line is a command line as written: never a result row,
        # a row count, a JSON body or a service's status line
        assert not first.lstrip().startswith(("(", "{", "-", "●", '"', "ok:", "run:")), first
        assert item.step.text.split()[0] not in ("count", "NAME", "used_memory_human:7.80G")


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shape_and_page_severity(name: str) -> None:
    runbook = load(name)
    shape, severity = SHAPES[name]
    assert runbook.shape == shape
    assert runbook.metadata.severity == severity
    for section in runbook.scenarios:  # scenario-like units, none named by a SEV title
        assert section.unit
        assert section.severity == severity
        assert section.severity_source == ("page" if severity else "")


def test_an_alert_page_is_one_scenario_like_unit() -> None:
    runbook = load("alert-postgres-replication-lag.md")
    (alert,) = runbook.scenarios
    assert alert.title == "PostgresReplicationLagHigh"
    assert [s.line for s in alert.investigation] == [24, 30, 31, 37, 41]
    (option,) = alert.options
    assert [s.line for s in option.steps] == [52, 62, 63]
    assert runbook.metadata.lines["severity"] == 5  # the field table's row


def test_a_procedure_is_no_scenario() -> None:
    runbook = load("procedure-rds-restore.md")
    assert runbook.scenarios == ()
    assert runbook.metadata.owner == "Platform team"


def test_transcript_sql_keeps_its_lines_and_loses_its_prompts() -> None:
    runbook = load("troubleshooting-connections-psql.md")
    steps = {i.step.line: i.step for i in runbook_steps(runbook)}
    assert steps[20].text == "select state, count(*)\n  from pg_stat_activity\n group by state;"
    assert steps[20].raw.split("\n")[1] == "orders-#   from pg_stat_activity"
    assert steps[40].text == "\\x"
    assert steps[85].text.startswith("ALTER SYSTEM SET idle_in_transaction_session_timeout")
    assert "opens" not in steps[16].manual_reason
    assert "interactive session" in steps[16].manual_reason


def test_redis_prompts_run_in_the_session_they_were_typed_in() -> None:
    runbook = load("front-matter-redis-memory.md")
    steps = {i.step.line: i.step for i in runbook_steps(runbook)}
    assert steps[23].text == "redis-cli -h sessions-cache INFO keyspace"
    assert steps[20].pipeline == ("grep used_memory_human",)


def parse(markdown: str) -> Runbook:
    return parse_text(textwrap.dedent(markdown).lstrip("\n"), Path("runbook.md"))


def steps_of(markdown: str) -> list[tuple[int, StepKind, str]]:
    return [(i.step.line, i.step.kind, i.step.text) for i in runbook_steps(parse(markdown))]


def test_a_hash_line_is_a_comment_unless_output_follows() -> None:
    # commented-out commands before commands: comments, as ever
    assert steps_of(
        """
        # Restart
        ```bash
        # systemctl stop pgbouncer
        systemctl restart pgbouncer
        ```
        """
    ) == [(4, SHELL, "systemctl restart pgbouncer")]
    # a root prompt: the line below it is the command's output
    assert steps_of(
        """
        # Restart
        ```bash
        # df -h /var/lib/postgresql
        Filesystem      Size  Used Avail Use% Mounted on
        /dev/sdb1       100G   95G  5.0G  95% /var/lib/postgresql
        ```
        """
    ) == [(3, SHELL, "df -h /var/lib/postgresql")]
    # a comment in words stays a comment, even in a transcript
    assert steps_of(
        """
        # Disk
        ```console
        # check the disk first
        $ df -h
        Filesystem      Size  Used Avail Use% Mounted on
        ```
        """
    ) == [(4, SHELL, "df -h")]


def test_prompts_then_output_in_a_shell_block() -> None:
    assert steps_of(
        """
        # Pods
        ```shell
        $ kubectl get pods
        NAME    READY   STATUS
        api-1   1/1     Running
        $ df -h /
        ```
        """
    ) == [
        (3, MANUAL, "kubectl get pods"),
        (6, SHELL, "df -h /"),
    ]


def test_client_prompts() -> None:
    block = "\n".join(
        [
            "mysql> SELECT id",
            "    -> FROM jobs;",
            "+----+",
            "| id |",
            "127.0.0.1:6379[1]> GET key",
            '"value"',
            "app=*# commit;",
            "psql> select 2;",
            "  -> not a continuation: no mysql input is open",
        ]
    )
    assert [(e.dialect, e.text, e.lines) for e in client_entries(block)] == [
        ("mysql", "SELECT id\nFROM jobs;", (0, 1)),
        ("redis", "GET key", (4,)),
        ("psql", "commit;", (6,)),
        ("psql", "select 2;", (7,)),
    ]


def test_mysql_is_classified_not_validated() -> None:
    runbook = parse("# DB\n```\nmysql> SHOW PROCESSLIST;\n```\n")
    (step,) = [item.step for item in runbook_steps(runbook)]
    assert (step.kind, step.tool, step.text) == (MANUAL, "mysql", "SHOW PROCESSLIST;")
    assert "MySQL" in step.manual_reason


@pytest.mark.parametrize(
    ("command", "kind", "tool", "reason"),
    [
        ("oc -n x get pods", MANUAL, "oc", "oc: no OpenShift cluster in the stack"),
        ("cf stop app", MANUAL, "cf", "cf: no Cloud Foundry space in the stack"),
        ("gcloud sql instances list", MANUAL, "gcloud", "gcloud: no Google Cloud project"),
        ("az redis show -n x", MANUAL, "az", "az: no Azure subscription in the stack"),
        ("ssh ops@db-1", MANUAL, "ssh", "logs into a host"),
        ("sudo lsof -i :5432", MANUAL, "lsof", "lsof: a command on the service's host"),
        ("mysql -e 'select 1'", MANUAL, "mysql", "mysql: no MySQL server in the stack"),
        ("wc -l /var/log/app.log", SHELL, "wc", ""),
        ("kubectl scale deploy/api --replicas=3", StepKind.PLATFORM, "kubectl", ""),
    ],
)
def test_classification_names_the_tool(
    command: str, kind: StepKind, tool: str, reason: str
) -> None:
    found = classify(shlex.split(command))
    assert (found.kind, found.name) == (kind, tool)
    assert found.manual_reason.startswith(reason)
