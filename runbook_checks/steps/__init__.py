"""Executors for runbook steps: SQL through psycopg, curl as HTTP, aws with the real CLI
against moto, shell tools against the stack's components.

`run_step(step, ctx)` runs any step; `parse_curl`, `validate_aws` and `plan_shell` look at a
step without running it (the gate uses them).
"""
