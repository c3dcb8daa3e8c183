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

# Tiles (Note [tiles]): the field cut into 2x1 tiles, one rank each, trains the whole field's model,
# and a run checkpointed on 2x1 tiles resumes on 1x2. With --init random every gradient stands far
# above its rounding, so the runs agree to float rounding (docs/design.md, "Tiles").
"$exe" train -m "$dir/s/stack.toml" -o "$dir/r1.fits" -n 25 --init random --threads 1 >/dev/null \
  || fail "train --init random on 1 process"
"${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/t21.fits" -n 25 --init random --tiles 2x1 --threads 1 \
  --with-coadd > "$dir/t21.log" 2>&1 || { cat "$dir/t21.log"; fail "train on 2x1 tiles"; }
grep -q "tiles: 2x1 of about 64x32 px" "$dir/t21.log" || { cat "$dir/t21.log"; fail "tiles not printed"; }
"$exe" compare "$dir/r1.fits" "$dir/t21.fits" --tolerance 1e-4 || fail "2x1 tiles differ from the whole field"
"${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/t12.fits" -n 10 --init random --tiles 2x1 --threads 1 \
  > "$dir/t12.log" 2>&1 || { cat "$dir/t12.log"; fail "train 10 iterations on 2x1 tiles"; }
"${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/t12.fits" -n 25 --init random --tiles 1x2 --threads 1 \
  --resume auto --overwrite > "$dir/t12.log" 2>&1 || { cat "$dir/t12.log"; fail "resume on 1x2 tiles"; }
grep -q "resumed from .* at iteration 10" "$dir/t12.log" || { cat "$dir/t12.log"; fail "no resume on 1x2 tiles"; }
"$exe" compare "$dir/r1.fits" "$dir/t12.fits" --tolerance 1e-4 || fail "2x1 then 1x2 tiles differ from the whole field"
# On the same grid a resumed run is the uninterrupted one, bit for bit.
"${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/tb.fits" -n 10 --init random --tiles 2x1 --threads 1 \
  > "$dir/tb.log" 2>&1 || { cat "$dir/tb.log"; fail "train 10 iterations on 2x1 tiles"; }
"${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/tb.fits" -n 25 --init random --tiles 2x1 --threads 1 \
  --resume auto --overwrite > "$dir/tb.log" 2>&1 || { cat "$dir/tb.log"; fail "resume on 2x1 tiles"; }
grep -q "resumed from .* at iteration 10" "$dir/tb.log" || { cat "$dir/tb.log"; fail "no resume on 2x1 tiles"; }
"$exe" compare "$dir/t21.fits" "$dir/tb.fits" --tolerance 0 || fail "resumed on the same 2x1 tiles: not bit for bit"
"$exe" rl -m "$dir/s/stack.toml" -o "$dir/rl1.fits" -n 30 >/dev/null || fail "rl on 1 process"
"${ranks[@]}" 2 "$exe" rl -m "$dir/s/stack.toml" -o "$dir/rl21.fits" -n 30 --tiles 1x2 --threads 1 > "$dir/rl21.log" 2>&1 \
  || { cat "$dir/rl21.log"; fail "rl on 1x2 tiles"; }
"$exe" compare "$dir/rl1.fits" "$dir/rl21.fits" --tolerance 1e-5 || fail "rl on 1x2 tiles differs from the whole field"
# With --psf-per-tile the grid is part of the model: a checkpoint of 2x1 tiles does not resume on 1x2.
"${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/pt.fits" -n 5 --tiles 2x1 --psf-per-tile --threads 1 \
  > "$dir/pt.log" 2>&1 || { cat "$dir/pt.log"; fail "train --psf-per-tile on 2x1 tiles"; }
out=$(timeout 60 "${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/pt.fits" -n 10 --tiles 1x2 --psf-per-tile \
  --threads 1 --resume auto --overwrite 2>&1)
rc=$?
[ $rc -eq 1 ] || { echo "$out"; fail "--psf-per-tile resumed on another grid: exit $rc"; }
grep -q "was written with psf_tiles=2x1; this run asks for psf_tiles=1x2" <<<"$out" \
  || { echo "$out"; fail "another grid with --psf-per-tile not refused"; }
out=$(timeout 60 "${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/z.fits" --tiles 3x1 2>&1)
rc=$?
[ $rc -eq 1 ] || { echo "$out"; fail "--tiles 3x1 on 2 ranks: exit $rc"; }
grep -q -- "--tiles 3x1: 2 MPI rank(s) do not divide into 3 tiles" <<<"$out" || { echo "$out"; fail "3x1 not refused"; }
out=$(timeout 60 "${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/z.fits" --psf-per-tile 2>&1)
rc=$?
[ $rc -eq 1 ] || { echo "$out"; fail "--psf-per-tile without tiles: exit $rc"; }
grep -q -- "--psf-per-tile: needs --tiles" <<<"$out" || { echo "$out"; fail "--psf-per-tile without tiles not refused"; }
out=$(timeout 60 "${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/z.fits" --tiles 2x1 --with-residuals 2>&1)
rc=$?
[ $rc -eq 1 ] || { echo "$out"; fail "--with-residuals on tiles: exit $rc"; }
grep -q -- "chi residual maps are not made on tiles" <<<"$out" || { echo "$out"; fail "residuals on tiles not refused"; }
[ ! -e "$dir/z.fits" ] || fail "a refused run wrote its output"

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

