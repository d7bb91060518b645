#!/usr/bin/env bash
# WordNet 3.0 for METEOR, offline: Debian's wordnet-base + wordnet-sense-index, turned into the
# corpus folder NLTK reads (adds the `lexnames` file Debian does not ship).
# Idempotent; needs root (or sudo) only when the Debian packages are missing.
set -euo pipefail
if [ ! -f /usr/share/wordnet/data.noun ] || [ ! -f /usr/share/wordnet/index.sense ]; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  for attempt in 1 2 3; do  # the mirror can have a bad minute
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      $SUDO apt-get install -y -qq wordnet-base wordnet-sense-index >/dev/null && break
    [ "$attempt" = 3 ] && { echo "apt-get failed 3 times" >&2; exit 1; }
    sleep 10
  done
fi
PY="${PYTHON:-python3}"
# run from / so that a checkout in the current folder does not shadow the installed package
(cd / && "$PY" -m ctbench.evaluation.wordnet_setup)
