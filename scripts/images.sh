#!/usr/bin/env bash
# `make images`: the container backend's images, built without any container registry.
#
#   runbook-checks/debian:bookworm   debootstrap --variant=minbase, imported into the engine
#   runbook-checks/postgres:15       Debian's PostgreSQL 15 with contrib  (stand-in for postgres:15)
#   runbook-checks/redis:7           Debian's Redis                       (stand-in for redis:7)
#   runbook-checks/python:3.11       Python + venv + the host's CA bundle (shared layer)
#   runbook-checks/moto:dev          moto's server: the S3 stand-in (for minio/minio) and
#                                    the AWS control plane (for motoserver/moto), with the
#                                    project's launcher (moto behind AWS's preconditions)
#   runbook-checks/files-api:dev     the Files API twin, this project pip-installed
#   runbook-checks/monitoring:dev    Debian's Prometheus, Alertmanager and the postgres and
#                                    redis exporters (the stack's real alerts)
#
# Idempotent: every image carries a content hash (org.runbook-checks.hash) of what it is
# built from; an image whose hash matches is skipped. The debootstrap rootfs is cached as
# a tarball in ~/.cache/runbook-checks/docker/. Nothing is ever pulled.
#
# Engine: $DOCKER_HOST when set; else the project's own engine (scripts/dockerd.sh, started
# here when root); else the default socket. `scripts/images.sh --rebuild` ignores the hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD

FORMAT=2  # bump to rebuild every image (a change in how they are built)
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${RUNBOOK_CHECKS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runbook-checks}/docker
P=runbook-checks
REBUILD=0
[ "${1:-}" = --rebuild ] && REBUILD=1

