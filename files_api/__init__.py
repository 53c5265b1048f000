"""The Files service twin: the system under test of runbook-checks."""
