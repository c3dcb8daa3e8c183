#!/usr/bin/env python3
"""Summarises tools/science/stopping_study.sh runs: per method, the truth scores and the held-out
loss at each iteration count, the iteration the truth prefers, and the one --stop best keeps.
Usage: stopping_summary.py STUDY_DIR [STUDY_DIR ...]"""
import json, re, sys
from astropy.io import fits


def held_out_record(path):
    record = {}
    for line in fits.getheader(path)['HISTORY']:
        if line.startswith('astroclear held-out loss '):
            for it, loss in re.findall(r'(\d+):([0-9.eE+-]+)', line[len('astroclear held-out loss '):]):
                record[int(it)] = float(loss)
    return record


def main():
    for study in sys.argv[1:]:
        rows = [json.loads(l) for l in open(study + '/scores.jsonl')]
        by_file = {r['image'].split('/')[-1]: r for r in rows}
        walls = dict(l.split() for l in open(study + '/wall_seconds.txt'))
        print(f'== {study}')
        train_record = held_out_record(study + '/train_last.fits')
        for method in ('train', 'rl', 'mm'):
            points = []
            for name, r in sorted(by_file.items()):
                m = re.match(method + r'_(\d{5})\.fits', name)
                if not m:
                    continue
                it = int(m.group(1))
                loss = train_record.get(it) if method == 'train' else held_out_record(f'{study}/{name}').get(it)
                points.append((it, loss, r))
            best_ssim = max(points, key=lambda p: p[2]['ssim'])
            best_purity = max(points, key=lambda p: p[2]['completeness_at_reference_purity'] or 0)
            best_l2 = min(points, key=lambda p: p[2]['relative_l2'])
            held = min((p for p in points if p[1] is not None), key=lambda p: p[1])
            chosen = by_file[method + '_best.fits']
            kept = fits.getheader(f'{study}/{method}_best.fits')['ACVALIT']
            print(f'  {method}: truth-best iteration by SSIM {best_ssim[0]}, by completeness at the coadd\'s purity '
                  f'{best_purity[0]}, by relative L2 {best_l2[0]}; lowest held-out loss of the series at {held[0]}; '
                  f'--stop best with the defaults keeps {kept} ({float(walls[method]):.0f} s)')
            for it, loss, r in points + [(f'best={kept}', None, chosen)]:
                print(f'    {str(it):>10}  held-out {loss if loss is None else round(loss, 5)!s:>8}  '
                      f'completeness {r["completeness"]:.3f} false {r["false_fraction"]:.3f} '
                      f'at-purity {r["completeness_at_reference_purity"]!s:.5}  flux bias {100*r["flux_bias"]:+.1f}% '
                      f'scatter {100*r["flux_scatter"]:.1f}%  SSIM {r["ssim"]:.3f}  L2 {r["relative_l2"]:.3f}')
        c = by_file['coadd.fits']
        print(f'  coadd: completeness {c["completeness"]:.3f} false {c["false_fraction"]:.3f} '
              f'flux scatter {100*c["flux_scatter"]:.1f}% SSIM {c["ssim"]:.3f}')


if __name__ == '__main__':
    main()
