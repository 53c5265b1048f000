"""The one place secrets are taken out of what the suite shows or writes.

`redact(text, secrets)` blanks the given secret values and, by shape, whatever else looks
like one (passwords in URLs, bearer tokens, `password=...`, `redis-cli -a`). Every text
file of an evidence bundle passes through a `Redactor` on its way to disk, and every
string of the journal before it is rendered, so no writer can forget it; it knows the
stack's own secrets by value (the admin token, database and Redis passwords:
`stack.base.stack_redactor`). Step results (steps/), the audit log (safety/) and the
external backend use the same patterns. Ground floor: imports only the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DUMMY_KEY = "testing"  # moto's access and secret key: public (and an ordinary word)
_URL_PASSWORD = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:([^@\s/]+)@")
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET", re.IGNORECASE)
_NOT_SECRET = frozenset({"AWS_ACCESS_KEY_ID", "S3_ACCESS_KEY_ID"})  # key ids name, not prove
_DUMMY_VALUES = frozenset({DUMMY_KEY})  # moto's "testing" is public (and an ordinary word)
MIN_SECRET_LEN = 6  # shorter values would blank out ordinary words


def url_passwords(text: str) -> list[str]:
    """The passwords of every `scheme://user:password@host` in `text`."""
    return [m.group(1) for m in _URL_PASSWORD.finditer(text)]


# by shape: a URL's password, a bearer/basic credential, key=value secrets, redis-cli -a
_URL_PASSWORD_SPAN = re.compile(
    r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s'\"]*:)[^@\s/'\"]+(?=@)"
)
_BEARER = re.compile(r"(?i)(\b(?:Bearer|Basic)\s+)(?!\*\*\*)([^\s'\",;]+)")
_KEY_VALUE = re.compile(r"(?i)\b(password|passwd|pwd|token|secret)=([^\s&;'\"]+)")
_REDIS_AUTH = re.compile(r"(\bredis-cli\b[^|]*?\s-a\s+)(\S+)")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with passwords in URLs, bearer tokens and the given secret values as ***."""
    if not text:
        return text
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_PASSWORD_SPAN.sub(r"\g<pre>***", text)
    text = _BEARER.sub(r"\1***", text)
    text = _KEY_VALUE.sub(r"\1=***", text)
    return _REDIS_AUTH.sub(r"\1***", text)


@dataclass(frozen=True)
class Redactor:
    """Redacts known secret values and secret-shaped text."""

    secrets: frozenset[str] = frozenset()

    @classmethod
    def for_values(cls, env: Mapping[str, str], *extra: str) -> Redactor:
        """Secrets among an operator's environment (as `Endpoints.as_env()` gives it):
        variables named like a secret, and the passwords inside any URL."""
        found: set[str] = {e for e in extra if e}
        for name, value in env.items():
            if SECRET_NAME.search(name) and name not in _NOT_SECRET and value not in _DUMMY_VALUES:
                found.add(value)
            found.update(url_passwords(value))
        for value in extra:
            found.update(url_passwords(value))
        return cls(frozenset(v for v in found if len(v) >= MIN_SECRET_LEN))

    def merged(self, other: Redactor) -> Redactor:
        return Redactor(self.secrets | other.secrets)

    def text(self, text: str) -> str:
        return redact(text, self.secrets)

    def tree(self, value: object) -> object:
        """A copy of a JSON-like value with every string (keys too) redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.tree(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.tree(v) for v in value]
        return value

    def leaks(self, text: str) -> list[str]:
        """Which known secrets still appear in `text` (for a last check before writing)."""
        return [s for s in self.secrets if s in text]


def all_of(redactors: Iterable[Redactor]) -> Redactor:
    result = Redactor()
    for redactor in redactors:
        result = result.merged(redactor)
    return result
