#!/usr/bin/env bash
# The test command: sets everything up on a fresh machine and runs the whole suite.
#   1. scripts/setup.sh --tests (system packages, .venv with every extra), AlignScore's own venv
#      and Merlin's (scripts/stack-venv.sh), cached under ~/.cache/ctbench
#   2. the containers stage, for real: install and start the Docker engine, build the images
#      from a debootstrap base, `bench run --servers all` through containers, conformance,
#      the docker-marked fault tests, tear down, stop the engine (scripts/docker/ci-stage.sh)
#   3. lint and types (scripts/lint.py: ruff, and mypy against its shrinking baseline)
#   4. the test suite (unit, loopback gRPC, real server processes, reproduction of the
#      published tables), last, so its summary line closes the output
#   5. a real SLURM cluster for the slurm-marked tests (scripts/slurm/cluster.sh), stopped after;
#      the Charliecloud test runs the chance image stage 2 converted (scripts/slurm/ch-image.sh)
# CTBENCH_SKIP_DOCKER=1 skips stage 2 (for machines where no engine may run), CTBENCH_SKIP_SLURM=1 stage 5.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --tests

# AlignScore's own venv for tests/evaluation/test_alignscore.py, from PyPI, cached under
# ~/.cache/ctbench: minutes cold, seconds once made (bench metrics setup is idempotent). Bounded;
# where it cannot be made (offline with no cached venv) the test reports "not installed", which
# fails the suite under CTBENCH_REQUIRE_TEST_TOOLS=1.
timeout 2400 .venv/bin/bench metrics setup alignscore --timeout 1800 \
  --venv "${CTBENCH_ALIGNSCORE_TEST_VENV:-$HOME/.cache/ctbench/alignscore-venv}" \
  || echo "[test] AlignScore's venv could not be made; tests/evaluation/test_alignscore.py will fail" >&2

# Merlin's own stack (merlin-vlm from PyPI, the server's requirements.txt) for its `bench selftest`
# in tests/model_servers/test_selftest_authors_stacks.py, cached under ~/.cache/ctbench like
# AlignScore's (a minute or two cold). Its torch/torchvision pins are the CUDA 12 builds of the
# image; here the pair that imports on a CPU-only x86_64 machine replaces them
# (CTBENCH_MERLIN_TORCH to choose another). If it cannot be made the test fails, naming the venv.
CTBENCH_MERLIN_PYTHON="${CTBENCH_MERLIN_TEST_VENV:-$HOME/.cache/ctbench/merlin-venv}/bin/python"
export CTBENCH_MERLIN_PYTHON
# shellcheck disable=SC2086  # the pins are separate words
timeout 1800 bash scripts/stack-venv.sh model_servers/merlin/requirements.txt "${CTBENCH_MERLIN_PYTHON%/bin/python}" \
  ${CTBENCH_MERLIN_TORCH:-torch==2.14.1 torchvision==0.29.1} \
  || echo "[test] Merlin's venv could not be made; its selftest in test_selftest_authors_stacks.py will fail" >&2

# Every tool below comes from the environment setup.sh just made, never from whatever else is on
# PATH: the venv's python, pytest, hadolint and grpc_tools first. Under the test command a test
# whose tool is missing fails instead of skipping (tests/conftest.py: CTBENCH_REQUIRE_TEST_TOOLS).
# The system's administrator tools (dockerd, iptables, slurmd live in sbin) are looked up there
# too: the minimal PATH CI runs under leaves them out.
VIRTUAL_ENV="$PWD/.venv"
PATH="$VIRTUAL_ENV/bin:$PATH:/usr/sbin:/sbin"
PYTHON="$VIRTUAL_ENV/bin/python"
CTBENCH_REQUIRE_TEST_TOOLS=1
export VIRTUAL_ENV PATH PYTHON CTBENCH_REQUIRE_TEST_TOOLS

if [[ "${CTBENCH_SKIP_DOCKER:-0}" != 1 ]]; then
  BENCH=.venv/bin/bench PYTEST=.venv/bin/pytest bash scripts/docker/ci-stage.sh
fi

# A real SLURM cluster on this machine (two nodes, fake GPUs, one node in its own network
# namespace) for the slurm-marked tests; stopped, daemons by pid, when the suite ends.
# CTBENCH_SKIP_SLURM=1 skips it (those tests then skip, saying why).
if [[ "${CTBENCH_SKIP_SLURM:-0}" != 1 ]]; then
  trap 'bash scripts/slurm/cluster.sh stop >/dev/null 2>&1 || true' EXIT
  bash scripts/slurm/cluster.sh start
  export SLURM_CONF="${CTBENCH_SLURM_DIR:-/tmp/ctbench-slurm}/etc/slurm.conf"
fi

# Lint and types: ruff finds nothing, mypy nothing beyond scripts/mypy-baseline.txt (a list that
# only shrinks). Run before the suite; a failure fails the command once the suite has run.
lint=0
"$PYTHON" scripts/lint.py || lint=$?

suite=0
.venv/bin/pytest -q -m "not docker" -p no:cacheprovider "$@" || suite=$?
if [[ $lint != 0 ]]; then
  echo "[test] lint failed (scripts/lint.py, above the suite's output)" >&2
  [[ $suite != 0 ]] || suite=1
fi
exit $suite
