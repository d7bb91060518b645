#!/usr/bin/env bash
# Regenerates the Python code for proto/ into ctbench/v1/ (mirrors the proto package).
# Needs grpcio-tools at the version pinned in pyproject.toml, in $PYTHON (default: the checkout's
# .venv, which `scripts/setup.sh --tests` makes); tests/core/test_proto_generated.py fails when the
# committed code differs from what this script emits.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c "import grpc_tools" 2>/dev/null; then
  echo "generate.sh: $PYTHON has no grpc_tools (pip install -e '.[dev]', or set PYTHON)" >&2
  exit 1
fi
"$PYTHON" -m grpc_tools.protoc -I proto \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  proto/ctbench/v1/answer_volume_question.proto
touch "$out/ctbench/v1/__init__.py"
