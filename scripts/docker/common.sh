# Shared settings for the scripts in scripts/docker/ (sourced, not run).
# shellcheck shell=bash
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Survives between runs on the same machine: the debootstrap tarball and logs.
CTBENCH_CACHE="${CTBENCH_CACHE:-/var/cache/ctbench}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_IMAGE="${DEBIAN_IMAGE:-ctbench/debian:${DEBIAN_SUITE}}"
PYTHON_IMAGE="${PYTHON_IMAGE:-ctbench/python:3.11}"
BASE_IMAGE_TAG="${BASE_IMAGE_TAG:-ctbench/base:latest}"
HOST_CA_BUNDLE="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/ctbench-dockerd.log}"
DOCKERD_PIDFILE="${DOCKERD_PIDFILE:-/tmp/ctbench-dockerd.pid}"

log() { printf '[ctbench-docker %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# retry N CMD...: run CMD up to N times, 10 s apart (mirrors and registries have bad minutes).
retry() {
  local _tries="$1" _attempt=1
  shift
  until "$@"; do
    if (( _attempt >= _tries )); then log "failed $_attempt times: $*"; return 1; fi
    log "attempt $_attempt failed: $*; retrying in 10s"
    _attempt=$((_attempt + 1))
    sleep 10
  done
}
