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
# With `--netns NAME` (after the command), the same for an engine with ordinary bridged
# networking (a default bridge, user-defined bridge networks, `-p` published ports through
# the userland proxy; iptables still off) that lives inside network namespace NAME, so
# every bridge, veth and private address it makes stays inside that namespace:
#
#   scripts/dockerd.sh start --netns NAME   create NAME unless it exists (lo up), start the
#                                           engine in it; prints DOCKER_HOST=...
#   scripts/dockerd.sh stop --netns NAME    stop it, unmount what it mounted, remove its
#                                           runtime folder and NAME if `start` created it
#   scripts/dockerd.sh exec --netns NAME -- CMD ...
#                                           run CMD in NAME with DOCKER_HOST set (how the
#                                           drills run against it: `nsenter --net`)
#
# It shares the data root (and so the images `make images` built) with the host's engine:
# two engines cannot share one, so `start --netns` refuses while another engine runs on it,
# and `start` waits (up to $RUNBOOK_CHECKS_DOCKERD_WAIT_S, default 300 s) while an engine in
# a namespace runs. Its socket, pidfile, log and exec-root are under $ROOT/netns/NAME.
# It enters only the namespace's network (`nsenter --net`), not a mount namespace of its
# own as `ip netns exec` would make: the stack's PostgreSQL disk (a tmpfs the drill
# mounts) must be the one the engine bind-mounts.
#
# Needs root and Linux; installs Debian's docker.io when dockerd is missing (as root).
# RUNBOOK_CHECKS_DOCKERD_ALLOW_PULL=1 leaves the proxy variables out (pulls work where a
# registry is reachable).
set -euo pipefail

