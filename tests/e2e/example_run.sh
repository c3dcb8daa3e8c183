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
head -c 8 "$out/preview.png" | od -An -c | grep -q "P   N   G" || { echo "FAIL: preview is not a PNG"; exit 1; }
echo "PASS example run"
