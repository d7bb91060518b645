#!/usr/bin/env bash
# ctbench's own Docker engine, able to run beside any other engine on the same machine.
#   scripts/docker/engine.sh install   # apt-get install docker.io (debootstrap, docker-compose), as root
#   scripts/docker/engine.sh start     # start ctbench's dockerd in the background
#   scripts/docker/engine.sh stop      # stop the dockerd this script started, and nothing else
#   scripts/docker/engine.sh status
# The engine listens on $DOCKER_HOST (default unix:///var/run/ctbench-docker.sock, never the
# system socket) and keeps its own data root, exec root, pid file and default bridge (see
# common.sh), so a system engine on /var/run/docker.sock is neither seen nor disturbed. Clients
# reach it with `export DOCKER_HOST=unix:///var/run/ctbench-docker.sock`.
source "$(dirname "$0")/common.sh"

engine_up() { docker info >/dev/null 2>&1; }

# The pid in our pid file, if that process is a dockerd started with our pid file (a pid file
# left behind may name a process that reused the pid, or another engine's daemon).
our_dockerd_pid() {
  [[ -s "$DOCKERD_PIDFILE" ]] || return 1
  local pid arg is_dockerd=0 has_pidfile=0
  pid="$(cat "$DOCKERD_PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
  while IFS= read -r -d '' arg; do
    [[ "${arg##*/}" == dockerd ]] && is_dockerd=1
    [[ "$arg" == "--pidfile=$DOCKERD_PIDFILE" ]] && has_pidfile=1
  done <"/proc/$pid/cmdline"
  (( is_dockerd && has_pidfile )) || return 1
  echo "$pid"
}

ensure_bridge() {  # dockerd --bridge needs the bridge to exist
  if ip link show "$DOCKERD_BRIDGE" >/dev/null 2>&1; then return 0; fi
  ip link add "$DOCKERD_BRIDGE" type bridge
  ip addr add "$DOCKERD_BRIDGE_CIDR" dev "$DOCKERD_BRIDGE"
  ip link set "$DOCKERD_BRIDGE" up
}

case "${1:-status}" in
  install)
    # docker-compose (1.29) brings compose/compose.yaml up for real in the compose isolation test.
    if command -v dockerd >/dev/null && command -v debootstrap >/dev/null \
        && { command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1; }; then
      log "docker.io, debootstrap and compose already installed"; exit 0
    fi
    log "installing docker.io, debootstrap and docker-compose from the Debian mirror"
    export DEBIAN_FRONTEND=noninteractive
    retry 3 apt-get update -q >/dev/null
    retry 3 apt-get install -y -q --no-install-recommends docker.io debootstrap docker-compose >/dev/null
    ;;
  start)
    if engine_up; then log "an engine already answers at $DOCKER_HOST; leaving it alone"; exit 0; fi
    [[ "$DOCKER_HOST" == unix://* ]] || { log "DOCKER_HOST=$DOCKER_HOST: this script starts engines on unix sockets only"; exit 1; }
    command -v dockerd >/dev/null || { log "dockerd missing: run '$0 install' first"; exit 1; }
    if pid="$(our_dockerd_pid)"; then log "dockerd (pid $pid) is up but does not answer at $DOCKER_HOST"; exit 1; fi
    rm -f "$DOCKERD_PIDFILE"  # not our daemon's (checked above): a stale file would stop dockerd
    ensure_bridge
    mkdir -p "$DOCKERD_DATA_ROOT" "$DOCKERD_EXEC_ROOT"
    args=(-H "$DOCKER_HOST" "--data-root=$DOCKERD_DATA_ROOT" "--exec-root=$DOCKERD_EXEC_ROOT"
          "--pidfile=$DOCKERD_PIDFILE" "--bridge=$DOCKERD_BRIDGE"
          --containerd-namespace=ctbench --containerd-plugins-namespace=ctbench-plugins)
    log "starting dockerd ${args[*]} (log: $DOCKERD_LOG)"
    nohup dockerd "${args[@]}" >"$DOCKERD_LOG" 2>&1 &
    launched=$!
    for _ in $(seq 1 60); do
      if engine_up; then log "engine up at $DOCKER_HOST: $(docker version --format '{{.Server.Version}}')"; exit 0; fi
      if ! kill -0 "$launched" 2>/dev/null; then
        log "dockerd exited at start:"; tail -20 "$DOCKERD_LOG" >&2; exit 1
      fi
      sleep 1
    done
    log "dockerd did not answer within 60s:"; tail -20 "$DOCKERD_LOG" >&2; exit 1
    ;;
  stop)
    if ! pid="$(our_dockerd_pid)"; then
      if [[ -s "$DOCKERD_PIDFILE" ]]; then
        log "pid file $DOCKERD_PIDFILE names pid $(cat "$DOCKERD_PIDFILE"), which is not this script's dockerd; nothing stopped"
      else
        log "no dockerd started by this script"
      fi
      exit 0
    fi
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then log "dockerd still up after 30s; killing"; kill -KILL "$pid"; fi
    rm -f "$DOCKERD_PIDFILE"
    if ip link show "$DOCKERD_BRIDGE" >/dev/null 2>&1; then ip link delete "$DOCKERD_BRIDGE"; fi
    ;;
  status)
    if engine_up; then log "engine up at $DOCKER_HOST: $(docker version --format '{{.Server.Version}}')"; else log "no engine answers at $DOCKER_HOST"; exit 1; fi
    ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