ROOT=${RUNBOOK_CHECKS_DOCKER_ROOT:-/var/lib/runbook-checks-docker}
CMD=${1:-}
if [ $# -gt 0 ]; then shift; fi
NETNS=
if [ "${1:-}" = --netns ]; then
  NETNS=${2:-}
  shift 2 || true
fi

die() { echo "dockerd.sh: $*" >&2; exit 2; }

if [ -n "$NETNS" ]; then
  [[ "$NETNS" =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || die "--netns: a name of letters, digits, _ . -"
  RUN=$ROOT/netns/$NETNS
  EXEC=$RUN/exec
else
  RUN=$ROOT
  EXEC=$ROOT/exec
fi
SOCK=$RUN/docker.sock
PIDFILE=$RUN/dockerd.pid
LOG=$RUN/dockerd.log
HOST="unix://$SOCK"

pid_of() {  # PIDFILE: its PID, only if that process is a dockerd using our data-root
  [ -f "$1" ] || return 1
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--data-root=$ROOT/data" || return 1
  echo "$pid"
}

our_pid() { pid_of "$PIDFILE"; }

other_engine() {  # another live engine on our data root: "where (pid N)"
  local f pid
  for f in "$ROOT/dockerd.pid" "$ROOT"/netns/*/dockerd.pid; do
    [ "$f" = "$PIDFILE" ] && continue
    if pid=$(pid_of "$f"); then
      local where=host
      [ "$f" = "$ROOT/dockerd.pid" ] || where="netns $(basename "$(dirname "$f")")"
      echo "$where (pid $pid)"
      return 0
    fi
  done
  return 1
}

netns_exists() { [ -e "/run/netns/$NETNS" ]; }

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
  local other
  if [ -n "$NETNS" ]; then
    command -v nsenter >/dev/null && ip netns list >/dev/null 2>&1 \
      || die "--netns needs iproute2's ip netns and util-linux's nsenter"
    if other=$(other_engine); then
      die "the engine on $ROOT/data runs ($other): two engines cannot share a data root;" \
        "stop it first (scripts/dockerd.sh stop)"
    fi
  else
    local i
    for i in $(seq "${RUNBOOK_CHECKS_DOCKERD_WAIT_S:-300}"); do
      other=$(other_engine) || break
      [ "$i" = 1 ] && echo "dockerd.sh: waiting for the engine in $other to stop" \
        "(it holds $ROOT/data)" >&2
      sleep 1
    done
    if other=$(other_engine); then die "the engine in $other still holds $ROOT/data"; fi
  fi
  mkdir -p "$ROOT/data" "$EXEC"
  chmod 0711 "$ROOT"
  if pid=$(our_pid); then  # alive but not answering: a half-started engine of ours
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$SOCK" "$PIDFILE"
  local proxy=(HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=
               http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy=)
  [ "${RUNBOOK_CHECKS_DOCKERD_ALLOW_PULL:-}" = 1 ] && proxy=()
  local enter=() network=(--bridge=none)
  if [ -n "$NETNS" ]; then
    if ! netns_exists; then
      # ours to delete at stop; and so is iproute2's /run/netns (a mount) if it made it now
      if [ -d /run/netns ]; then echo netns >"$RUN/created-netns"; else echo netns run \
        >"$RUN/created-netns"; fi
      ip netns add "$NETNS"
    fi
    ip netns exec "$NETNS" ip link set lo up
    enter=(nsenter "--net=/run/netns/$NETNS")
    network=()  # the default bridge and user-defined ones; published ports via docker-proxy
  fi
  # setsid: the engine outlives this script and the shell that ran it
  env "${proxy[@]}" "${enter[@]}" setsid dockerd \
    --iptables=false --ip6tables=false "${network[@]}" --storage-driver=overlay2 \
    --data-root="$ROOT/data" --exec-root="$EXEC" --pidfile="$PIDFILE" \
    -H "$HOST" --log-level=warn </dev/null >>"$LOG" 2>&1 &
  for _ in $(seq 300); do
    answers && { echo "DOCKER_HOST=$HOST"; return 0; }
    sleep 0.1
  done
  tail -n 20 "$LOG" >&2
  die "the engine did not answer on $SOCK within 30 s (log: $LOG)"
}

unmount_leftovers() {  # what the engine mounted (its containers' netns, layers under data/)
  local prefixes=("$EXEC/")
  # data/ is shared: left alone while another engine uses it
  other_engine >/dev/null || prefixes+=("$ROOT/data/")
  local prefix
  for prefix in "${prefixes[@]}"; do
    awk -v root="$prefix" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r \
      | while read -r target; do umount -l "$target" 2>/dev/null || true; done
  done
}

forget_netns() {  # after a --netns engine stopped: its folder, and NAME if start made it
  [ -n "$NETNS" ] || return 0
  if [ -e "$RUN/created-netns" ] && netns_exists; then
    ip netns del "$NETNS" 2>/dev/null || echo "dockerd.sh: could not delete netns $NETNS" >&2
  fi
  # /run/netns, if our start made it and no namespace is left in it
  if grep -qw run "$RUN/created-netns" 2>/dev/null && [ -d /run/netns ] \
      && [ -z "$(ls -A /run/netns)" ]; then
    umount /run/netns 2>/dev/null || true
    rmdir /run/netns 2>/dev/null || true
  fi
  rm -rf "$RUN"
  rmdir "$ROOT/netns" 2>/dev/null || true
}

stop() {
  local pid
  if ! pid=$(our_pid); then
    echo "dockerd.sh: not running"
    unmount_leftovers
    forget_netns
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
      unmount_leftovers
      forget_netns
      echo "dockerd.sh: stopped (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  unmount_leftovers
  forget_netns
  echo "dockerd.sh: killed (pid $pid) after 20 s"
}

run_in_netns() {
  [ -n "$NETNS" ] || die "exec needs --netns NAME"
  [ "${1:-}" = -- ] && shift
  [ $# -gt 0 ] || die "exec: no command"
  netns_exists || die "no network namespace $NETNS (scripts/dockerd.sh start --netns $NETNS)"
  exec env DOCKER_HOST="$HOST" nsenter "--net=/run/netns/$NETNS" "$@"
}

case "$CMD" in
  start) start ;;
  stop) stop ;;
  status) our_pid >/dev/null && answers ;;
  env) echo "DOCKER_HOST=$HOST" ;;
  exec) run_in_netns "$@" ;;
  *) echo "usage: $0 start|stop|status|env [--netns NAME]; $0 exec --netns NAME -- CMD" >&2
     exit 2 ;;
esac
