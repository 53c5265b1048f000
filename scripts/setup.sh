#!/usr/bin/env bash
# Installs everything runbook-checks needs on a fresh Debian machine: Debian packages
# where missing, a virtualenv in .venv, and the project with its extras.
# Idempotent and quick when nothing changed (a stamp records the pyproject hash).
#
# Debian packages are installed as root: directly when root, through `sudo -n` when sudo
# needs no password (GitHub's hosted runners), else not at all: then the missing required
# packages are named with the command that installs them, and the script exits 2.
#
#   scripts/setup.sh             set up
#   scripts/setup.sh --dry-run   print the privileged commands it would run (and the
#                                missing packages), change nothing, stop before the venv
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
PG_LIB=${PG_LIB:-/usr/lib/postgresql} # where Debian's server binaries live
POLICY_RC_D=${POLICY_RC_D:-/usr/sbin/policy-rc.d} # where invoke-rc.d asks (tests: elsewhere)

dry_run=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    -h | --help)
      sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "setup: unknown argument $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

# How this user runs a command as root: `root` (we are root), `sudo` (sudo -n works: no
# password asked), or `none`. Asked once, and only when something is to be installed.
root_via=
exec 3>&1 # --dry-run's lines, past the commands' own redirections
find_root() {
  [ -n "$root_via" ] && return 0
  if [ "$(id -u)" = 0 ]; then
    root_via=root
  elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    root_via=sudo
  else
    root_via=none
  fi
}
can_install() { # Debian packages can be installed here
  find_root
  [ "$root_via" != none ] && command -v apt-get >/dev/null 2>&1
}
as_root() { # run a command as root (with --dry-run: print it)
  local cmd=("$@")
  [ "$root_via" = sudo ] && cmd=(sudo -n "${cmd[@]}")
  if [ "$dry_run" = 1 ]; then
    echo "setup: would run: ${cmd[*]}" >&3
  else
    "${cmd[@]}"
  fi
}
apt_install() { # quiet, no recommends, never a question
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
how_to_install() { # the command that installs $@, for a message
  local prefix=
  [ "$(id -u)" = 0 ] || prefix="sudo "
  echo "${prefix}apt-get install -y --no-install-recommends $*"
}

need_deb=()
command -v redis-server >/dev/null 2>&1 || need_deb+=(redis-server)
ls "$PG_LIB"/*/bin/initdb >/dev/null 2>&1 || command -v pg_config >/dev/null 2>&1 \
  || need_deb+=(postgresql postgresql-contrib)
# runuser runs tools as the postgres user, which only root does (not on a user's PATH)
if [ "$(id -u)" = 0 ]; then
  command -v runuser >/dev/null 2>&1 || need_deb+=(util-linux)
fi
# A new venv needs ensurepip, which Debian ships apart (python3-venv).
if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
  need_deb+=(python3-venv)
fi
if [ ${#need_deb[@]} -gt 0 ]; then
  if can_install; then
    echo "setup: installing Debian packages: ${need_deb[*]}"
    as_root apt-get update -qq
    apt_install "${need_deb[@]}" >/dev/null
  else
    {
      echo "setup: missing Debian packages: ${need_deb[*]}"
      if ! command -v apt-get >/dev/null 2>&1; then
        echo "  (no apt-get: install your system's equivalents of these, then re-run)"
      else
        echo "  not root, and sudo asks for a password (or is missing); install them with"
      fi
      echo "    $(how_to_install "${need_deb[@]}")"
      echo "  then re-run make setup."
    } >&2
    exit 2
  fi
fi

# Optional: headless Chromium renders report.html in the evidence integration test (which
# is skipped, saying why, without it). A failure here never stops the setup.
if ! command -v chromium >/dev/null 2>&1; then
  if can_install; then
    echo "setup: installing Debian's chromium (optional: the report.html screenshot test)"
    { as_root apt-get update -qq && apt_install chromium fonts-dejavu-core >/dev/null; } \
      || echo "setup: chromium not installed; the screenshot test will be skipped" >&2
  fi
fi

# Optional: Prometheus, Alertmanager and Debian's exporters for PostgreSQL and Redis. Every
# stack runs these binaries itself, on 127.0.0.1, for the drills' real alerts; without them
# stacks start without monitoring and drills say time-to-alert was not measured. A failure
# here never stops the setup.
# The packages' own services must never run: on a machine with systemd their postinst
# would start prometheus on 0.0.0.0:9090 (and Alertmanager, the exporters on every
# interface too). A policy-rc.d that exits 101 makes invoke-rc.d and deb-systemd-invoke
# refuse to start anything during the install; it is ours only where none exists (a
# container image often has its own), and the trap removes it whatever happens. The units
# are disabled afterwards, so no boot starts them either.
need_mon=()
command -v prometheus >/dev/null 2>&1 || need_mon+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
  || need_mon+=(prometheus-alertmanager)
command -v prometheus-postgres-exporter >/dev/null 2>&1 || need_mon+=(prometheus-postgres-exporter)
command -v prometheus-redis-exporter >/dev/null 2>&1 || need_mon+=(prometheus-redis-exporter)
if [ ${#need_mon[@]} -gt 0 ]; then
  if can_install; then
    policy=$POLICY_RC_D
    if [ ! -e "$policy" ]; then
      trap 'as_root rm -f "$policy"' EXIT
      # shellcheck disable=SC2016 # $1 is the inner shell's
      as_root sh -c 'printf "#!/bin/sh\n# runbook-checks setup: no service starts during its install\nexit 101\n" >"$1" && chmod 755 "$1"' \
        sh "$policy"
    fi
    echo "setup: installing Debian's ${need_mon[*]} (optional: the drills' real alerts; services not started)"
    if { as_root apt-get update -qq && apt_install "${need_mon[@]}" >/dev/null; }; then
      for unit in "${need_mon[@]}"; do
        as_root systemctl disable "$unit.service" >/dev/null 2>&1 || true
      done
    else
      echo "setup: ${need_mon[*]} not installed; stacks start without monitoring (drills: time-to-alert not measured)" >&2
    fi
    if [ "$(trap -p EXIT)" ]; then
      as_root rm -f "$policy"
      trap - EXIT
    fi
  else
    echo "setup: optional ${need_mon[*]} missing: stacks start without monitoring; install with: $(how_to_install "${need_mon[@]}")" >&2
  fi
fi

if [ "$dry_run" = 1 ]; then
  echo "setup: would then create $VENV (if missing) and pip install -e '.[load,dev,docker]'"
  exit 0
fi

stamp="$VENV/.runbook-checks-setup"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -e ".[load,dev,docker]"
echo "$want" > "$stamp"
echo "setup: ready ($VENV)"
