#!/usr/bin/env bash
# The built-in example, end to end: simulate an HSC-like stack, train on 2 MPI ranks, write the
# restored FITS (with the coadd beside it) and a PNG preview (left: coadd, right: astroclear);
# then restore the same stack with ImageMM (`mm`), score the coadd, `mm` and astroclear against
# the simulated truth, and draw them beside the truth on one stretch (comparison.png).
#
#   jobs/run_example.sh                 # 33 exposures of 256 px, into example/
#   SIZE=512 ITERATIONS=600 jobs/run_example.sh
#
# Environment: SIZE, EXPOSURES, ITERATIONS, RANKS, SEED, OUT (folder, replaced on every run),
# ASTROCLEAR (a built executable: skips set-up and build).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
size=${SIZE:-256} exposures=${EXPOSURES:-33} iterations=${ITERATIONS:-400} ranks=${RANKS:-2} seed=${SEED:-1}
out=${OUT:-$root/example}
exe=${ASTROCLEAR:-}
if [ -z "$exe" ]; then
  bash "$root/.ci/setup.sh"
  exe=$root/build/jobs/astroclear
fi
mpiexec=${MPIEXEC:-mpirun}
mpi_flags=(-n "$ranks")
[ "$(id -u)" -eq 0 ] && mpi_flags+=(--allow-run-as-root)
[ "$ranks" -gt "$(nproc)" ] && mpi_flags+=(--oversubscribe)

mkdir -p "$out"
"$exe" simulate -o "$out/stack" --exposures "$exposures" --size "$size" --seed "$seed" --overwrite
"$mpiexec" "${mpi_flags[@]}" "$exe" train -m "$out/stack/stack.toml" -o "$out/restored.fits" \
  --preview "$out/preview.png" --with-coadd -n "$iterations" --overwrite
"$mpiexec" "${mpi_flags[@]}" "$exe" mm -m "$out/stack/stack.toml" -o "$out/mm.fits" --overwrite
"$exe" coadd -m "$out/stack/stack.toml" -o "$out/coadd.fits" --overwrite
"$exe" evaluate "$out/coadd.fits" --compare "$out/mm.fits" "$out/restored.fits" --truth "$out/stack" \
  --preview "$out/comparison.png" --overwrite
echo "example: $out/restored.fits (HDU 0: astroclear; COVERAGE, MASK; COADD: coadd), $out/preview.png;" \
  "$out/mm.fits (ImageMM), $out/comparison.png (truth | coadd | ImageMM | astroclear); truth in $out/stack/truth.fits"
