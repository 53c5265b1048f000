"""Which executor runs a command, or why a person has to.

The rules, by the command's name (after `sudo`, `env`, `time`, `nohup` and
`VAR=value` prefixes):

- `curl` -> HTTP; `aws` -> AWS; `psql` -> SQL (one step per statement of its `-c`).
- shell tools the stack's components can answer -> SHELL (`SHELL_TOOLS`).
- `ssh` -> MANUAL: it logs into a host; the stack's components stand in for hosts.
- platform commands the stack carries out from their text (`kubectl rollout restart` /
  `scale`, `heroku config:set` / `restart`, `npm run SCRIPT`, `git checkout REV`: see
  `runbook.platform`) -> PLATFORM.
- other deployment and platform tools (kubectl/oc, helm, cf, gcloud, az, heroku, mysql
  ...) -> MANUAL naming the missing system (`NOT_IN_STACK`).
- `docker` read-only subcommands (ps, logs, inspect, ...) -> SHELL, others MANUAL.
- other shell commands of a host (ls, kill, lsof, dig, jq ...) -> MANUAL naming the tool
  (`HOST_TOOLS`): the stack answers only the tools above.
- anything else -> MANUAL "unknown command <name>".

Whatever the kind, `Classification.name` is the tool ("kubectl", "cf"): a step keeps it
(`Step.tool`), so a command that cannot run here is still said to be what it is.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

from runbook_checks.runbook.model import StepKind
from runbook_checks.runbook.platform import understood
from runbook_checks.runbook.words import command_words

SHELL_TOOLS = frozenset(
    {
        "pg_isready",
        "df",
        "du",
        "free",
        "top",
        "htop",
        "iotop",
        "redis-cli",
        "tail",
        "head",
        "grep",
        "egrep",
        "wc",
        "cat",
        "ps",
        "systemctl",
        "service",
        "journalctl",
        "watch",
        "uptime",
        "vmstat",
        "nproc",
    }
)

NOT_IN_STACK = {
    "kubectl": "kubectl: no Kubernetes cluster in the stack",
    "oc": "oc: no OpenShift cluster in the stack",
    "eksctl": "eksctl: no Kubernetes cluster in the stack",
    "cf": "cf: no Cloud Foundry space in the stack",
    "gsutil": "gsutil: no Google Cloud project in the stack",
    "doctl": "doctl: no DigitalOcean account in the stack",
    "mysql": "mysql: no MySQL server in the stack",
    "mysqladmin": "mysqladmin: no MySQL server in the stack",
    "mongosh": "mongosh: no MongoDB server in the stack",
    "mongo": "mongo: no MongoDB server in the stack",
    "vault": "vault: no Vault server in the stack",
    "consul": "consul: no Consul cluster in the stack",
    "etcdctl": "etcdctl: no etcd cluster in the stack",
    "ansible": "ansible: no inventory of hosts in the stack",
    "ansible-playbook": "ansible-playbook: no inventory of hosts in the stack",
    "helm": "helm: no Kubernetes cluster in the stack",
    "heroku": "heroku: no Heroku app in the stack",
    "git": "git: no deployment repository in the stack",
    "npm": "npm: no build or deployment pipeline in the stack",
    "npx": "npx: no build or deployment pipeline in the stack",
    "yarn": "yarn: no build or deployment pipeline in the stack",
    "pnpm": "pnpm: no build or deployment pipeline in the stack",
    "terraform": "terraform: no infrastructure-as-code state in the stack",
    "gcloud": "gcloud: no Google Cloud project in the stack",
    "az": "az: no Azure subscription in the stack",
    "docker": "docker: changes containers; the stack manages its own components",
    "docker-compose": "docker-compose: changes containers; the stack manages its own components",
    "scp": "scp: copies files between hosts; the stack has no hosts",
    "rsync": "rsync: copies files between hosts; the stack has no hosts",
}

# shell commands of a host that the stack does not answer (it answers SHELL_TOOLS)
HOST_TOOLS = frozenset(
    {"ls", "find", "stat", "lsof", "lsblk", "mount", "netstat", "ss", "ip", "ifconfig",
     "dig", "nslookup", "host", "ping", "traceroute", "mtr", "nc", "telnet", "openssl",
     "wget", "iostat", "sar", "dmesg", "kill", "pkill", "killall", "pgrep", "strace",
     "sysctl", "ulimit", "jq", "awk", "sed", "sort", "uniq", "cut", "less", "more",
     "zcat", "tar", "gzip", "echo", "printf", "export", "cd",
     "mkdir", "rm", "mv", "cp", "ln", "chmod", "chown", "touch", "tee", "truncate",
     "xargs", "sleep", "date", "hostname", "whoami", "id", "crontab", "logrotate",
     "pg_ctl", "pg_ctlcluster", "pg_lsclusters", "pg_dump", "pg_restore", "pg_basebackup",
     "createdb", "dropdb", "vacuumdb", "reindexdb", "pgbench", "promtool", "amtool"}
)  # fmt: skip
HOST_TOOL_REASON = "{name}: a command on the service's host; the stack does not answer it"
SSH_REASON = "logs into a host: the stack's components stand in for it"
UNKNOWN_REASON = "unknown command {name}"
INSTRUCTION_REASON = "instruction for a person (comment in a code block)"
PROSE_INSTRUCTION_REASON = "instruction for a person"
CODE_REASON = "code change, not a command"
PROSE_REASON = "prose in a code block, not a command"

_DOCKER_READ_ONLY = frozenset(
    {"ps", "logs", "inspect", "stats", "top", "images", "version", "info", "events", "port"}
)
# options of `ssh` that take a value, so the value is not the host
_SSH_VALUE_OPTIONS = frozenset(
    {"-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o"}
    | {"-p", "-Q", "-R", "-S", "-W", "-w"}
)


@dataclass(frozen=True)
class Classification:
    kind: StepKind
    name: str  # the command's name ("psql"), "" when there is none
    manual_reason: str = ""
    host: str = ""  # for a bare `ssh host`: the host logged into


def classify(argv: list[str]) -> Classification:
    words = command_words(argv)
    if words and understood(shlex.join(words)):
        return Classification(StepKind.PLATFORM, PurePosixPath(words[0]).name)
    if not words:
        return Classification(StepKind.MANUAL, "", UNKNOWN_REASON.format(name="(none)"))
    name = PurePosixPath(words[0]).name or words[0]
    if name == "curl":
        return Classification(StepKind.HTTP, name)
    if name == "aws":
        return Classification(StepKind.AWS, name)
    if name == "psql":
        return Classification(StepKind.SQL, name)
    if name in SHELL_TOOLS:
        return Classification(StepKind.SHELL, name)
    if name == "ssh":
        host, remote = _ssh_target(words[1:])
        return Classification(StepKind.MANUAL, name, SSH_REASON, "" if remote else host)
    if name in ("docker", "docker-compose"):
        sub = [w for w in words[1:] if not w.startswith("-")]
        if sub and sub[0] == "compose":
            sub = sub[1:]
        if sub and sub[0] in _DOCKER_READ_ONLY:
            return Classification(StepKind.SHELL, name)
    if name in NOT_IN_STACK:
        return Classification(StepKind.MANUAL, name, NOT_IN_STACK[name])
    if name in HOST_TOOLS:
        return Classification(StepKind.MANUAL, name, HOST_TOOL_REASON.format(name=name))
    return Classification(StepKind.MANUAL, name, UNKNOWN_REASON.format(name=name))


def known(argv: list[str]) -> bool:
    """Is `argv` a command of a tool the classifier knows (runnable here or not)?"""
    return not classify(argv).manual_reason.startswith("unknown command")


def _ssh_target(args: list[str]) -> tuple[str, bool]:
    """The host of `ssh [options] [user@]host [command]`, and whether a command follows."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            i += 2 if arg in _SSH_VALUE_OPTIONS else 1
            continue
        host = arg.rsplit("@", 1)[-1]
        return host, i + 1 < len(args)
    return "", False
