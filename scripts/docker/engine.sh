#!/usr/bin/env bash
# The Docker engine for ctbench on a machine where none runs by default.
#   scripts/docker/engine.sh install   # apt-get install docker.io (and debootstrap), as root
#   scripts/docker/engine.sh start     # start dockerd in the background unless an engine answers
#   scripts/docker/engine.sh stop      # stop the dockerd this script started (not someone else's)
#   scripts/docker/engine.sh status
# With DOCKER_HOST=unix:///path.sock the engine listens on that socket instead of the default.
source "$(dirname "$0")/common.sh"

engine_up() { docker info >/dev/null 2>&1; }

case "${1:-status}" in
  install)
    if command -v dockerd >/dev/null && command -v debootstrap >/dev/null; then
      log "docker.io and debootstrap already installed"; exit 0
    fi
    log "installing docker.io and debootstrap from the Debian mirror"
    export DEBIAN_FRONTEND=noninteractive
    retry 3 apt-get update -q >/dev/null
    retry 3 apt-get install -y -q --no-install-recommends docker.io debootstrap >/dev/null
    ;;
  start)
    if engine_up; then log "an engine already answers; leaving it alone"; exit 0; fi
    command -v dockerd >/dev/null || { log "dockerd missing: run '$0 install' first"; exit 1; }
    # DOCKER_HOST=unix:///some.sock starts the engine on that socket only (leaving the default
    # socket free, so other users' tools on this machine do not see it).
    args=()
    if [[ "${DOCKER_HOST:-}" == unix://* ]]; then args=(-H "$DOCKER_HOST"); fi
    log "starting dockerd ${args[*]} (log: $DOCKERD_LOG)"
    nohup dockerd "${args[@]}" >"$DOCKERD_LOG" 2>&1 &
    echo $! >"$DOCKERD_PIDFILE"
    for _ in $(seq 1 60); do
      if engine_up; then log "engine up: $(docker version --format '{{.Server.Version}}')"; exit 0; fi
      if ! kill -0 "$(cat "$DOCKERD_PIDFILE")" 2>/dev/null; then
        log "dockerd exited at start:"; tail -20 "$DOCKERD_LOG" >&2; exit 1
      fi
      sleep 1
    done
    log "dockerd did not answer within 60s:"; tail -20 "$DOCKERD_LOG" >&2; exit 1
    ;;
  stop)
    if [[ ! -s "$DOCKERD_PIDFILE" ]]; then log "no dockerd started by this script"; exit 0; fi
    pid="$(cat "$DOCKERD_PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping dockerd (pid $pid)"
      kill -TERM "$pid"
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      kill -0 "$pid" 2>/dev/null && { log "dockerd still up after 30s; killing"; kill -KILL "$pid"; }
    fi
    rm -f "$DOCKERD_PIDFILE"
    ;;
  status)
    if engine_up; then log "engine up: $(docker version --format '{{.Server.Version}}')"; else log "no engine answers"; exit 1; fi
    ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
