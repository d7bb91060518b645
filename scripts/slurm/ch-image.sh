#!/usr/bin/env bash
# A Charliecloud image directory from a ctbench Docker image or a tarball, for
# `bench run --backend slurm --slurm image=DIR` (docs/slurm.md, "Servers in images").
#   scripts/slurm/ch-image.sh ctbench/chance:latest /shared/images/chance   # from ctbench's engine
#   scripts/slurm/ch-image.sh chance.tar.gz /shared/images/chance           # from `docker export`/`ch-convert` output
# ch-convert (Debian's charliecloud) unpacks the image; DIR is replaced if it exists. The result
# is readable by every user (jobs run as their submitter) and has /mnt/0-9 for the binds.
set -euo pipefail
[[ $# == 2 ]] || { echo "usage: $0 DOCKER_IMAGE|TARBALL DIR" >&2; exit 2; }
source_ref="$1" dir="$2"
log() { echo "ch-image.sh: $*" >&2; }
command -v ch-convert >/dev/null || { log "ch-convert missing: apt-get install charliecloud"; exit 1; }
if [[ -f "$source_ref" ]]; then
  input=()  # ch-convert tells a tarball by its name
else
  # ctbench's own engine (scripts/docker/common.sh) unless DOCKER_HOST names another
  export DOCKER_HOST="${DOCKER_HOST:-unix:///var/run/ctbench-docker.sock}"
  docker image inspect "$source_ref" >/dev/null 2>&1 || { log "no Docker image $source_ref at $DOCKER_HOST"; exit 1; }
  input=(-i docker)
fi
mkdir -p "$(dirname "$dir")"
rm -rf "$dir.tmp"
log "ch-convert $source_ref -> $dir"
ch-convert "${input[@]}" "$source_ref" "$dir.tmp" >/dev/null
mkdir -p "$dir.tmp"/mnt/{0..9}  # bind targets: the image is read-only under ch-run
chmod -R a+rX "$dir.tmp"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
log "image at $dir ($(du -sh "$dir" | cut -f1))"
