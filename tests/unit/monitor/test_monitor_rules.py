"""Alert rules derived from the runbook, a user's own rule file, and durations."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from files_profile import VOCABULARY
from runbook_checks.errors import UsageError
from runbook_checks.monitor import promtool
from runbook_checks.monitor.rules import derive_rules, load_rules, parse_duration, rule_tests
from runbook_checks.runbook import Runbook, parse_runbook, parse_text

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "runbooks" / "files-incident-response.md"
SHIPPED_NAME = "runbooks/files-incident-response.md"


@pytest.fixture(scope="module")
def shipped() -> Runbook:
    return parse_runbook(SHIPPED)


def test_derived_rules_of_the_shipped_runbook(shipped: Runbook) -> None:
    rules = derive_rules(shipped, SHIPPED_NAME, vocab=VOCABULARY)
    assert rules.origin == "derived"
    assert [(r.name, r.section_id, r.annotations["runbook_line"]) for r in rules.rules] == [
        ("FilesHealthFailing", "sev-1-api-server-down", "69"),
        ("FilesNoTraffic", "sev-1-api-server-down", "71"),
        ("FilesAllRequestsFailing", "sev-1-database-failure", "153"),
        ("FilesDatabaseConnectionsZero", "sev-1-database-failure", "155"),
        ("FilesUploadErrorRateHigh", "sev-2-file-upload-failures", "281"),
        ("FilesLatencyP95High", "sev-2-performance-degradation", "339"),
    ]
    upload = rules.rules[4]
    assert upload.labels == {
        "severity": "sev-2",
        "runbook_section": "sev-2-file-upload-failures",
    }
    assert upload.annotations == {
        "summary": "Error rate > 5% on `/api/storage/files/upload`",
        "runbook": f"{SHIPPED_NAME}#sev-2-file-upload-failures",
        "runbook_line": "281",
    }
    assert upload.source == f"derived from {SHIPPED_NAME}:281"
    assert upload.for_s == 0
    assert list(rules.by_section()) == [
        "sev-1-api-server-down",
        "sev-1-database-failure",
        "sev-2-file-upload-failures",
        "sev-2-performance-degradation",
    ]
    assert all(r.spec is not None for r in rules.rules)


def test_rule_file_yaml_is_prometheus_shaped_and_deterministic(shipped: Runbook) -> None:
    drill = derive_rules(shipped, SHIPPED_NAME, vocab=VOCABULARY)
    deployed = derive_rules(shipped, SHIPPED_NAME, window_s=300, for_s=120, vocab=VOCABULARY)
    text = deployed.yaml()
    assert (
        text
        == derive_rules(shipped, SHIPPED_NAME, window_s=300, for_s=120, vocab=VOCABULARY).yaml()
    )
    assert text.startswith("# Alert rules derived from the runbook's symptoms")
    (group,) = yaml.safe_load(text)["groups"]
    assert group["name"] == "runbook-checks"
    first = group["rules"][0]
    assert list(first) == ["alert", "expr", "for", "labels", "annotations"]
    assert first["for"] == "2m"
    assert "[5m]" in first["expr"]
    assert "for" not in yaml.safe_load(drill.yaml())["groups"][0]["rules"][0]
    assert "[10s]" in drill.rules[0].expr


def test_names_stay_unique_when_two_sections_share_a_shape() -> None:
    text = textwrap.dedent(
        """\
        # Runbook
        ## SEV-1: API down
        ### Symptoms
        - 0 req/s
        ## SEV-2: Traffic lost
        ### Symptoms
        - Grafana shows 0 req/s
        - 0 requests per second on the dashboard
        """
    )
    rules = derive_rules(parse_text(text, Path("two.md")), "two.md", vocab=VOCABULARY)
    assert [r.name for r in rules.rules] == [
        "FilesNoTraffic",
        "FilesTrafficLostNoTraffic",
        "FilesTrafficLostNoTrafficLine8",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("5m", 300), ("2m30s", 150), ("1h", 3600), ("500ms", 0.5), ("1d", 86400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5x", "m5", "5 m", "2m 30s", "-1s", "1.5.2s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        parse_duration(text)


def test_rule_tests_have_a_firing_and_a_quiet_case_per_rule(shipped: Runbook) -> None:
    rules = derive_rules(shipped, SHIPPED_NAME, vocab=VOCABULARY)
    tests = yaml.safe_load(rule_tests(rules, "alerts.yml"))
    assert tests["rule_files"] == ["alerts.yml"]
    for rule in rules.rules:
        mine = [t for t in tests["tests"] if t["name"].startswith(f"{rule.name} ")]
        firing = [t for t in mine if t["alert_rule_test"][0]["exp_alerts"]]
        quiet = [t for t in mine if not t["alert_rule_test"][0]["exp_alerts"]]
        assert firing, rule.name
        assert len(quiet) == 1, rule.name
        for test in firing:
            (expected,) = test["alert_rule_test"][0]["exp_alerts"]
            assert expected["exp_labels"].items() >= rule.labels.items()
            assert expected["exp_annotations"] == rule.annotations


# ------------------------------------------------------------------ a user's rule file


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my-rules.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


GOOD = """\
    groups:
    - name: files
      rules:
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
      - alert: UploadsFailing
        expr: sum(rate(uploads_total{outcome=~"rejected_.*"}[5m])) > 1
        for: 2m30s
        labels:
          severity: sev-2
          runbook_section: "SEV-2: File Upload Failures"
        annotations:
          summary: uploads refused
      - alert: NoSection
        expr: up == 0
