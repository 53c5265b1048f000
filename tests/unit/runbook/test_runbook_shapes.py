"""Small Markdown shapes a runbook may take, each parsed from text written here."""

from __future__ import annotations

import textwrap
from pathlib import Path

from runbook_checks.runbook import Phase, Runbook, StepKind, parse_text

PATH = Path("shapes.md")


def parse(markdown: str) -> Runbook:
    return parse_text(textwrap.dedent(markdown).lstrip("\n"), PATH)


def lines_of(markdown: str) -> list[str]:
    return textwrap.dedent(markdown).lstrip("\n").split("\n")


def test_options_as_sub_headings_of_mitigation() -> None:
    runbook = parse(
        """
        # Runbook
        ## SEV-2: Cache outage
        ### Investigation
        ```bash
        redis-cli PING
        ```
        ### Mitigation
        #### Option A: Restart Redis
        ```bash
        sudo systemctl restart redis
        ```
        Then watch the hit rate.
        #### Option B: Flush
        ```bash
        redis-cli FLUSHALL
        ```
        **Then check:**
        ```bash
        redis-cli DBSIZE
        ```
        ##### Verify
        ```bash
        redis-cli INFO stats
        ```
        ### Communication Template
        ```
        We are investigating cache problems.
        ```
        """
    )
    (scenario,) = runbook.scenarios
    assert scenario.severity == "SEV-2"
    assert [o.key for o in scenario.options] == ["A", "B"]
    restart = scenario.option("A")
    assert [s.text for s in restart.steps] == ["sudo systemctl restart redis"]
    assert restart.prose == "Then watch the hit rate."
    assert restart.line == 8
    # a sub-heading inside an option belongs to the option
    assert [s.text for s in scenario.option("B").steps] == [
        "redis-cli FLUSHALL",
        "redis-cli DBSIZE",
        "redis-cli INFO stats",
    ]
    assert scenario.option("B").prose == "**Then check:**"
    assert [t.title for t in runbook.templates] == ["Communication Template"]
    assert scenario.subsections == ("Investigation", "Mitigation", "Communication Template")


def test_option_headings_directly_under_the_scenario() -> None:
    runbook = parse(
        """
        ## P1 - Queue backlog
        ### Symptoms
        - jobs pile up
        ### Option 1: Add workers
        ```bash
        kubectl scale deployment worker --replicas=10
        ```
        ### If the queue is poisoned
        ```bash
        curl -X POST http://localhost:8080/admin/queue/drain
        ```
        ### Notes
        ```bash
        curl http://localhost:8080/health
        ```
        """
    )
    (scenario,) = runbook.scenarios
    assert scenario.severity == "P1"
    assert [o.key for o in scenario.options] == ["1", "the-queue-is-poisoned"]
    assert scenario.symptoms == ("jobs pile up",)
    # "Notes" is no option: its step is kept as an other step
    assert [s.text for s in scenario.other_steps] == ["curl http://localhost:8080/health"]
    assert scenario.other_steps[0].phase is Phase.OTHER


def test_bold_phase_labels_without_sub_headings() -> None:
    runbook = parse(
        """
        # Ops
        ## Sev1 Login broken
        **Symptoms:** users cannot log in

        - 401 on every request

        **Diagnosis**
        ```sh
        curl -i http://localhost:5000/login
        ```
        **Fix**

        **Option A: Rotate the key**
        ```bash
        aws secretsmanager rotate-secret --secret-id login-key
        ```
        """
    )
    (scenario,) = runbook.scenarios
    assert scenario.severity == "SEV-1"
    assert scenario.symptoms == ("users cannot log in", "401 on every request")
    assert [s.kind for s in scenario.investigation] == [StepKind.HTTP]
    assert scenario.option("A").steps[0].kind is StepKind.AWS


def test_implicit_option_and_duplicate_keys() -> None:
    runbook = parse(
        """
        ## SEV-3: Disk filling up
        ### Mitigation
        ```bash
        df -h
        ```
        **Option A: Clean logs**
        ```bash
        sudo journalctl --vacuum-size=100M
        ```
        **Option A: Clean tmp**
        ```bash
        cat /etc/tmpfiles.d/tmp.conf
        ```
        **Note:** be careful
        """
    )
    (scenario,) = runbook.scenarios
    assert [(o.key, o.title) for o in scenario.options] == [
        ("mitigation", "Mitigation"),
        ("A", "Option A: Clean logs"),
        ("A-2", "Option A: Clean tmp"),
    ]
    assert scenario.options[2].prose == "**Note:** be careful"


def test_severity_names_are_normalised_to_the_table_spelling() -> None:
    runbook = parse(
        """
        # Runbook
        | Severity | Response time |
        |---|---|
        | Sev 1 | 30 min |
        | Sev 2 | 2 hours |
        | Critical | 5 minutes |

        ## SEV-1: A
        ### Investigation
        ```bash
        df -h
        ```
        ## sev2 - B
        ### Investigation
        ```bash
        df -h
        ```
        ## Critical: payments down
        ### Investigation
        ```bash
        df -h
        ```
        ## Severity 1 things
        """
    )
    assert [s.level for s in runbook.severities] == ["Sev 1", "Sev 2", "Critical"]
    assert [s.response_seconds for s in runbook.severities] == [1800.0, 7200.0, 300.0]
    assert [(s.title, s.severity) for s in runbook.scenarios] == [
        ("SEV-1: A", "Sev 1"),
        ("sev2 - B", "Sev 2"),
        ("Critical: payments down", "Critical"),
        ("Severity 1 things", "Sev 1"),
    ]


