#!/usr/bin/env bash
# A real single-node Slurm on localhost for the tests: munged, slurmctld and slurmd with state,
# logs and sockets in one temporary folder, on their own ports. Source it, then:
#   cluster_start DIR     # installs the packages if missing, writes slurm.conf, starts the daemons
#   cluster_stop DIR      # stops exactly the daemons cluster_start started (by their pid files)
# cluster_start exports SLURM_CONF, so sbatch/squeue/scontrol/sacct talk to this cluster only.

cluster_install() {
  local packages=(slurmctld slurmd slurm-client munge) missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "local cluster: installing ${missing[*]}"
  local sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

# A free TCP port pair (the controller's and the node daemon's), picked from the pid for isolation.
cluster_ports() {
  local base=$(( 20000 + ($$ * 7) % 20000 )) port
  for port in $(seq $base 2 $((base + 400))); do
    if ! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/$((port + 1))) 2>/dev/null; then
      echo "$port"; return 0
    fi
  done
  return 1
}

cluster_start() {
  local dir=$1 host port cpus memory
  cluster_install || { echo "local cluster: cannot install Slurm"; return 1; }
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
  chmod 700 "$dir/munge"
  host=$(hostname -s)
  port=$(cluster_ports) || { echo "local cluster: no free port"; return 1; }
  cpus=$(nproc)
  memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))

  # munged with its own key and socket (the system's munged, if any, is left alone).
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed" \
    || { echo "local cluster: munged did not start"; cat "$dir/munge/munged.log"; return 1; }

  cat > "$dir/slurm.conf" <<CONF
ClusterName=astroclear-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock,cred_expire=10
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=2,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory Gres=gpu:2 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE OverSubscribe=FORCE:4 State=UP
CONF
  # Two stand-in GPUs (Slurm's gpu plugin wants a device file each; nothing opens them), so the
  # GPU batch scripts schedule here unchanged; astroclear --device auto finds no CUDA device and
  # runs on the CPU.
  printf 'AutoDetect=off\nName=gpu File=/dev/null\nName=gpu File=/dev/zero\n' > "$dir/gres.conf"
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$dir/slurm.conf" || { echo "local cluster: slurmctld did not start"; cat "$dir/slurmctld.log"; return 1; }
  slurmd -f "$dir/slurm.conf" || { echo "local cluster: slurmd did not start"; cat "$dir/slurmd.log"; return 1; }
  local _
  for _ in $(seq 1 60); do
    sinfo -h -o "%T" 2>/dev/null | grep -qE "^idle" && return 0
    sleep 0.5
  done
  echo "local cluster: the node did not come up"; sinfo; tail -20 "$dir/slurmctld.log" "$dir/slurmd.log"
  return 1
}

cluster_stop() {
  local dir=$1 pidfile pid _
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  return 0
}
