"""Values for the runbook's placeholders while the gate checks a command.

A placeholder's role comes from its name (`PID`, `*_TOKEN`, `*_ID`) or, for example
words written in lower case (`'abc123xyz'`, `'xxx'`), from what stands before it in the
command (`token = '...'`, `/share/...`, `user_id = '...'`). `named_like_placeholder` says
whether a bare word's name makes it a placeholder at all (the SQL check binds no other;
see `gate.sql_binding`). Two sets of values:

- harmless ones, for validating SQL against the live schema: a backend PID that cannot
  exist (above any kernel's pid_max), random uuids and share-token-shaped strings that
  match no row;
- seeded ones, for running diagnostics on a healthy stack: the user, file and share
  the gate created there.
"""

from __future__ import annotations

import enum
import re
import secrets
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from runbook_checks.steps.binding import EXAMPLE_MARKS, Bindings, bind

# Linux's pid_max is at most 2**22: this PID is never a process, hence never a backend.
IMPOSSIBLE_PID = 2**31 - 1
SHARE_TOKEN_BYTES = 32  # the twin's share tokens: secrets.token_urlsafe(32)


class Role(enum.StrEnum):
    BACKEND_PID = "backend-pid"
    ADMIN_TOKEN = "admin-token"
    USER_TOKEN = "user-token"
    SHARE_TOKEN = "share-token"
    FILE_ID = "file-id"
    USER_ID = "user-id"
    UUID = "uuid"


_BEFORE_TOKEN = re.compile(r"(?:token\W{0,6}|/share/)$", re.IGNORECASE)
_BEFORE_USER_ID = re.compile(r"user_?id\W{0,6}$", re.IGNORECASE)
_BEFORE_FILE_ID = re.compile(r"(?:file_?id|\bid)\W{0,6}$|/files/$", re.IGNORECASE)


def named_like_placeholder(name: str, known: Collection[str] = ()) -> bool:
    """Whether `name` says by itself that it stands for a value: a known placeholder
    (`PID`, `FILE_ID`, `abc123xyz`), an example word with "xxx", or an upper-case name
    that is compound (`BLOCKING_PID`, `SHARE_ID`) or ends in PID or TOKEN.

    A single capitalised word (`ACTIVE`, `SELEC`, `INTEGR`) is not: in SQL it is far more
    often a keyword, a type, a value or a name written in capitals, misspelled or not,
    than a placeholder. `role_of` gives any name a role; this says whether it has one.
    """
    if name in known or any(mark in name.lower() for mark in EXAMPLE_MARKS):
        return True
    if not name.isupper():
        return False
    return "_" in name.strip("_") or name.endswith(("PID", "TOKEN"))


def role_of(name: str, before: str = "") -> Role:
    """The role of placeholder `name`, written after the text `before`."""
    upper = name.upper()
    if upper == "PID" or upper.endswith("_PID"):
        return Role.BACKEND_PID
    if name.isupper() and upper.endswith("TOKEN"):
        return Role.ADMIN_TOKEN if "ADMIN" in upper else Role.USER_TOKEN
    if name.isupper() and (upper == "FILE_ID" or upper.endswith("_FILE_ID")):
        return Role.FILE_ID
    if name.isupper() and (upper == "USER_ID" or upper.endswith("_USER_ID")):
        return Role.USER_ID
    if name.isupper():
        return Role.UUID
    tail = before[-40:]
    if _BEFORE_TOKEN.search(tail):
        return Role.SHARE_TOKEN
    if _BEFORE_USER_ID.search(tail):
        return Role.USER_ID
    if _BEFORE_FILE_ID.search(tail):
        return Role.FILE_ID
    return Role.UUID


@dataclass(frozen=True)
class RoleValues:
    """A value for each role."""

    values: Mapping[Role, str]

    def get(self, role: Role) -> str:
        return self.values[role]


def harmless_values() -> RoleValues:
    """Values that match nothing and change nothing (fresh each call)."""
    return RoleValues(
        {
            Role.BACKEND_PID: str(IMPOSSIBLE_PID),
            Role.ADMIN_TOKEN: secrets.token_urlsafe(SHARE_TOKEN_BYTES),
            Role.USER_TOKEN: secrets.token_urlsafe(SHARE_TOKEN_BYTES),
            Role.SHARE_TOKEN: secrets.token_urlsafe(SHARE_TOKEN_BYTES),
            Role.FILE_ID: str(uuid.uuid4()),
            Role.USER_ID: str(uuid.uuid4()),
            Role.UUID: str(uuid.uuid4()),
        }
    )


def placeholder_values(
    text: str, roles: RoleValues, base: Bindings | None = None, *, sql: bool = False
) -> dict[str, str]:
    """name -> value for every placeholder `bind` finds unbound in `text`."""
    probe = bind(text, base if base is not None else Bindings(), sql=sql)
    found: dict[str, str] = {}
    for name in probe.unbound:
        if name.startswith("$") or name.startswith("<"):
            continue
        at = _first_word(text, name)
        found[name] = roles.get(role_of(name, text[:at] if at >= 0 else ""))
    return found


def _first_word(text: str, word: str) -> int:
    match = re.search(rf"(?<![\w\-]){re.escape(word)}(?![\w\-])", text)
    return match.start() if match else -1
