#!/usr/bin/env bash
# Installs everything runbook-checks needs on a fresh Debian machine: Debian packages
# where missing (when root), a virtualenv in .venv, and the project with its extras.
# Idempotent and quick when nothing changed (a stamp records the pyproject hash).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need_deb=()
command -v redis-server >/dev/null 2>&1 || need_deb+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v pg_config >/dev/null 2>&1 \
  || need_deb+=(postgresql postgresql-contrib)
command -v runuser >/dev/null 2>&1 || need_deb+=(util-linux)
if [ ${#need_deb[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${need_deb[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_deb[@]}" >/dev/null
  else
    echo "setup: missing ${need_deb[*]}; install them (apt-get install ${need_deb[*]}) and re-run." >&2
    exit 2
  fi
fi

# Optional: headless Chromium renders report.html in the evidence integration test (which
# is skipped, saying why, without it). A failure here never stops the setup.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing Debian's chromium (optional: the report.html screenshot test)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends chromium fonts-dejavu-core >/dev/null; } \
    || echo "setup: chromium not installed; the screenshot test will be skipped" >&2
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
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      trap 'rm -f "$policy"' EXIT
      printf '#!/bin/sh\n# runbook-checks setup: no service starts during its install\nexit 101\n' \
        >"$policy"
      chmod 755 "$policy"
    fi
    echo "setup: installing Debian's ${need_mon[*]} (optional: the drills' real alerts; services not started)"
    if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${need_mon[@]}" >/dev/null; }; then
      for unit in "${need_mon[@]}"; do
        systemctl disable "$unit.service" >/dev/null 2>&1 || true
      done
    else
      echo "setup: ${need_mon[*]} not installed; stacks start without monitoring (drills: time-to-alert not measured)" >&2
    fi
    if [ "$(trap -p EXIT)" ]; then
      rm -f "$policy"
      trap - EXIT
    fi
  else
    echo "setup: optional ${need_mon[*]} missing: stacks start without monitoring; as root: apt-get install --no-install-recommends ${need_mon[*]}" >&2
  fi
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
