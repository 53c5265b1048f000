"""A command's own words: `argv` without the prefixes that do not change what runs.

Shared by the classifier (runbook.classify), the platform parser (runbook.platform) and
the executors (steps/), so none of them imports another for it.
"""

from __future__ import annotations

import re

_PREFIXES = frozenset({"sudo", "env", "time", "nohup", "command", "exec", "nice"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
# options of `sudo` that take a value, so the value is not the command
_SUDO_VALUE_OPTIONS = frozenset({"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U"})


def command_words(argv: list[str]) -> list[str]:
    """`argv` without the prefixes that do not change what runs (sudo, env, VAR=x)."""
    words = list(argv)
    while words:
        head = words[0]
        if _ASSIGNMENT.match(head):
            words.pop(0)
        elif head in _PREFIXES:
            words.pop(0)
            while words and words[0].startswith("-"):
                option = words.pop(0)
                if head == "sudo" and option in _SUDO_VALUE_OPTIONS and words:
                    words.pop(0)
        else:
            break
    return words
