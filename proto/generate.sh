#!/usr/bin/env bash
# Regenerates the Python code for proto/ into ctbench/v1/ (mirrors the proto package).
# Needs grpcio-tools at the version pinned in pyproject.toml; tests/test_proto_generated.py
# fails when the committed code differs from what this script emits.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
python -m grpc_tools.protoc -I proto \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  proto/ctbench/v1/answer_volume_question.proto
touch "$out/ctbench/v1/__init__.py"
