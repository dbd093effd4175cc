#!/usr/bin/env bash
# Builds the CPU image from the committed tree (git HEAD) and checks it: the default command
# (horovodrun --check-build), the README's `make demo` and `make test` inside it (with no second
# environment made), no compiler and no pip cache in it, its size. A developer's check, not CI's:
# about 10-15 minutes on 2 cores (Horovod compiles in the build) and 3 GB of disk. Run as root on
# a Debian 12 host; it needs no Docker daemon and no registry, only Debian's mirror and PyPI:
#   scripts/docker_check.sh [BASE_IMAGE]
# BASE_IMAGE  the build and runtime image, an image the daemon has or can pull (default: a
#             stand-in for python:3.11-slim-bookworm made here with debootstrap and docker import)
# Environment:
#   WORK_DIR  the daemon's data, the stand-in's root file system, logs (default: a new temporary
#             folder; kept afterwards, a second run reuses its stand-in and build cache)
#   BUILDER   buildkit (default) or legacy: Docker's builder to build with
#   SRC       a folder to build instead of git HEAD (e.g. . for the working tree)
#   QUICK=1   build, the default command and the no-compiler check only (no make demo/test)
# It installs Debian's docker.io (20.10) and debootstrap, and runs a private dockerd (own socket
# and data; no bridge, no iptables) that it stops on exit. CA certificates the host trusts in
# /usr/local/share/ca-certificates go to the build through the image's CA_CERT argument.
set -euo pipefail
SCRIPT_NAME=docker_check
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
repo=$(cd "$(dirname "$0")/.." && pwd)
base=${1:-}
builder=${BUILDER:-buildkit}
case $builder in
  buildkit) buildkit=1 ;;
  legacy) buildkit=0 ;;
  *) die "BUILDER must be buildkit or legacy, not '$builder'" ;;
esac
[ "$(id -u)" = 0 ] || die "run as root (it starts its own dockerd)"
work=$(abspath "${WORK_DIR:-$(mktemp -d)}")
mkdir -p "$work"
docker=/usr/bin/docker  # Debian's client: BuildKit built in (a static docker >= 23 lacks buildx)
log() { echo "==> $(date +%T) $*"; }
summary=$work/summary.txt
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

log "apt: docker.io and debootstrap"
if [ ! -x /usr/sbin/dockerd ] || ! command -v debootstrap >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap >/dev/null
fi

log "the source: ${SRC:-git HEAD of $repo}"
src=$work/src
rm -rf "$src" && mkdir -p "$src"
if [ -n "${SRC:-}" ]; then
  cp -a "$(abspath "$SRC")/." "$src/"
else
  git -C "$repo" archive HEAD | tar -x -C "$src"
  note "source: git HEAD $(git -C "$repo" rev-parse --short HEAD)"
fi

log "a private dockerd (logs in $work/dockerd.log)"
/usr/sbin/dockerd --data-root "$work/docker" --exec-root "$work/exec" \
  --pidfile "$work/dockerd.pid" -H "unix://$work/docker.sock" \
  --storage-driver=overlay2 --iptables=false --bridge=none > "$work/dockerd.log" 2>&1 &
dockerd_pid=$!
trap 'kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null || true' EXIT
export DOCKER_HOST="unix://$work/docker.sock"
for _ in $(seq 60); do "$docker" info >/dev/null 2>&1 && break; sleep 1; done
"$docker" info >/dev/null 2>&1 || { tail -20 "$work/dockerd.log"; die "dockerd did not start"; }

if [ -z "$base" ] && "$docker" image inspect local/python311-bookworm >/dev/null 2>&1; then
  base=local/python311-bookworm  # made by an earlier run: imported again, it would void the cache
  log "$base: the stand-in of an earlier run"
elif [ -z "$base" ]; then
  base=local/python311-bookworm
  log "$base: a stand-in for python:3.11-slim-bookworm (debootstrap, docker import)"
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || die "no Debian mirror in the host's apt sources"
  rootfs=$work/rootfs
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,netbase,tzdata \
      bookworm "$rootfs" "$mirror" > "$work/debootstrap.log" \
      || { tail -5 "$work/debootstrap.log"; die "debootstrap failed"; }
  fi
  rm -f "$rootfs/etc/apt/sources.list"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: %s\n' \
    "$mirror" /usr/share/keyrings/debian-archive-keyring.gpg > "$rootfs/etc/apt/sources.list.d/debian.sources"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # the official image's PATH and LANG
  tar -C "$rootfs" -c . | "$docker" import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' - "$base" >/dev/null
fi

ca_cert=""
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  ca_cert=$(cat /usr/local/share/ca-certificates/*.crt)
fi
log "docker build ($builder; log in $work/build.log)"
start=$(date +%s)
DOCKER_BUILDKIT=$buildkit "$docker" build --network host \
  --build-arg BASE_IMAGE="$base" --build-arg RUNTIME_IMAGE="$base" --build-arg CA_CERT="$ca_cert" \
  -t gluon-tricks:cpu "$src" > "$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log"; die "the build failed (log: $work/build.log)"; }
note "build ($builder, $(nproc) cores): $(($(date +%s) - start)) s"
note "image size: $("$docker" image inspect -f '{{.Size}}' gluon-tricks:cpu | awk '{printf "%.2f GB", $1 / 1e9}')"

run() { timeout 1800 "$docker" run --rm --network host gluon-tricks:cpu "$@"; }
log "the default command: horovodrun --check-build && gluon-tricks --help"
run > "$work/cmd.log" 2>&1 || { cat "$work/cmd.log"; die "the default command failed"; }
grep -q '\[X\] MXNet' "$work/cmd.log" || { cat "$work/cmd.log"; die "horovod was built without MXNet"; }
note "default command: $(grep -c '\[X\]' "$work/cmd.log") [X] lines of --check-build, then the help"

log "in the image: no compiler, no pip cache"
run bash -c '! command -v g++ && ! command -v cc && [ ! -e /root/.cache/pip ]' \
  || die "the runtime image has a compiler or a pip cache"
note "runtime image: no g++/cc, no /root/.cache/pip"

if [ "${QUICK:-0}" = 1 ]; then
  log "QUICK=1: no make demo or make test"
  cat "$summary"
  exit 0
fi
log "make demo, then make test, each in a new container: no .venv made"
start=$(date +%s)
run bash -c 'make demo && test ! -e .venv' > "$work/demo.log" 2>&1 \
  || { tail -20 "$work/demo.log"; die "make demo failed, or made .venv"; }
note "make demo: $(($(date +%s) - start)) s; $(grep -i 'top-1' "$work/demo.log" | tail -1)"
# make test's outcome is recorded, not required: a lint finding is the code's, not the image's
start=$(date +%s)
status=0
run bash -c 'make test; status=$?; test ! -e .venv || { echo "made .venv"; exit 3; }; exit $status' \
  > "$work/test.log" 2>&1 || status=$?
[ "$status" != 3 ] || die "make test made .venv"
failed_lint=$(grep -o 'lint-[a-z]*\] Error' "$work/test.log" | cut -d']' -f1 | tr '\n' ' ' || true)
note "make test: exit $status in $(($(date +%s) - start)) s; lint steps failed: ${failed_lint:-none};" \
  "tests: $(grep -E '[0-9]+ (passed|failed)' "$work/test.log" | tail -1)"
log "done; summary in $summary, images in $work/docker (dockerd $dockerd_pid stops now)"
cat "$summary"