say() { echo "images: $*"; }
die() { echo "images: $*" >&2; exit 2; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# -- the engine -------------------------------------------------------------------------
if [ -z "${DOCKER_HOST:-}" ]; then
  if scripts/dockerd.sh status 2>/dev/null; then
    export "$(scripts/dockerd.sh env)"
  elif ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "no Docker engine answers; start one (as root: scripts/dockerd.sh start)"
    export "$(scripts/dockerd.sh start | tail -n 1)"
  fi
fi
command -v docker >/dev/null || die "the docker CLI is missing (apt-get install docker.io)"

hash_label() {
  docker image inspect --format '{{index .Config.Labels "org.runbook-checks.hash"}}' "$1" \
    2>/dev/null || true
}

up_to_date() {  # NAME HASH
  [ "$REBUILD" = 0 ] && [ "$(hash_label "$1")" = "$2" ]
}

# -- 1. the Debian base, from debootstrap ----------------------------------------------
BASE=$P/debian:$SUITE
base_hash=$(printf 'format=%s suite=%s variant=minbase\n' "$FORMAT" "$SUITE" | sha256sum | cut -c1-16)
if up_to_date "$BASE" "$base_hash"; then
  say "$BASE up to date"
else
  mkdir -p "$CACHE"
  tarball=$CACHE/debian-$SUITE-minbase-$base_hash.tar
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || {
      [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || die "debootstrap is missing"
      say "installing Debian's debootstrap"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        debootstrap >/dev/null
    }
    [ "$(id -u)" = 0 ] || die "debootstrap needs root"
    # on a tmpfs: dpkg syncs every file it writes, which costs minutes on a slow disk
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'umount -R "$rootfs" 2>/dev/null || true; rm -rf "$rootfs"' EXIT
    mount -t tmpfs -o size=2g,mode=0755 tmpfs "$rootfs"
    start=$(now)
    say "debootstrap --variant=minbase $SUITE (from $MIRROR) ..."
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" \
      >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -n 20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -f "$rootfs/etc/apt/sources.list"
    # small, quick image layers: no recommends, no docs, no man pages
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
      >"$rootfs/etc/apt/apt.conf.d/90runbook-checks"
    # no docs, and no fsync per file (as Debian's own container images: dpkg's syncs cost
    # minutes in image builds on a slow disk; a crash mid-build just means a rebuild)
    printf 'force-unsafe-io\npath-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n' \
      >"$rootfs/etc/dpkg/dpkg.cfg.d/90runbook-checks"
    rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
      "$rootfs"/usr/share/man/*
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    umount -R "$rootfs"
    rm -rf "$rootfs"
    trap - EXIT
    say "rootfs built and cached in $(took "$start"): $tarball"
  fi
  start=$(now)
  docker import \
    --change "LABEL org.runbook-checks.hash=$base_hash" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$BASE" >/dev/null
  say "$BASE imported in $(took "$start")"
fi

# -- 2. images FROM it ---------------------------------------------------------------------
# build NAME DIR BASE_IMAGE [--build-arg K=V ...]: the context is a staged copy of DIR
# (plus what is put in it below); its hash, the base's hash and the args name the build.
build() {
  local name=$1 context=$2 base=$3
  shift 3
  local base_label
  base_label=$(hash_label "$base")
  [ -n "$base_label" ] || { echo "images: $name: its base $base is missing" >&2; return 2; }
  local hash
  hash=$( { printf 'format=%s base=%s args=%s\n' "$FORMAT" "$base_label" "$*"
            tar -C "$context" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - .
          } | sha256sum | cut -c1-16)
  if up_to_date "$name" "$hash"; then
    say "$name up to date"
    return 0
  fi
  local start log
  start=$(now)
  log=$CACHE/build-${name//[\/:]/_}.log
  say "building $name ..."
  if ! DOCKER_BUILDKIT=0 docker build --network host --build-arg "BASE=$base" "$@" \
      --label "org.runbook-checks.hash=$hash" -t "$name" "$context" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "images: building $name failed (log: $log)" >&2
    return 2
  fi
  say "$name built in $(took "$start")"
}

mkdir -p "$CACHE"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
stage_dir() {  # NAME: docker/NAME copied into the staging folder; prints its path
  mkdir -p "$stage/$1"
  cp -a "docker/$1/." "$stage/$1/"
  echo "$stage/$1"
}

ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || die "no CA bundle at $ca (pip inside the builds needs it)"

postgres_ctx=$(stage_dir postgres)
redis_ctx=$(stage_dir redis)
monitoring_ctx=$(stage_dir monitoring)
python_ctx=$(stage_dir python)
cp "$ca" "$python_ctx/ca-certificates.crt"
moto_ctx=$(stage_dir moto)
# the AWS control plane's launcher (`python -m runbook_checks.stack.aws_control_plane`)
# and the object store's (`python -m runbook_checks.stack.object_store_server`): exactly
# the modules they import, which need the standard library and moto alone
# (tests/unit/stack/test_docker_moto.py imports them from these files only)
LAUNCHER_FILES=(
  runbook_checks/__init__.py
  runbook_checks/errors.py
  runbook_checks/stack/__init__.py
  runbook_checks/stack/aws_rules.py
  runbook_checks/stack/aws_control_plane.py
  runbook_checks/stack/object_store_server.py
)
for file in "${LAUNCHER_FILES[@]}"; do
  mkdir -p "$moto_ctx/launcher/$(dirname "$file")"
  cp "$file" "$moto_ctx/launcher/$file"
done
# moto at the version the local backend runs (parity), else the newest 5.x
moto_version=$("$ROOT_DIR/.venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null || true)
moto_spec="moto[server]>=5"
[ -n "$moto_version" ] && moto_spec="moto[server]==$moto_version"
api_ctx=$(stage_dir files-api)
cp pyproject.toml README.md "$api_ctx/"
# the service without caches or build leftovers (its content decides the rebuild)
tar -C . --exclude=__pycache__ --exclude='*.pyc' -cf - files_api | tar -C "$api_ctx" -xf -

# four independent chains, side by side (the builds wait on the network and the disk)
start=$(now)
build "$P/postgres:15" "$postgres_ctx" "$BASE" & pids=($!)
build "$P/redis:7" "$redis_ctx" "$BASE" & pids+=($!)
build "$P/monitoring:dev" "$monitoring_ctx" "$BASE" & pids+=($!)
{ build "$P/python:3.11" "$python_ctx" "$BASE" \
  && build "$P/moto:dev" "$moto_ctx" "$P/python:3.11" --build-arg "MOTO_SPEC=$moto_spec" \
  && build "$P/files-api:dev" "$api_ctx" "$P/moto:dev"; } & pids+=($!)
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ "$failed" = 0 ] || die "some images did not build (see above)"
say "ready in $(took "$start"): $(docker images --filter "reference=$P/*" --format '{{.Repository}}:{{.Tag}}' | sort | tr '\n' ' ')"
