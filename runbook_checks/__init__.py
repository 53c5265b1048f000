"""runbook-checks: prove that an incident runbook works."""

__version__ = "0.1.0"
