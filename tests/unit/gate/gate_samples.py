"""Small Markdown runbooks for the gate's unit tests (imported by the tests and conftest)."""

from __future__ import annotations

SEVERITIES = """\
## Incident Severity Levels

| Level | Impact | Response Time | Examples |
|-------|--------|---------------|----------|
| **SEV-1 (Critical)** | Outage | 15 minutes | API down |
| **SEV-2 (High)** | Major feature | 1 hour | Slow |
"""

SCENARIO = """\
## SEV-1: API Down

### Symptoms
- `/health` fails

### Investigation

```bash
curl https://api.rolerabbit.com/health
psql $DATABASE_URL -c "SELECT 1;"
```

### Mitigation

**Option A: Restart**
```bash
sudo systemctl restart rolerabbit-api
```
"""

FOOTER = """\
---

**Last Updated**: 2024-01-15
**Next Review**: 2030-04-15
**Owner**: DevOps Team
"""


def compose(*parts: str) -> str:
    return "# Incident Response Runbook\n\n" + "\n".join(parts) + "\n" + FOOTER
