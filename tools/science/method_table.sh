#!/usr/bin/env bash
# Each method as a user runs it (held-out stopping, --stop best) on one simulated stack, scored
# against the truth: the rows of docs/science.md's method table. Writes OUT/scores.jsonl and
# OUT/wall_seconds.txt; tools/science/method_summary.py tabulates them.
# Usage: tools/science/method_table.sh ASTROCLEAR OUT SIZE SEED [simulate options...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
: > wall_seconds.txt
run() {  # run NAME COMMAND...: time it, keep its log
  local name=$1
  shift
  local start
  start=$(date +%s.%N)
  "$@" > "$name.log" 2>&1
  echo "$name $(echo "$(date +%s.%N) - $start" | bc)" >> wall_seconds.txt
}
# RANKS=P: the restorations on P MPI ranks of one thread each (2 x 1 beats 1 x 2 on a CPU node).
par=()
[ -n "${RANKS:-}" ] && par=(mpirun -n "$RANKS")
threads=()
[ -n "${RANKS:-}" ] && threads=(--threads 1)
run coadd "$exe" coadd -m s/stack.toml -o coadd.fits --overwrite
run train "${par[@]}" "$exe" train -m s/stack.toml -o train.fits -n 2000 --overwrite --log-every 200 "${threads[@]}"
run rl "${par[@]}" "$exe" rl -m s/stack.toml -o rl.fits -n 1500 --overwrite --log-every 200 "${threads[@]}"
run mm "${par[@]}" "$exe" mm -m s/stack.toml -o mm.fits -n 1500 --overwrite --log-every 200 "${threads[@]}"
# With FINAL_FIT=1: the final fit on all exposures for the iteration count the held-out loss chose.
images=(train.fits rl.fits mm.fits)
if [ "${FINAL_FIT:-0}" = 1 ]; then
  kept() { sed -n 's/.*stopped: iteration \([0-9]*\) kept.*/\1/p' "$1.log"; }  # what --stop best kept
  run train_all "${par[@]}" "$exe" train -m s/stack.toml -o train_all.fits -n "$(kept train)" \
    --validation-exposures 0 --overwrite "${threads[@]}"
  run rl_all "${par[@]}" "$exe" rl -m s/stack.toml -o rl_all.fits -n "$(kept rl)" --validation-exposures 0 \
    --overwrite "${threads[@]}"
  images+=(train_all.fits rl_all.fits)
fi
# Completeness at equal purity is read at ImageMM's false-detection fraction (Note [threshold sweep]).
"$exe" evaluate "${images[@]}" --compare coadd.fits --purity-reference mm.fits --truth s --json scores.jsonl \
  --overwrite > evaluate.txt
echo "wrote $out/scores.jsonl"
