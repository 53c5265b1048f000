"""The gate: static and live checks of a runbook, findings, and the reviewed baseline.

`run_gate(GateOptions(...))` returns a `GateReport`; `runbook-checks gate` prints it and
exits 0 (no new errors), 1 (new errors) or 2 (could not run).
"""
