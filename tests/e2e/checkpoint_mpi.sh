#!/usr/bin/env bash
# Checkpoints across ranks, as users meet them: a run saved on 2 ranks resumes on 1 and on 3
# ranks (re-sharded by exposure); a rank killed with SIGKILL at a random iteration, then
# --resume auto on 2 ranks, ends bitwise equal to the run that was never interrupted.
set -uo pipefail
exe=$1
dir=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
ranks=(bash "$(dirname "${BASH_SOURCE[0]}")/ranks.sh")  # ranks N COMMAND...: COMMAND on N MPI ranks
fail() { echo "FAIL: $*"; exit 1; }
train() { "${ranks[@]}" "$1" "$exe" train -m "$dir/s/stack.toml" --threads 1 "${@:2}"; }

"$exe" simulate -o "$dir/s" --exposures 7 --size 96 --seed 5 >/dev/null || fail "simulate"

# P = 2 writes at iteration 20; P = 1 and P = 3 resume it to 40; both match P = 2 straight to 40.
train 2 -o "$dir/straight.fits" -n 40 --checkpoint-dir "$dir/straight.ck" >/dev/null 2>&1 || fail "straight run"
train 2 -o "$dir/half.fits" -n 20 --checkpoint-dir "$dir/p2.ck" > "$dir/p2.log" 2>&1 || { cat "$dir/p2.log"; fail "P=2 run"; }
for q in 1 3; do
  cp -r "$dir/p2.ck" "$dir/q$q.ck"
  train $q -o "$dir/q$q.fits" -n 40 --checkpoint-dir "$dir/q$q.ck" --resume auto > "$dir/q$q.log" 2>&1 \
    || { cat "$dir/q$q.log"; fail "resume on $q ranks"; }
  grep -q "resumed from $dir/q$q.ck/checkpoint_00000020.h5 at iteration 20 (loss [0-9.]*, written by 2 rank(s))" "$dir/q$q.log" \
    || { cat "$dir/q$q.log"; fail "P=$q did not resume from the P=2 checkpoint"; }
  "$exe" compare "$dir/straight.fits" "$dir/q$q.fits" --tolerance 1e-5 || fail "P=2 -> P=$q resume differs"
done

# SIGKILL one rank at a random iteration; the job dies; --resume auto finishes it.
iterations=150
train 2 -o "$dir/ref.fits" -n $iterations --checkpoint-dir "$dir/ref.ck" --checkpoint-every 10 >/dev/null 2>&1 \
  || fail "reference run"
kill_at=$(( 15 + RANDOM % 100 ))
train 2 -o "$dir/killed.fits" -n $iterations --checkpoint-dir "$dir/k.ck" --checkpoint-every 10 --log-every 1 \
  > "$dir/killed.log" 2>&1 &
launcher=$!
for _ in $(seq 1 600); do
  grep -q "iter *$kill_at/" "$dir/killed.log" && break
  sleep 0.05
done
rank_pids=()
for pid in $(pgrep -f "$dir/k.ck"); do
  [ "$(cat /proc/$pid/comm 2>/dev/null)" = astroclear ] && rank_pids+=("$pid")
done
[ ${#rank_pids[@]} -eq 2 ] || fail "expected 2 rank processes under the MPI launcher, found ${#rank_pids[@]}"
victim=${rank_pids[$(( RANDOM % 2 ))]}
kill -9 "$victim"
wait $launcher && fail "the job survived a SIGKILLed rank"
last=$(grep -o "iter *[0-9]*/" "$dir/killed.log" | tail -1 | tr -dc 0-9)
[ "$last" -lt $iterations ] || fail "the run finished before the kill (last iteration $last)"
[ ! -e "$dir/killed.fits" ] || fail "a killed run left an output"
train 2 -o "$dir/killed.fits" -n $iterations --checkpoint-dir "$dir/k.ck" --checkpoint-every 10 --resume auto \
  > "$dir/resumed.log" 2>&1 || { cat "$dir/resumed.log"; fail "resume after the kill"; }
resumed=$(grep -o "resumed from .* at iteration [0-9]*" "$dir/resumed.log" | grep -o "[0-9]*$")
[ -n "$resumed" ] && [ "$resumed" -gt 0 ] || { cat "$dir/resumed.log"; fail "did not resume from a checkpoint"; }
"$exe" compare "$dir/ref.fits" "$dir/killed.fits" --tolerance 0 || fail "killed + resumed differs from the uninterrupted run"
echo "PASS checkpoints across ranks (2 -> 1, 2 -> 3; rank $victim killed at iteration ~$last, resumed from $resumed, bitwise equal)"
