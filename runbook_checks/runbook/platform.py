"""Platform commands in a runbook's text, parsed: kubectl, heroku, npm scripts, git.

`parse_platform(text)` says what a platform command means (its verb and every value
taken from the text) or why the stack cannot carry it out; `understood` is what the
classifier uses to make such a step executable (StepKind.PLATFORM). Carrying one out on
a stack is runbook_checks.steps.platform's business.

What is understood (anything else stays a manual step, with the reason):
- `kubectl rollout restart deployment NAME` (also `deploy/NAME`, `deployment/NAME`)
- `kubectl scale deployment NAME --replicas=N` (also `deploy/NAME`, `--replicas N`)
- `heroku config:set KEY=VALUE ... [-a APP | --app APP]` (Heroku restarts the app)
- `heroku restart [-a APP]`, `heroku ps:restart [-a APP]`
- `npm run SCRIPT` / `yarn run SCRIPT` / `yarn SCRIPT` / `pnpm run SCRIPT`
- `git checkout REV` (a revision of the deployment repository, e.g. `main@{1}`)
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from runbook_checks.runbook.words import command_words

__all__ = ["Platform", "PlatformCommand", "cut_short", "parse_platform", "understood"]

_CUT_SHORT = re.compile(r"\.\.\.|…|<[^>]*>|\[[^\]]*\]|\bxxx\b|\bXXX\b")


@dataclass(frozen=True)
class PlatformCommand:
    """One understood platform command: `verb` with its parsed arguments."""

    tool: str  # kubectl | heroku | npm | yarn | pnpm | git
    verb: str  # rollout-restart | scale | config-set | restart | run-script | checkout
    target: str = ""  # deployment, app, script or revision
    replicas: int | None = None
    settings: tuple[tuple[str, str], ...] = ()


def _option(words: list[str], *names: str) -> str | None:
    """The value of `--name value` / `--name=value` / `-n value` in `words`."""
    for index, word in enumerate(words):
        for name in names:
            if word == name and index + 1 < len(words):
                return words[index + 1]
            if name.startswith("--") and word.startswith(f"{name}="):
                return word.split("=", 1)[1]
    return None


def _deployment(words: list[str]) -> str | None:
    """NAME from `deployment NAME`, `deploy NAME`, `deployment/NAME`, `deploy/NAME`."""
    plain = [w for w in words if not w.startswith("-")]
    for index, word in enumerate(plain):
        kind, _, name = word.partition("/")
        if kind in ("deployment", "deployments", "deploy") and name:
            return name
        if word in ("deployment", "deployments", "deploy") and index + 1 < len(plain):
            return plain[index + 1]
    return None


def _kubectl(args: list[str]) -> PlatformCommand | str:
    plain = [w for w in args if not w.startswith("-")]
    if plain[:2] == ["rollout", "restart"]:
        name = _deployment(args[2:])
        if name is None:
            return "kubectl rollout restart: names no deployment"
        return PlatformCommand("kubectl", "rollout-restart", name)
    if plain[:1] == ["scale"]:
        name = _deployment(args[1:])
        raw = _option(args, "--replicas")
        if name is None:
            return "kubectl scale: names no deployment"
        if raw is None or not raw.isdigit():
            return f"kubectl scale: --replicas needs a whole number, the text gives {raw!r}"
        return PlatformCommand("kubectl", "scale", name, replicas=int(raw))
    verb = " ".join(plain[:2]) or "(none)"
    return f"kubectl {verb}: not carried out by the stack (understood: rollout restart, scale)"


def _heroku(args: list[str]) -> PlatformCommand | str:
    if not args:
        return "heroku: no command"
    app = _option(args, "-a", "--app") or ""
    command = args[0]
    if command == "config:set":
        pairs: list[tuple[str, str]] = []
        skip = False
        for word in args[1:]:
            if skip:
                skip = False
                continue
            if word in ("-a", "--app", "-r", "--remote"):
                skip = True
                continue
            if word.startswith("-"):
                continue
            key, sep, value = word.partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                return f"heroku config:set: {word!r} is not KEY=VALUE"
            pairs.append((key, value))
        if not pairs:
            return "heroku config:set: sets nothing"
        return PlatformCommand("heroku", "config-set", app, settings=tuple(pairs))
    if command in ("restart", "ps:restart"):
        return PlatformCommand("heroku", "restart", app)
    return f"heroku {command}: not carried out by the stack (understood: config:set, restart)"


def _script(tool: str, args: list[str]) -> PlatformCommand | str:
    plain = [w for w in args if not w.startswith("-")]
    if tool == "yarn" and plain and plain[0] not in ("run", "install", "add"):
        return PlatformCommand(tool, "run-script", plain[0])
    if plain[:1] in (["run"], ["run-script"]) and len(plain) > 1:
        return PlatformCommand(tool, "run-script", plain[1])
    return f"{tool} {' '.join(plain[:1]) or ''}: not carried out by the stack (understood: run)"


def _git(args: list[str]) -> PlatformCommand | str:
    plain = [w for w in args if not w.startswith("-")]
    if plain[:1] in (["checkout"], ["switch"]) and len(plain) > 1:
        return PlatformCommand("git", "checkout", plain[1])
    return f"git {' '.join(plain[:1])}: not carried out by the stack (understood: checkout)"


def parse_platform(text: str) -> PlatformCommand | str:
    """The platform command `text` means, or why the stack cannot carry it out."""
    try:
        words = command_words(shlex.split(text, comments=False))
    except ValueError as exc:
        return f"cannot split the command: {exc}"
    if not words:
        return "no command"
    tool, args = words[0].rsplit("/", 1)[-1], words[1:]
    if tool == "kubectl" or tool == "oc":
        return _kubectl(args)
    if tool == "heroku":
        return _heroku(args)
    if tool in ("npm", "yarn", "pnpm"):
        return _script(tool, args)
    if tool == "git":
        return _git(args)
    return f"{tool}: not a platform command"


def understood(text: str) -> bool:
    """Does the stack carry this platform command out from its text?"""
    return isinstance(parse_platform(text), PlatformCommand)


def cut_short(value: str) -> str | None:
    """Why `value` cannot be used as written (an ellipsis, a `<placeholder>`, `[Name]`),
    or None when it can."""
    match = _CUT_SHORT.search(value)
    if match:
        return f"the value is not complete in the text ({match.group(0)!r} in {value!r})"
    return None


class Platform(Protocol):
    """What the platform commands act on, on the stack under test (steps.platform carries
    a command out on the one `Bindings.platform` names)."""

    def restart_deployment(self, name: str) -> str: ...

    def scale_deployment(self, name: str, replicas: int) -> str: ...

    def set_config(self, app: str | None, settings: Mapping[str, str]) -> str: ...

    def restart_app(self, app: str | None) -> str: ...

    def run_script(self, tool: str, script: str) -> str: ...

    def checkout(self, revision: str) -> str: ...
