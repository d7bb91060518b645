#!/usr/bin/env bash
# A model server's own stack as a venv outside the image, for `bench selftest MODEL`: the server's
# requirements.txt, with some pins replaced (a CPU-capable torch, say), then ctbench-sdk and
# ctbench from this checkout (editable) constrained by the same pins.
#
#   [PYTHON_FOR_STACK=python3.X] scripts/stack-venv.sh REQUIREMENTS VENV [NAME==VERSION ...]
#   scripts/stack-venv.sh model_servers/merlin/requirements.txt ~/.cache/ctbench/merlin-venv \
#       torch==2.14.1 torchvision==0.29.1
#   VENV/bin/python -m ctbench selftest merlin
#
# Each NAME==VERSION replaces the requirements' line for NAME (it must have one). The venv is
# made with PYTHON_FOR_STACK (default python3): the Python the server's image uses, or one its
# code needs (Med3DVLM's needs >= 3.12; model_servers/VLMS.md). It is reused while the
# requirements, the replacements and that Python are unchanged (a stamp file in it says which);
# ctbench is installed again every time, so the venv follows the checkout. The stack itself comes
# from PyPI; the servers built on the authors' GitHub code also need their checkouts at run time
# (CTBENCH_MED3DVLM_REPO and the like, model_servers/VLMS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 2 ]]; then sed -n '2,17p' "$0" >&2; exit 2; fi
requirements=$1 venv=$2; shift 2
python=${PYTHON_FOR_STACK:-python3}
log() { echo "[stack-venv] $*" >&2; }
if ! command -v "$python" >/dev/null; then
  log "PYTHON_FOR_STACK=$python: no such interpreter on PATH"; exit 2
fi

mkdir -p "$(dirname "$venv")"
pins="$venv.pins.txt"
cp "$requirements" "$pins.new"
for pin in "$@"; do
  name=${pin%%==*}
  if [[ "$name" == "$pin" ]] || ! grep -qiE "^${name}==" "$pins.new"; then
    log "$pin: $requirements has no '${name}==' line to replace"; rm -f "$pins.new"; exit 2
  fi
  sed -i -E "s/^${name}==.*/${pin}/I" "$pins.new"
done
stamp=$( (cat "$pins.new"; "$python" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)

if [[ -f "$venv/.ctbench-stack" && "$(cat "$venv/.ctbench-stack")" == "$stamp" && -x "$venv/bin/python" ]]; then
  log "$venv: the stack is installed ($stamp)"
else
  log "$venv: installing $requirements$( (($#)) && echo " with $*") (minutes: torch is large)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r "$pins.new"
  echo "$stamp" > "$venv/.ctbench-stack"
fi
mv "$pins.new" "$pins"
# ctbench depends on ctbench-sdk at its own version: the SDK first, both from this checkout.
"$venv/bin/python" -m pip install -q -c "$pins" -e ./sdk -e .
log "ready: $venv/bin/python -m ctbench selftest ..."
