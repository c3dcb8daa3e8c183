#!/usr/bin/env bash
# Does --stop best stop where the truth says the restoration is best? For one simulated stack:
# train, rl and mm scored against the truth at a series of iteration counts, beside their held-out
# loss at the same iterations and the iteration --stop best keeps. Writes OUT/summary.jsonl.
# Usage: tools/science/stopping_study.sh ASTROCLEAR OUT SIZE SEED [simulate options...]
# (docs/science.md, "Held-out stopping", has the results.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
"$exe" coadd -m s/stack.toml -o coadd.fits --overwrite > /dev/null

# train: one run to 1500 iterations, a checkpoint every 50 (each holds the latent image then).
"$exe" train -m s/stack.toml -o train_last.fits -n 1500 --stop last --checkpoint-every 50 --keep-checkpoints 40 \
  --overwrite --log-every 500 > train_last.log 2>&1
python3 - <<'PY'
import glob, h5py, numpy as np
from astropy.io import fits
for path in sorted(glob.glob('train_last.checkpoints/checkpoint_*.h5')):
    with h5py.File(path) as f:
        it = int(f.attrs['iteration']); lat = f['latent'][:]
    h = fits.Header(); h['ACPROD'] = 'AstroClearNet latent image'; h['ACITER'] = it
    fits.writeto('train_%05d.fits' % it, lat.astype(np.float32), h, overwrite=True)
PY
# rl and mm: one run per iteration count (each output is the iterate at that count).
for n in 50 100 200 300 500 700 1000 1500; do
  "$exe" rl -m s/stack.toml -o "rl_$(printf %05d $n).fits" -n $n --stop last --overwrite > /dev/null 2>&1
done
for n in 50 100 200 400 700 1000; do
  "$exe" mm -m s/stack.toml -o "mm_$(printf %05d $n).fits" -n $n --stop last --overwrite > /dev/null 2>&1
done
# The runs as users run them: --stop best with the defaults, timed.
for method in train rl mm; do
  start=$(date +%s.%N)
  "$exe" $method -m s/stack.toml -o "${method}_best.fits" --overwrite > "${method}_best.log" 2>&1
  echo "$method $(echo "$(date +%s.%N) - $start" | bc)" >> wall_seconds.txt
done
"$exe" evaluate train_0*.fits rl_0*.fits mm_0*.fits train_best.fits rl_best.fits mm_best.fits train_last.fits \
  --compare coadd.fits --purity-reference coadd.fits --truth s --json scores.jsonl --overwrite > evaluate.txt
echo "wrote $out/scores.jsonl"