"""


def test_load_a_good_file(tmp_path: Path, shipped: Runbook) -> None:
    path = write(tmp_path, GOOD)
    rules = load_rules(path, shipped)
    assert rules.origin == str(path)
    assert [(r.name, r.for_s, r.section_id, r.source) for r in rules.rules] == [
        ("UploadsFailing", 150.0, "sev-2-file-upload-failures", f"{path}:6"),
        ("NoSection", 0.0, None, f"{path}:14"),
    ]
    assert rules.rules[0].annotations == {"summary": "uploads refused"}
    assert set(rules.by_section()) == {"sev-2-file-upload-failures", None}
    assert "not tested here (no derived cases): UploadsFailing, NoSection" in rule_tests(
        rules, "x.yml"
    )
    assert yaml.safe_load(rules.yaml())["groups"][0]["rules"][0]["for"] == "2m30s"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("groups: [\n", ":2: not YAML"),
        ("just: a mapping\n", ":1: no `groups`"),
        ("- a list\n", ":1: no `groups`"),
        ("groups: {a: 1}\n", ":1: `groups` is not a list"),
        ("groups:\n- name: g\n", ":2: a group without a `rules` list"),
        ("groups:\n- name: g\n  rules:\n  - expr: up == 0\n", ":4: a rule without `alert`"),
        ("groups:\n- name: g\n  rules:\n  - alert: A\n", ":4: rule 'A': field `expr` missing"),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 5 minutes\n",
            ":6: rule 'A': field `for` is '5 minutes', not a duration",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    labels: [x]\n",
            ":6: rule 'A': field `labels` is not a mapping",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    labels:\n"
            "      runbook_section: sev-9-nothing\n",
            ":7: rule 'A': label `runbook_section` is 'sev-9-nothing', which names no section",
        ),
    ],
)
def test_bad_rule_files_name_the_file_the_line_and_the_field(
    tmp_path: Path, shipped: Runbook, text: str, expected: str
) -> None:
    path = tmp_path / "my-rules.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_rules(path, shipped)
    assert str(caught.value).startswith(f"{path}{expected}")
    assert caught.value.hint
    if "runbook_section" in expected:
        assert "sev-1-api-server-down, sev-1-database-failure" in caught.value.hint


def test_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the alert rules"):
        load_rules(tmp_path / "missing.yml")
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00groups")
    with pytest.raises(UsageError, match="cannot read the alert rules"):
        load_rules(binary)


def test_without_a_runbook_the_section_label_is_kept_as_written(tmp_path: Path) -> None:
    text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    labels:\n"
    path = write(tmp_path, text + "      runbook_section: anything\n")
    (rule,) = load_rules(path).rules
    assert rule.section_id == "anything"


@pytest.mark.skipif(
    promtool.find_promtool() is None,
    reason="promtool is not installed (scripts/setup.sh installs it; or set PROMTOOL)",
)
def test_a_promql_syntax_error_is_refused_with_its_line(tmp_path: Path) -> None:
    text = "groups:\n- name: g\n  rules:\n  - alert: Fine\n    expr: up == 0\n"
    path = write(tmp_path, text + "  - alert: Broken\n    expr: sum(rate(up[5m]) >\n")
    with pytest.raises(promtool.PromtoolRefused) as caught:
        load_rules(path)
    message = str(caught.value)
    assert f"{path}:7: rule 'Broken' (group 'g', rule 2), field `expr`:" in message
    assert "parse error" in message


@pytest.mark.skipif(
    promtool.find_promtool() is None,
    reason="promtool is not installed (scripts/setup.sh installs it; or set PROMTOOL)",
)
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("    severity: sev-1\n", ":6: field `severity` is not a field of Prometheus' rule"),
        (
            '    annotations:\n      summary: "{{ .Foo "\n',
            ":4: rule 'A' (group 'g', rule 1), field `annotations`: annotation \"summary\"",
        ),
    ],
)
def test_what_only_promtool_refuses_is_named_at_its_line(
    tmp_path: Path, extra: str, expected: str
) -> None:
    path = write(
        tmp_path, "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n" + extra
    )
    with pytest.raises(promtool.PromtoolRefused) as caught:
        load_rules(path)
    assert f"{path}{expected}" in str(caught.value)
