#!/usr/bin/env bash
# The README's example command, at a small size: it must write the restored FITS and the preview.
set -euo pipefail
exe=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ASTROCLEAR=$exe OUT=$out SIZE=64 EXPOSURES=6 ITERATIONS=20 bash "$root/jobs/run_example.sh"
test -s "$out/restored.fits" || { echo "FAIL: no restored.fits"; exit 1; }
test -s "$out/preview.png" || { echo "FAIL: no preview.png"; exit 1; }
for png in preview comparison; do
  head -c 8 "$out/$png.png" | od -An -c | grep -q "P   N   G" || { echo "FAIL: $png.png is not a PNG"; exit 1; }
done
# truth | coadd | ImageMM | astroclear: four panels of 256 px (64 px enlarged 4x), 4 px apart.
read -r b0 b1 b2 b3 < <(od -An -tu1 -j16 -N4 "$out/comparison.png")  # IHDR width, big-endian
width=$(((b0 << 24) | (b1 << 16) | (b2 << 8) | b3))
[ "$width" -eq $((4 * 256 + 3 * 4)) ] || { echo "FAIL: comparison.png is $width px wide, expected 4 panels"; exit 1; }
echo "PASS example run"
