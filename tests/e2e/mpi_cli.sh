#!/usr/bin/env bash
# astroclear under the MPI launcher as users run it: P ranks give the one-process result; errors stop every
# rank quickly with the failing file named; more ranks than exposures is refused up front.
set -uo pipefail
exe=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ranks=(bash "$(dirname "${BASH_SOURCE[0]}")/ranks.sh")  # ranks N COMMAND...: COMMAND on N MPI ranks
fail() { echo "FAIL: $*"; exit 1; }

"$exe" simulate -o "$dir/s" --exposures 5 --size 64 --seed 4 >/dev/null || fail "simulate"
"$exe" train -m "$dir/s/stack.toml" -o "$dir/p1.fits" -n 25 --threads 1 >/dev/null || fail "train on 1 process"
"${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/p2.fits" -n 25 --threads 1 > "$dir/p2.log" 2>&1 \
  || { cat "$dir/p2.log"; fail "train on 2 ranks"; }
# One of the 5 exposures is held out by default (Note [held-out exposures]); the other 4 are split.
grep -q "partition: rank 0: exposures 0-1 (2, 8192 px); rank 1: exposures 2-3 (2, 8192 px)" "$dir/p2.log" \
  || { cat "$dir/p2.log"; fail "partition not printed"; }
grep -q "held out: rank 0: exposures 4 (1, 4096 px); rank 1: none" "$dir/p2.log" \
  || { cat "$dir/p2.log"; fail "held-out exposures not printed"; }
"$exe" compare "$dir/p1.fits" "$dir/p2.fits" --tolerance 1e-4 || fail "2 ranks differ from 1 process"

# The coadd on 2 ranks equals the coadd on one process.
"$exe" coadd -m "$dir/s/stack.toml" -o "$dir/c1.fits" >/dev/null || fail "coadd on 1 process"
"${ranks[@]}" 2 "$exe" coadd -m "$dir/s/stack.toml" -o "$dir/c2.fits" >/dev/null 2>&1 || fail "coadd on 2 ranks"
"$exe" compare "$dir/c1.fits" "$dir/c2.fits" --tolerance 1e-6 || fail "coadd differs between 1 and 2 ranks"

# validate on 2 ranks: the held-out loss of the 1-process result; a missing exposure stops both ranks.
"${ranks[@]}" 2 "$exe" validate "$dir/p1.fits" -m "$dir/s/stack.toml" --exposures 0,4 > "$dir/v.log" 2>&1 \
  || { cat "$dir/v.log"; fail "validate on 2 ranks"; }
grep -q "held-out loss per good pixel over the 2 exposure(s)" "$dir/v.log" || { cat "$dir/v.log"; fail "validate output"; }
out=$(timeout 60 "${ranks[@]}" 2 "$exe" validate "$dir/p1.fits" -m "$dir/s/stack.toml" --exposures 0,9 2>&1)
rc=$?
[ $rc -eq 1 ] || { echo "$out"; fail "validate with a missing exposure: exit $rc"; }
grep -q "exposure 9: no such exposure" <<<"$out" || { echo "$out"; fail "missing exposure not named"; }

# More ranks than exposures: refused before any work, every rank exits.
"$exe" simulate -o "$dir/two" --exposures 2 --size 48 --seed 4 >/dev/null || fail "simulate"
out=$(timeout 60 "${ranks[@]}" 3 "$exe" train -m "$dir/two/stack.toml" -o "$dir/x.fits" -n 5 --threads 1 2>&1)
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "P > n: exit code $rc"
grep -q "more MPI ranks (3) than exposures (2)" <<<"$out" || { echo "$out"; fail "P > n message"; }
[ ! -e "$dir/x.fits" ] || fail "P > n left an output"

# A corrupt exposure that only rank 1 reads: every rank stops within seconds, the file is named.
# (Every rank reads every header for the partition; truncating the pixel data leaves the headers
# readable, so only the owner, rank 1, meets the damage.)
head -c 10000 "$dir/s/exp_003.fits" > "$dir/cut.fits" && mv "$dir/cut.fits" "$dir/s/exp_003.fits"
start=$(date +%s)
out=$(timeout 60 "${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/y.fits" -n 5 --threads 1 2>&1)
rc=$?
elapsed=$(( $(date +%s) - start ))
[ $rc -ne 124 ] || fail "ranks hung on a corrupt file"
[ $rc -ne 0 ] || fail "corrupt file accepted"
grep -q "exp_003.fits" <<<"$out" || { echo "$out"; fail "corrupt file not named"; }
grep -q "on rank 1" <<<"$out" || { echo "$out"; fail "failing rank not named"; }
[ "$elapsed" -lt 20 ] || fail "took ${elapsed}s to stop"
[ ! -e "$dir/y.fits" ] || fail "corrupt input left an output"
echo "PASS mpi cli (corrupt input stopped all ranks in ${elapsed}s)"

