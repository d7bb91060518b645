#!/usr/bin/env bash
# Build the Debian base image from the distribution mirror with debootstrap: no Docker Hub.
# The root filesystem tarball is cached in $CTBENCH_CACHE; the image is imported once per engine.
#   scripts/docker/build-debian-base.sh          # reuse the image or the cached tarball
#   FORCE=1 scripts/docker/build-debian-base.sh  # rebuild both
source "$(dirname "$0")/common.sh"

if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1; then
  log "$DEBIAN_IMAGE present; skipping"
  exit 0
fi

tarball="$CTBENCH_CACHE/debian-${DEBIAN_SUITE}-minbase.tar"
if [[ "${FORCE:-0}" == 1 || ! -s "$tarball" ]]; then
  command -v debootstrap >/dev/null || { log "debootstrap missing: apt-get install -y debootstrap"; exit 1; }
  mkdir -p "$CTBENCH_CACHE"
  rootfs="$(mktemp -d "$CTBENCH_CACHE/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap $DEBIAN_SUITE from $DEBIAN_MIRROR (a few minutes, cached afterwards)"
  bootstrap() {
    rm -rf "${rootfs:?}"/* 2>/dev/null || true
    debootstrap --variant=minbase --include=ca-certificates "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" \
      > "$CTBENCH_CACHE/debootstrap.log" 2>&1 || { tail -20 "$CTBENCH_CACHE/debootstrap.log"; return 1; }
  }
  retry 3 bootstrap
  # Keep images small and reproducible: no apt lists or caches in the base layer.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi

log "importing $tarball as $DEBIAN_IMAGE"
docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' "$tarball" "$DEBIAN_IMAGE" >/dev/null
