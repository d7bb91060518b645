#!/usr/bin/env bash
# Build every ctbench image locally, without Docker Hub:
#   debootstrap Debian -> ctbench/debian:bookworm -> ctbench/python:3.11 -> ctbench/sdk:latest
#   (ctbench-sdk alone, what the template image builds on) and ctbench/base:latest (the full
#   ctbench) -> ctbench/{chance,blind,geometric}:latest and ctbench/gateway:latest
# The layer cache makes a rebuild with unchanged sources take seconds.
#
#   scripts/docker/build-images.sh                      # all of the above
#   BASE_IMAGE=nvidia/cuda:12.4.1-runtime-ubuntu22.04 PYTHON_IMAGE=ctbench/python-cuda:3 \
#     BASE_IMAGE_TAG=ctbench/base-cuda:latest SDK_IMAGE_TAG=ctbench/sdk-cuda:latest \
#     scripts/docker/build-images.sh base
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

# The legacy builder (no buildx here) prints a deprecation banner on every build; keep logs short.
build() {  # build TAG DOCKERFILE [--build-arg ...]
  local tag="$1" file="$2"; shift 2
  log "building $tag ($file)"
  local out; out="$(mktemp)"
  if ! docker build -t "$tag" -f "$file" "$@" . >"$out" 2>&1; then
    tail -30 "$out" >&2; rm -f "$out"; log "building $tag failed"; return 1
  fi
  rm -f "$out"
}

# The host's CA bundle lets pip in the builder stage through a TLS-intercepting proxy. It is
# copied into the build context for the build and removed afterwards; the final images never
# contain it (base.Dockerfile reads it only in its builder stage).
with_build_secrets() {
  local secret="$REPO_ROOT/dockerfiles/build-secrets/ca-certificates.crt" rc=0
  if [[ -s "$HOST_CA_BUNDLE" ]]; then cp "$HOST_CA_BUNDLE" "$secret"; fi
  "$@" || rc=$?
  rm -f "$secret"
  return "$rc"
}

what="${1:-all}"
if [[ -z "${BASE_IMAGE:-}" ]]; then
  "$(dirname "$0")/build-debian-base.sh"
  BASE_IMAGE="$DEBIAN_IMAGE"
fi
build "$PYTHON_IMAGE" dockerfiles/python.Dockerfile --build-arg "BASE_IMAGE=$BASE_IMAGE"
with_build_secrets build "$BASE_IMAGE_TAG" dockerfiles/base.Dockerfile --build-arg "BASE_IMAGE=$PYTHON_IMAGE"
with_build_secrets build "$SDK_IMAGE_TAG" dockerfiles/base.Dockerfile --build-arg "BASE_IMAGE=$PYTHON_IMAGE" \
  --build-arg VENV_FROM=sdk-builder
[[ "$what" == base ]] && exit 0
build ctbench/gateway:latest dockerfiles/gateway.Dockerfile --build-arg "BASE_IMAGE=$PYTHON_IMAGE"
for server in chance blind geometric; do
  with_build_secrets build "ctbench/$server:latest" "dockerfiles/$server.Dockerfile" --build-arg "BASE_IMAGE=$BASE_IMAGE_TAG"
done
# Superseded images (older builds of these tags) are dangling: drop those older than a day,
# keeping today's, whose layers are the build cache.
docker image prune -f --filter "until=24h" >/dev/null
log "images: $(docker images --format '{{.Repository}}:{{.Tag}}' 'ctbench/*' | tr '\n' ' ')"
