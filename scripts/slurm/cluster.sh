#!/usr/bin/env bash
# A real one-machine SLURM cluster for the slurm-marked tests and for trying `--backend slurm`:
# munged, slurmctld and two slurmd nodes (n1, n2), two fake GPUs each (device files), cgroup
# process tracking. Everything it writes lives under one folder, $CTBENCH_SLURM_DIR
# (default /tmp/ctbench-slurm): config, state, spool, logs, pid files, the munge key and socket.
#
# Node n2 runs in its own network namespace (ctbench-slurm-n2, a veth pair 10.77.7.1 <-> 10.77.7.2),
# as a compute node that is not the login node: a server there that bound 127.0.0.1 would be
# unreachable, so servers bind to their node's address. CTBENCH_SLURM_NETNS=0 keeps n2 on the
# host's network (NodeAddr 127.0.0.1), for machines without `ip netns`.
#
#   scripts/slurm/cluster.sh start    # as root: installs slurm-wlm, munge and charliecloud (apt) if missing
#   eval "$(scripts/slurm/cluster.sh env)"   # SLURM_CONF for sinfo/sbatch in this shell
#   scripts/slurm/cluster.sh status
#   scripts/slurm/cluster.sh stop     # stops only the daemons this folder's pid files name
#
# The tests find the cluster through $SLURM_CONF, or through the default folder when that is unset.
set -euo pipefail

DIR="${CTBENCH_SLURM_DIR:-/tmp/ctbench-slurm}"
CTLD_PORT="${CTBENCH_SLURM_CTLD_PORT:-16817}"
NODE_PORTS=(17001 17002)
NODES=(n1 n2)
GPUS_PER_NODE=2
CPUS_PER_NODE=4
MEMORY_MB=4000
CONF="$DIR/etc/slurm.conf"
# The key stays owner-only in munge/; the socket sits in run/ so that users other than root can
# submit (the Charliecloud test submits as an unprivileged user).
MUNGE_SOCKET="$DIR/run/munge.socket"
NETNS_ENABLED="${CTBENCH_SLURM_NETNS:-1}"
NETNS=ctbench-slurm-n2
SUBNET="${CTBENCH_SLURM_SUBNET:-10.77.7}"  # host side .1, namespaced node .2
VETH_HOST=ctbslurm-h
VETH_NODE=ctbslurm-n

log() { echo "cluster.sh: $*" >&2; }

