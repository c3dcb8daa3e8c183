#!/usr/bin/env bash
# The batch scripts in slurm/, unchanged, against a real single-node Slurm (local_cluster.sh):
# 1. a 2-rank job signalled with scancel --signal=USR1 checkpoints, requeues itself, resumes and
#    completes, bitwise equal to an uninterrupted job;
# 2. a job whose input is broken fails once, with the error in its log, and is not requeued;
# 3. a 2-task job array over two fields restores both.
# Options given to sbatch on the command line only fit the jobs to this 2-CPU, 2-GPU node.
set -uo pipefail
exe=$(realpath "$1")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=$(mktemp -d)
source "$root/tests/slurm/local_cluster.sh"
cleanup() {
  [ -n "${KEEP_LOGS:-}" ] && cp "$dir"/work/*.out "$dir"/cluster/*.log "$KEEP_LOGS"/ 2>/dev/null
  scancel --quiet --user="$(id -un)" 2>/dev/null
  cluster_stop "$dir/cluster"
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$dir"/work/*.out; do [ -e "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }; done
  exit 1
}
cluster_start "$dir/cluster" || fail "the local Slurm did not start"
export ASTROCLEAR_HOME=$root ASTROCLEAR=$exe
fit=(--ntasks-per-node=2 --cpus-per-task=1)   # this node: 2 CPUs, 2 stand-in GPUs

state() { scontrol show job "$1" 2>/dev/null | grep -o "JobState=[A-Z_]*" | cut -d= -f2; }
restarts() { scontrol show job "$1" 2>/dev/null | grep -o "Restarts=[0-9]*" | cut -d= -f2; }
wait_end() {  # wait_end JOB SECONDS: until the job (or every task of an array) has ended
  local _ s
  for _ in $(seq 1 $(( $2 * 2 ))); do
    s=$(scontrol show job "$1" 2>/dev/null | grep -o "JobState=[A-Z_]*" | cut -d= -f2 | sort -u)
    grep -qE "PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUE" <<<"$s" || return 0
    sleep 0.5
  done
  return 1
}

mkdir -p "$dir/work" && cd "$dir/work"
for field in a b; do
  "$exe" simulate -o "$field" --exposures 5 --size 80 --seed $([ $field = a ] && echo 5 || echo 6) >/dev/null || fail "simulate $field"
done
cp -r a broken
head -c 9000 a/exp_003.fits > broken/exp_003.fits
field_toml() {  # field_toml NAME STACK OUTPUT ITERATIONS
  printf '[train]\nmanifest = "%s/stack.toml"\noutput = "%s.fits"\ncheckpoint-dir = "%s.ck"\niterations = %s\nlog-every = 20\n' \
    "$2" "$3" "$3" "$4" > "$1.toml"
}
field_toml straight a a_straight 1500
field_toml signalled a a_signalled 1500
field_toml broken broken broken_out 100
field_toml array_a a array_a 60
field_toml array_b b array_b 60
field_toml tiled b tiled 40
printf 'init = "random"\n' >> tiled.toml

# 1. The uninterrupted reference (multi-node script, on this one node), then the signalled job.
ref=$(sbatch --parsable --nodes=1 "${fit[@]}" --export=ALL,FIELD=straight.toml "$root/slurm/train_gpu_multinode.sbatch") \
  || fail "sbatch train_gpu_multinode.sbatch"
wait_end "$ref" 300 || fail "the reference job did not end"
[ "$(state "$ref")" = COMPLETED ] || fail "reference job $ref: $(state "$ref")"
job=$(sbatch --parsable "${fit[@]}" --export=ALL,FIELD=signalled.toml "$root/slurm/train_gpu_node.sbatch") \
  || fail "sbatch train_gpu_node.sbatch"
for _ in $(seq 1 600); do grep -q "iter *[0-9]*/1500" "astroclear-$job.out" 2>/dev/null && break; sleep 0.2; done
grep -q "iter *[0-9]*/1500" "astroclear-$job.out" || fail "job $job never started training"
sleep 1
scancel --signal=USR1 "$job" || fail "scancel --signal=USR1"
for _ in $(seq 1 240); do [ "$(restarts "$job")" = 1 ] && break; sleep 0.5; done
[ "$(restarts "$job")" = 1 ] || fail "job $job was not requeued after SIGUSR1 (state $(state "$job"))"
# A requeued job is eligible again once the credentials of its last allocation have expired
# (slurm.conf AuthInfo cred_expire: 120 s by default, 10 s on the test cluster).
wait_end "$job" 300 || fail "the requeued job did not end"
[ "$(state "$job")" = COMPLETED ] || fail "signalled job $job ended $(state "$job")"
log="astroclear-$job.out"
grep -q "SIGUSR1 received: checkpointing at iteration" "$log" || fail "no checkpoint on SIGUSR1 in $log"
grep -q "requeueing job $job" "$log" || fail "no requeue in $log"
grep -q "allocation 2," "$log" || fail "no second allocation in $log"
grep -q "resumed from a_signalled.ck/checkpoint_[0-9]*.h5 at iteration" "$log" || fail "no resume in $log"
grep -q "field signalled.toml restored" "$log" || fail "not finished in $log"
stopped=$(grep -o "checkpointing at iteration [0-9]*" "$log" | grep -o "[0-9]*$")
"$exe" compare a_straight.fits a_signalled.fits --tolerance 0 || fail "signalled + requeued differs from the uninterrupted job"

# 2. Broken input: one failure, the error in the log, no requeue.
bad=$(sbatch --parsable --export=ALL,FIELD=broken.toml "$root/slurm/train_cpu.sbatch") || fail "sbatch train_cpu.sbatch"
wait_end "$bad" 120 || fail "the broken job did not end"
[ "$(state "$bad")" = FAILED ] || fail "broken job $bad ended $(state "$bad")"
[ "$(restarts "$bad")" = 0 ] || fail "broken job $bad was requeued"
grep -q "exp_003.fits" "astroclear-$bad.out" || fail "the error does not name the broken file"
grep -q "not requeued" "astroclear-$bad.out" || fail "the log does not say it is not requeued"
[ ! -e broken_out.fits ] || fail "the broken job left an output"

# 3. A job array over two fields.
printf 'array_a.toml\narray_b.toml\n' > fields.txt
array=$(sbatch --parsable --array=1-2 "${fit[@]}" --export=ALL,FIELDS=fields.txt "$root/slurm/train_array.sbatch") \
  || fail "sbatch train_array.sbatch"
wait_end "$array" 300 || fail "the array did not end"
for task in 1 2; do
  [ "$(scontrol show job "${array}_$task" | grep -o "JobState=[A-Z]*" | cut -d= -f2)" = COMPLETED ] \
    || fail "array task $task did not complete"
done
for task in 1 2; do
  grep -q "field array_[ab].toml restored" "astroclear-${array}_$task.out" || fail "array task $task: not restored"
done
[ -s array_a.fits ] && [ -s array_b.fits ] || fail "an array task left no output"
"$exe" compare array_a.fits array_b.fits --tolerance 0.01 >/dev/null && fail "the array tasks restored the same field"
# 4. The tiled template on 2x1 tiles (one rank each) gives the whole-field result (--init random:
# float rounding, docs/design.md "Tiles").
tiled=$(sbatch --parsable --nodes=1 "${fit[@]}" --export=ALL,FIELD=tiled.toml,TILES=2x1 "$root/slurm/train_tiles_multinode.sbatch") \
  || fail "sbatch train_tiles_multinode.sbatch"
"$exe" train -m b/stack.toml -o whole.fits -n 40 --init random --threads 1 >/dev/null || fail "the whole-field run"
wait_end "$tiled" 300 || fail "the tiled job did not end"
[ "$(state "$tiled")" = COMPLETED ] || fail "tiled job $tiled ended $(state "$tiled")"
grep -q "tiles: 2x1" "astroclear-$tiled.out" || fail "the tiled job did not run on 2x1 tiles"
"$exe" compare whole.fits tiled.fits --tolerance 1e-4 || fail "the tiled job differs from the whole-field run"

echo "PASS slurm (signalled at iteration $stopped, requeued, resumed and bitwise equal; broken input failed once; array of 2 fields restored; 2x1 tiles equal the whole field)"