# The benchmark on 2 ranks: a row per configuration in JSON, the scaling and time-to-solution
# figures filled in, no GPU column on a CPU, and an existing JSON file kept unless --overwrite.
bench=("${ranks[@]}" 2 "$exe" bench --sizes 48 --exposures 4 --warmup 1 --iterations 3 --threads 1
       --work-dir "$dir" --json "$dir/bench.jsonl")
"${bench[@]}" --scaling --solution-iterations 15 > "$dir/bench.log" 2>&1 || { cat "$dir/bench.log"; fail "bench on 2 ranks"; }
[ "$(wc -l < "$dir/bench.jsonl")" -eq 1 ] || fail "bench JSON: not one row"
field() { grep -o "\"$1\": *[^,}]*" "$dir/bench.jsonl" | sed 's/.*: *//'; }
positive() { awk -v v="$(field "$1")" 'BEGIN { exit !(v + 0 > 0) }' || fail "bench JSON: $1 = '$(field "$1")'"; }
[ "$(field ranks)" = 2 ] && [ "$(field size)" = 48 ] || fail "bench JSON: ranks/size"
for f in ms_per_iteration single_rank_ms_per_iteration peak_rss_mib_rank0 mb_all_reduced_per_iteration solution_seconds \
         copy_bandwidth_gb_s floor_mb_per_iteration floor_ms_per_iteration; do
  positive "$f"
done
# Note [memory floor]: no iteration beats it, and it counts at least six passes over rank 0's
# 2 exposures of 48^2 floats (0.11 MB).
awk -v t="$(field ms_per_iteration)" -v f="$(field floor_ms_per_iteration)" -v mb="$(field floor_mb_per_iteration)" \
  'BEGIN { exit !(t > f && mb >= 6 * 2 * 48 * 48 * 4 / 1e6) }' || fail "bench JSON: memory floor"
[ "$(field cpu_kernels)" = '"astroclear"' ] || fail "bench JSON: cpu_kernels = $(field cpu_kernels)"
[ "$(field peak_gpu_mib_rank0)" = null ] || fail "bench JSON: a GPU figure on a CPU"
its=$(field solution_iterations)
[ "$its" -ge 1 ] && [ "$its" -le 15 ] || fail "bench JSON: solution_iterations = $its"
grep -q "peak GPU MB" "$dir/bench.log" || fail "bench table header"
out=$("${bench[@]}" 2>&1) && fail "bench replaced an existing JSON file"
grep -q "bench.jsonl" <<<"$out" || { echo "$out"; fail "bench did not name the existing file"; }
[ "$(wc -l < "$dir/bench.jsonl")" -eq 1 ] || fail "bench touched the existing JSON file"
[ "$(field precision)" = '"float32"' ] || fail "bench JSON: precision = $(field precision)"
"${bench[@]}" --overwrite --cpu-kernels libtorch --precision bf16 > /dev/null 2>&1 ||
  fail "bench --overwrite --cpu-kernels libtorch --precision bf16"
[ "$(field cpu_kernels)" = '"libtorch"' ] || fail "bench JSON: --cpu-kernels libtorch not recorded"
[ "$(field precision)" = '"bf16"' ] || fail "bench JSON: --precision bf16 not recorded"
positive ms_per_iteration
ls "$dir" | grep -q "^astroclear-bench-" && fail "bench left its simulated stack behind"
# --stack times the user's own stack (every exposure of it) and leaves it where it was.
"$exe" simulate -o "$dir/own" --exposures 4 --size 40 --seed 6 >/dev/null || fail "simulate"
"${ranks[@]}" 2 "$exe" bench --stack "$dir/own/stack.toml" --warmup 1 --iterations 2 --threads 1 \
  --json "$dir/own.jsonl" > "$dir/own.log" 2>&1 || { cat "$dir/own.log"; fail "bench --stack"; }
grep -q '"exposures": *4' "$dir/own.jsonl" && grep -q '"size": *40' "$dir/own.jsonl" ||
  { cat "$dir/own.jsonl"; fail "bench --stack: not the stack's exposures and size"; }
[ -f "$dir/own/stack.toml" ] && [ -f "$dir/own/truth.fits" ] || fail "bench --stack removed the user's stack"
out=$("$exe" bench --stack "$dir/own/stack.toml" --sizes 32 2>&1) && fail "bench took --stack with --sizes"
grep -q -- "--sizes" <<<"$out" || { echo "$out"; fail "bench --stack --sizes: no option named"; }
echo "PASS bench on 2 ranks (JSON row, scaling, time to solution, existing JSON kept, --stack)"