install_packages() {
  local packages=()
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null || packages+=(slurm-wlm)
  command -v munged >/dev/null || packages+=(munge)
  command -v ch-run >/dev/null || packages+=(charliecloud)  # servers in images (docs/slurm.md)
  [[ "$NETNS_ENABLED" != 1 ]] || command -v ip >/dev/null || packages+=(iproute2)
  ((${#packages[@]})) || return 0
  [[ $(id -u) == 0 ]] || { log "slurm-wlm and munge are not installed; run as root to install them"; exit 1; }
  log "installing ${packages[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
}

node_addr() {  # NODE -> the address slurmctld and the runner reach it at
  if [[ "$NETNS_ENABLED" == 1 && "$1" == n2 ]]; then echo "$SUBNET.2"; else echo 127.0.0.1; fi
}

ctld_addr() {  # reachable from the host and from inside the namespace
  if [[ "$NETNS_ENABLED" == 1 ]]; then echo "$SUBNET.1"; else echo 127.0.0.1; fi
}

start_netns() {
  [[ "$NETNS_ENABLED" == 1 ]] || return 0
  ip netns list | grep -qw "$NETNS" || ip netns add "$NETNS"
  if ! ip link show "$VETH_HOST" >/dev/null 2>&1; then
    ip link add "$VETH_HOST" type veth peer name "$VETH_NODE" netns "$NETNS"
    ip addr add "$SUBNET.1/30" dev "$VETH_HOST"
    ip -n "$NETNS" addr add "$SUBNET.2/30" dev "$VETH_NODE"
  fi
  ip link set "$VETH_HOST" up
  ip -n "$NETNS" link set lo up
  ip -n "$NETNS" link set "$VETH_NODE" up
}

stop_netns() {
  ip link del "$VETH_HOST" 2>/dev/null || true  # takes its peer in the namespace with it
  if ip netns list 2>/dev/null | grep -qw "$NETNS"; then ip netns del "$NETNS"; fi
}

in_node_netns() {  # NODE COMMAND...: nsenter, not `ip netns exec` (that remounts /sys, and slurmd needs its cgroups)
  local node="$1"; shift
  if [[ "$NETNS_ENABLED" == 1 && "$node" == n2 ]]; then nsenter --net="/run/netns/$NETNS" "$@"; else "$@"; fi
}

write_config() {
  mkdir -p "$DIR"/{etc,state,log,run,munge,dev}
  for node in "${NODES[@]}"; do mkdir -p "$DIR/spool/$node"; done
  chmod 700 "$DIR/munge"
  local gres_lines=""
  for node in "${NODES[@]}"; do
    for ((i = 0; i < GPUS_PER_NODE; i++)); do
      [[ -e "$DIR/dev/$node-gpu$i" ]] || mknod "$DIR/dev/$node-gpu$i" c 1 3  # a /dev/null twin
    done
    gres_lines+="NodeName=$node Name=gpu File=$DIR/dev/$node-gpu[0-$((GPUS_PER_NODE - 1))]"$'\n'
  done
  printf '%s' "$gres_lines" >"$DIR/etc/gres.conf"
  cat >"$DIR/etc/cgroup.conf" <<CGROUP
CgroupPlugin=cgroup/v1
CgroupAutomount=yes
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainDevices=no
CGROUP
  local host
  host="$(hostname -s)"
  {
    cat <<SLURM
ClusterName=ctbench
SlurmctldHost=$host($(ctld_addr))
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
ProctrackType=proctrack/cgroup
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=256
GresTypes=gpu
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=60
SLURM
    for ((n = 0; n < ${#NODES[@]}; n++)); do
      echo "NodeName=${NODES[$n]} NodeHostname=$host NodeAddr=$(node_addr "${NODES[$n]}") Port=${NODE_PORTS[$n]} CPUs=$CPUS_PER_NODE RealMemory=$MEMORY_MB Gres=gpu:$GPUS_PER_NODE State=UNKNOWN"
    done
    echo "PartitionName=debug Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES MaxTime=INFINITE State=UP"
  } >"$CONF"
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  pid_alive "$DIR/run/munged.pid" && return
  [[ -f "$DIR/munge/munge.key" ]] || mungekey --create --keyfile="$DIR/munge/munge.key" --bits=1024
  chmod 600 "$DIR/munge/munge.key"
  munged --force --key-file="$DIR/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
}

wait_for_nodes() {
  local deadline=$((SECONDS + 60)) idle
  while ((SECONDS < deadline)); do
    idle="$(SLURM_CONF="$CONF" sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 == "idle"' | wc -l)"
    ((idle == ${#NODES[@]})) && return
    sleep 0.5
  done
  log "nodes did not turn idle within 60 s:"
  SLURM_CONF="$CONF" sinfo -N -l >&2 || true
  tail -n 20 "$DIR"/log/slurm*.log >&2 || true
  exit 1
}

start() {
  install_packages
  write_config
  start_netns
  start_munge
  export SLURM_CONF="$CONF"
  pid_alive "$DIR/run/slurmctld.pid" || slurmctld -f "$CONF"
  for node in "${NODES[@]}"; do
    pid_alive "$DIR/run/slurmd-$node.pid" || in_node_netns "$node" slurmd -f "$CONF" -N "$node"
  done
  wait_for_nodes
  log "cluster up: $(sinfo -h -o '%D nodes, partition %P, %G')"
  log "use it with: export SLURM_CONF=$CONF"
}

stop_pid_file() {
  local file="$1" pid
  [[ -f "$file" ]] || return 0
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$file"
}

stop() {
  if [[ -f "$CONF" ]] && pid_alive "$DIR/run/slurmctld.pid"; then
    SLURM_CONF="$CONF" scancel --user="$(id -un)" 2>/dev/null || true  # jobs end before their nodes
  fi
  for node in "${NODES[@]}"; do stop_pid_file "$DIR/run/slurmd-$node.pid"; done
  stop_pid_file "$DIR/run/slurmctld.pid"
  stop_pid_file "$DIR/run/munged.pid"
  stop_netns
  log "stopped (state and logs kept in $DIR)"
}

status() {
  local name
  for name in munged slurmctld "${NODES[@]/#/slurmd-}"; do
    if pid_alive "$DIR/run/$name.pid"; then echo "$name: running (pid $(cat "$DIR/run/$name.pid"))"; else echo "$name: stopped"; fi
  done
  [[ -f "$CONF" ]] && SLURM_CONF="$CONF" sinfo -N -o '%N %t %G %o' 2>/dev/null || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
