"""Every HTTP client the engine creates shares one TLS context (runbook_checks/tls.py).

httpx loads the whole CA bundle into a fresh SSL context for every client it creates,
`httpx.get` included (15-60 ms of CPU each); readiness probes and samplers that create a
client per request spent most of a stack's start there. So every call that creates one
must pass `verify=` (the shared `tls_context()`, or an explicit choice)."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx

from runbook_checks.tls import tls_context

ENGINE = Path(__file__).resolve().parents[3] / "runbook_checks"
CREATES_A_CLIENT = {"get", "post", "put", "patch", "delete", "head", "options", "request",
                    "stream", "Client", "AsyncClient"}  # fmt: skip


def clients_without_verify(source: str) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        if not (isinstance(owner, ast.Name) and owner.id == "httpx"):
            continue
        if node.func.attr in CREATES_A_CLIENT and not any(k.arg == "verify" for k in node.keywords):
            lines.append(node.lineno)
    return lines


def test_the_rule_sees_a_client_without_the_shared_context() -> None:
    source = "import httpx\nhttpx.get('http://127.0.0.1/')\nhttpx.Client(verify=x)\n"
    assert clients_without_verify(source) == [2]


def test_every_httpx_client_of_the_engine_shares_the_tls_context() -> None:
    offenders = [
        f"{path.relative_to(ENGINE.parent)}:{line}"
        for path in sorted(ENGINE.rglob("*.py"))
        for line in clients_without_verify(path.read_text())
    ]
    assert offenders == [], (
        "pass verify=tls_context() (runbook_checks/tls.py) to these httpx calls: "
        + ", ".join(offenders)
    )


def test_the_context_is_built_once_and_verifies() -> None:
    context = tls_context()
    assert context is tls_context()
    assert context.verify_mode.name == "CERT_REQUIRED"
    assert httpx.Client(verify=context)  # httpx takes it as it is