def test_no_severity_table_and_no_severity_names() -> None:
    runbook = parse(
        """
        # Database runbook
        ## Database down
        ### Symptoms
        - 500s
        ### Investigation
        ```bash
        pg_isready -h localhost
        ```
        ### Resolution
        **1. Restart**
        ```bash
        sudo service postgresql restart
        ```
        """
    )
    assert runbook.severities == ()
    # a scenario-like unit without a severity (it was no scenario at all before)
    section = runbook.section("database-down")
    assert runbook.scenarios == (section,)
    assert section.unit
    assert section.severity is None
    assert [s.kind for s in section.steps] == [StepKind.SHELL, StepKind.SHELL]
    assert section.option("1").title == "1. Restart"


def test_severity_group_heading_passes_its_severity_down() -> None:
    runbook = parse(
        """
        # Runbook
        ## SEV-1 incidents
        ### API down
        #### Symptoms
        - no answers
        #### Investigation
        ```bash
        curl http://localhost:5000/health
        ```
        ### Database down
        #### Investigation
        ```bash
        pg_isready
        ```
        """
    )
    assert [(s.title, s.severity) for s in runbook.scenarios] == [
        ("API down", "SEV-1"),
        ("Database down", "SEV-1"),
    ]
    assert runbook.section("sev-1-incidents").severity is None


def test_severity_definitions_are_not_scenarios() -> None:
    runbook = parse(
        """
        # Runbook
        ## Severity definitions
        ### SEV-1
        Respond within 15 minutes.
        ### SEV-2
        Respond within the hour.
        ## SEV-1: Outage
        ### Investigation
        ```bash
        df -h
        ```
        """
    )
    assert [s.title for s in runbook.scenarios] == ["SEV-1: Outage"]


def test_unterminated_fence_is_reported_and_read() -> None:
    runbook = parse(
        """
        # Runbook
        ## SEV-1: Disk full
        ### Investigation
        ```bash
        df -h
        du -sh /var/log
        """
    )
    (scenario,) = runbook.scenarios
    (block,) = scenario.blocks
    assert block.closed is False
    assert block.line == 4
    assert [s.text for s in scenario.investigation] == ["df -h", "du -sh /var/log"]
    (warning,) = runbook.warnings
    assert "shapes.md:4:" in warning
    assert "never closed" in warning


def test_unterminated_quote_is_reported() -> None:
    runbook = parse(
        """
        # R
        ## SEV-1: X
        ### Investigation
        ```bash
        psql $DATABASE_URL -c "SELECT 1;
        df -h
        ```
        """
    )
    steps = runbook.scenarios[0].investigation
    assert [s.kind for s in steps] == [StepKind.SQL, StepKind.SQL]
    assert any("shapes.md:5:" in w and "never closed" in w for w in runbook.warnings)


def test_front_matter_is_skipped_and_lines_stay_right() -> None:
    markdown = """
        ---
        owner: SRE team
        last_updated: 2024-03-01
        tags: [db]
        ---
        # Runbook
        ## SEV-2: Slow queries
        ### Investigation
        ```sql
        SELECT 1;
        ```
        """
    runbook = parse(markdown)
    assert runbook.title == "Runbook"
    assert runbook.section("runbook").line == 6
    step = runbook.scenarios[0].investigation[0]
    assert step.line == 10
    assert lines_of(markdown)[step.line - 1] == "SELECT 1;"
    assert runbook.metadata.owner == "SRE team"
    assert runbook.metadata.last_updated == "2024-03-01"
    assert runbook.metadata.lines["owner"] == 2


def test_toml_front_matter() -> None:
    runbook = parse(
        """
        +++
        owner = "Platform"
        +++
        # Runbook
        ## SEV-1: Down
        """
    )
    assert runbook.section("runbook").line == 4
    assert runbook.metadata.owner == "Platform"


def test_thematic_breaks_are_not_front_matter() -> None:
    runbook = parse(
        """
        ---
        # Runbook
        ---
        ## SEV-1: Down
        """
    )
    assert [s.title for s in runbook.sections] == ["Runbook", "SEV-1: Down"]


def test_setext_headings_and_indented_code() -> None:
    runbook = parse(
        """
        Runbook
        =======

        SEV-2: Cache
        ------------

        ### Investigation

            redis-cli INFO stats
            redis-cli DBSIZE
        """
    )
    assert [(s.title, s.line, s.level) for s in runbook.sections][:2] == [
        ("Runbook", 1, 1),
        ("SEV-2: Cache", 4, 2),
    ]
    steps = runbook.scenarios[0].investigation
    assert [(s.line, s.text) for s in steps] == [
        (9, "redis-cli INFO stats"),
        (10, "redis-cli DBSIZE"),
    ]


