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
