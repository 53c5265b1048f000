#!/usr/bin/env bash
# A Docker engine the project owns: its own data-root, exec-root, socket and pidfile under
# $RUNBOOK_CHECKS_DOCKER_ROOT (default /var/lib/runbook-checks-docker), host networking
# only (no bridge, no iptables), and pulls that fail at once (no registry is reachable on
# the machines this runs on: the proxy variables point at a closed port).
#
#   scripts/dockerd.sh start    start it unless it runs (idempotent); prints DOCKER_HOST=...
#   scripts/dockerd.sh stop     stop it, by the PID in its pidfile (never by name)
#   scripts/dockerd.sh status   exit 0 when it answers, else 1
#   scripts/dockerd.sh env      print DOCKER_HOST=... (for `eval` / `export`)
#
# Needs root and Linux; installs Debian's docker.io when dockerd is missing (as root).
# RUNBOOK_CHECKS_DOCKERD_ALLOW_PULL=1 leaves the proxy variables out (pulls work where a
# registry is reachable).
set -euo pipefail

ROOT=${RUNBOOK_CHECKS_DOCKER_ROOT:-/var/lib/runbook-checks-docker}
SOCK=$ROOT/docker.sock
PIDFILE=$ROOT/dockerd.pid
LOG=$ROOT/dockerd.log
HOST="unix://$SOCK"

die() { echo "dockerd.sh: $*" >&2; exit 2; }

our_pid() {  # the PID in our pidfile, only if that process is a dockerd using our data-root
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--data-root=$ROOT/data" || return 1
  echo "$pid"
}

answers() {
  docker -H "$HOST" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

ensure_installed() {
  command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "dockerd.sh: installing Debian's docker.io" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io \
      >/dev/null
  else
    die "dockerd/docker not installed; as root: apt-get install docker.io"
  fi
}

start() {
  [ "$(uname -s)" = Linux ] || die "needs Linux"
  [ "$(id -u)" = 0 ] || die "needs root (dockerd runs as root)"
  if our_pid >/dev/null && answers; then
    echo "DOCKER_HOST=$HOST"
    return 0
  fi
  ensure_installed
  mkdir -p "$ROOT/data" "$ROOT/exec"
  chmod 0711 "$ROOT"
  if pid=$(our_pid); then  # alive but not answering: a half-started engine of ours
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$SOCK" "$PIDFILE"
  local proxy=(HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=
               http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy=)
  [ "${RUNBOOK_CHECKS_DOCKERD_ALLOW_PULL:-}" = 1 ] && proxy=()
  # setsid: the engine outlives this script and the shell that ran it
  env "${proxy[@]}" setsid dockerd \
    --iptables=false --ip6tables=false --bridge=none --storage-driver=overlay2 \
    --data-root="$ROOT/data" --exec-root="$ROOT/exec" --pidfile="$PIDFILE" \
    -H "$HOST" --log-level=warn </dev/null >>"$LOG" 2>&1 &
  for _ in $(seq 300); do
    answers && { echo "DOCKER_HOST=$HOST"; return 0; }
    sleep 0.1
  done
  tail -n 20 "$LOG" >&2
  die "the engine did not answer on $SOCK within 30 s (log: $LOG)"
}

unmount_leftovers() {  # what the engine mounted under our root (its netns, a bind of data/)
  awk -v root="$ROOT/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r \
    | while read -r target; do umount -l "$target" 2>/dev/null || true; done
}

stop() {
  local pid
  if ! pid=$(our_pid); then
    echo "dockerd.sh: not running"
    unmount_leftovers
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
      unmount_leftovers
      echo "dockerd.sh: stopped (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  unmount_leftovers
  echo "dockerd.sh: killed (pid $pid) after 20 s"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) our_pid >/dev/null && answers ;;
  env) echo "DOCKER_HOST=$HOST" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