# Bad options and unsafe outputs on 2 ranks: refused on every rank at once, nothing written.
out=$(timeout 60 "${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/z.fits" --learning-rate inf 2>&1)
rc=$?
[ $rc -eq 2 ] || { echo "$out"; fail "--learning-rate inf on 2 ranks: exit $rc"; }
grep -q -- "--learning-rate: must be a finite number in (0, 1], got inf" <<<"$out" \
  || { echo "$out"; fail "inf not named"; }
before=$(cksum < "$dir/s/exp_000.fits")
out=$(timeout 60 "${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/s/exp_000.fits" --overwrite -n 5 \
  --threads 1 2>&1)
rc=$?
[ $rc -eq 1 ] || { echo "$out"; fail "an input as output on 2 ranks: exit $rc"; }
grep -q "one of this run's inputs" <<<"$out" || { echo "$out"; fail "input as output not refused"; }
[ "$(cksum < "$dir/s/exp_000.fits")" = "$before" ] || fail "an input was changed"
# A loss that stops being finite (a warm start of 1.7e38 overflows the decoder) stops both ranks at
# the same iteration with the error, and nothing is written. The image is a FITS file made here.
{
  for card in "SIMPLE  =                    T" "BITPIX  =                  -32" "NAXIS   =                    2" \
              "NAXIS1  =                   64" "NAXIS2  =                   64" "END"; do printf '%-80s' "$card"; done
  printf '%*s' $(( 2880 - 6 * 80 )) ''
  for _ in $(seq 4096); do printf '\x7f\x00\x00\x00'; done
  head -c $(( 2880 * 6 - 16384 )) /dev/zero
} > "$dir/huge.fits"
out=$(timeout 60 "${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/z.fits" --warm-start "$dir/huge.fits" \
  -n 5 --threads 1 --checkpoint-every 1 2>&1)
rc=$?
[ $rc -eq 1 ] || { echo "$out"; fail "a diverged run on 2 ranks: exit $rc"; }
grep -q "training diverged: the loss is .* at iteration 1" <<<"$out" || { echo "$out"; fail "divergence not named"; }
[ ! -e "$dir/z.fits" ] && [ -z "$(ls "$dir/z.checkpoints" 2>/dev/null)" ] || fail "a diverged run wrote something"
[ ! -e "$dir/z.fits.lock" ] || fail "the run lock was left behind"

# Stop signals under mpirun. SIGUSR1, which mpirun forwards, stops the ranks at an iteration
# boundary after a checkpoint, and mpirun returns their 75. SIGTERM to mpirun is Open MPI's own
# termination (SIGKILL follows within a second): it must end the run with a non-zero exit, without
# an output and without a hang (the README tells scripts to use SIGUSR1 under mpirun).
declare -A code
for sig in USR1 TERM; do
  "${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/sig_$sig.fits" -n 1000000 --stop last --threads 1 \
    --log-every 1 > "$dir/sig_$sig.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do grep -q "iter *20/" "$dir/sig_$sig.log" && break; sleep 0.2; done
  kill -"$sig" "$pid"
  start=$(date +%s)
  wait "$pid"
  code[$sig]=$?
  [ $(( $(date +%s) - start )) -lt 20 ] || fail "SIG$sig: mpirun took more than 20 s to end"
  [ ! -e "$dir/sig_$sig.fits" ] || fail "SIG$sig: a stopped run wrote its output"
done
[ "${code[USR1]}" -eq 75 ] || { cat "$dir/sig_USR1.log"; fail "SIGUSR1 to mpirun: exit ${code[USR1]}, not 75"; }
grep -q "SIGUSR1 received: checkpointing at iteration" "$dir/sig_USR1.log" || fail "SIGUSR1: no checkpoint line"
ls "$dir/sig_USR1.checkpoints"/checkpoint_*.h5 > /dev/null || fail "SIGUSR1: no checkpoint"
[ "${code[TERM]}" -ne 0 ] || fail "SIGTERM to mpirun: exit 0"

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
# On tiles every tile's rank reads the exposure: all stop, the file, the tile and the rank named.
out=$(timeout 60 "${ranks[@]}" 2 "$exe" train -m "$dir/s/stack.toml" -o "$dir/y.fits" -n 5 --threads 1 --tiles 2x1 2>&1)
rc=$?
[ $rc -ne 124 ] || fail "ranks on tiles hung on a corrupt file"
[ $rc -ne 0 ] || fail "corrupt file accepted on tiles"
grep "exp_003.fits" <<<"$out" | grep "\[rank 0\] \[error\]" | grep -q "(reading tile 0,0 (rows 0-31, columns 0-63))" \
  || { echo "$out"; fail "corrupt file, tile and rank not named on tiles"; }
[ ! -e "$dir/y.fits" ] || fail "corrupt input on tiles left an output"
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