def test_console_transcript_keeps_commands_and_drops_output() -> None:
    runbook = parse(
        """
        ## SEV-1: Down
        ### Investigation
        ```console
        $ df -h /
        Filesystem      Size  Used Avail Use% Mounted on
        /dev/sda1        50G   49G  1.0G  98% /
        $ curl -s http://localhost:5000/health \\
        >   -H 'Accept: application/json'
        {"status": "ok"}
        ```
        """
    )
    steps = runbook.scenarios[0].investigation
    assert [(s.line, s.kind, s.text) for s in steps] == [
        (4, StepKind.SHELL, "df -h /"),
        (7, StepKind.HTTP, "curl -s http://localhost:5000/health -H 'Accept: application/json'"),
    ]


def test_unlabelled_blocks_commands_or_prose() -> None:
    runbook = parse(
        """
        ## SEV-2: Upload failures
        ### Investigation
        ```
        curl http://localhost:5000/health
        tail -n 50 /var/log/api.log
        ```
        ### Mitigation
        **1. Tell users**
        ```
        Uploads are slow, we are on it.
        ```
        **2. Checklist**
        ```
        - [ ] page the storage team
        - [ ] open an incident channel
        ```
        **3. Patch**
        ```python
        MAX_UPLOAD_MB = 50
        ```
        """
    )
    scenario = runbook.scenarios[0]
    assert [s.kind for s in scenario.investigation] == [StepKind.HTTP, StepKind.SHELL]
    tell = scenario.option("1").steps
    assert [(s.kind, s.manual_reason) for s in tell] == [
        (StepKind.NOTE, "prose in a code block, not a command")
    ]
    checklist = scenario.option("2").steps
    assert [(s.kind, s.line) for s in checklist] == [(StepKind.MANUAL, 14), (StepKind.MANUAL, 15)]
    assert checklist[0].manual_reason == "instruction for a person"
    patch = scenario.option("3").steps
    assert [(s.kind, s.manual_reason) for s in patch] == [
        (StepKind.NOTE, "code change, not a command")
    ]


def test_psql_variants_and_heredoc() -> None:
    runbook = parse(
        """
        ## SEV-1: Database
        ### Investigation
        ```bash
        psql -f /tmp/check.sql
        psql $DATABASE_URL
        psql "$DATABASE_URL" --command="SELECT 1; SELECT 2;" | cat
        psql $DATABASE_URL <<'SQL'
        SELECT 3;
        SQL
        df -h
        ```
        """
    )
    steps = runbook.scenarios[0].investigation
    assert [(s.line, s.kind, s.text) for s in steps] == [
        (4, StepKind.MANUAL, "psql -f /tmp/check.sql"),
        (5, StepKind.MANUAL, "psql $DATABASE_URL"),
        (6, StepKind.SQL, "SELECT 1;"),
        (6, StepKind.SQL, "SELECT 2;"),
        (7, StepKind.MANUAL, "psql $DATABASE_URL <<'SQL'\nSELECT 3;\nSQL"),
        (10, StepKind.SHELL, "df -h"),
    ]
    assert steps[0].manual_reason == "psql -f runs a SQL file that is not in the runbook"
    assert steps[2].pipeline == ("cat",)


def test_ssh_host_context_ends_with_the_block_or_exit() -> None:
    runbook = parse(
        """
        ## SEV-1: Host
        ### Investigation
        ```bash
        ssh -i key.pem admin@web-01
        df -h
        exit
        df -h
        ```
        ```bash
        free -m
        ```
        """
    )
    steps = runbook.scenarios[0].investigation
    assert [(s.text, s.host) for s in steps] == [
        ("ssh -i key.pem admin@web-01", "web-01"),
        ("df -h", "web-01"),
        ("exit", ""),
        ("df -h", ""),
        ("free -m", ""),
    ]


def test_code_before_the_first_heading_is_reported() -> None:
    runbook = parse(
        """
        ```bash
        df -h
        ```
        # Runbook
        """
    )
    assert any("shapes.md:1:" in w and "before the first heading" in w for w in runbook.warnings)


def test_process_stages_from_numbered_sub_headings() -> None:
    runbook = parse(
        """
        # Runbook
        ## Response process
        ### 1. Detect
        ### 2. Triage (< 5 minutes)
        ### 3. Fix
        """
    )
    assert runbook.process == ("Detect", "Triage", "Fix")


def test_process_stages_from_an_ascii_arrow_paragraph() -> None:
    runbook = parse(
        """
        # Runbook
        ## Process
        Detect -> Triage -> Mitigate -> Review
        """
    )
    assert runbook.process == ("Detect", "Triage", "Mitigate", "Review")


def test_metadata_with_the_colon_inside_the_bold() -> None:
    runbook = parse(
        """
        # Runbook
        **Owner:** Platform team
        **Last Updated:** 2024-05-01
        """
    )
    assert runbook.metadata.owner == "Platform team"
    assert runbook.metadata.last_updated == "2024-05-01"
    assert runbook.metadata.lines == {"owner": 2, "last_updated": 3}
