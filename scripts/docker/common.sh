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
SDK_IMAGE_TAG="${SDK_IMAGE_TAG:-ctbench/sdk:latest}"  # base.Dockerfile with VENV_FROM=sdk-builder: ctbench-sdk alone
HOST_CA_BUNDLE="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
# ctbench's own engine (scripts/docker/engine.sh) keeps apart from any other Docker engine on
# the machine: its own socket, data root, exec root, pid file and default bridge.
CTBENCH_DOCKER_HOST="${CTBENCH_DOCKER_HOST:-unix:///var/run/ctbench-docker.sock}"
DOCKERD_DATA_ROOT="${DOCKERD_DATA_ROOT:-/var/lib/ctbench-docker}"
DOCKERD_EXEC_ROOT="${DOCKERD_EXEC_ROOT:-/var/run/ctbench-docker}"
DOCKERD_PIDFILE="${DOCKERD_PIDFILE:-/var/run/ctbench-dockerd.pid}"
DOCKERD_BRIDGE="${DOCKERD_BRIDGE:-ctbench0}"
DOCKERD_BRIDGE_CIDR="${DOCKERD_BRIDGE_CIDR:-172.31.254.1/24}"
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/ctbench-dockerd.log}"
# Every script here talks to that engine unless DOCKER_HOST names another.
export DOCKER_HOST="${DOCKER_HOST:-$CTBENCH_DOCKER_HOST}"

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
