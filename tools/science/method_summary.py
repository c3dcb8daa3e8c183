#!/usr/bin/env python3
"""Tabulates tools/science/method_table.sh runs: per stack and method, the iteration --stop best
kept, the truth scores at it and the wall time; then the mean over the stacks given.
Usage: method_summary.py TABLE_DIR [TABLE_DIR ...]   (markdown on standard output)"""
import json, sys
from astropy.io import fits

METHODS = [('coadd', 'coadd.fits'), ('train', 'train.fits'), ('rl', 'rl.fits'), ('mm', 'mm.fits'),
           ('train, final fit', 'train_all.fits'), ('rl, final fit', 'rl_all.fits')]


def main():
    means = {}
    print('| stack | method | iteration kept | completeness / false | at mm purity | flux bias / scatter '
          '| SSIM | relative L2 | wall s |')
    print('|---|---|---|---|---|---|---|---|---|')
    for table in sys.argv[1:]:
        rows = {json.loads(l)['image'].split('/')[-1]: json.loads(l) for l in open(table + '/scores.jsonl')}
        walls = dict(l.split() for l in open(table + '/wall_seconds.txt'))
        stack = table.rstrip('/').split('/')[-1]
        for method, name in METHODS:
            if name not in rows:
                continue
            r = rows[name]
            header = fits.getheader(f'{table}/{name}')
            kept = header.get('ACVALIT', header.get('ACITER', '')) if method != 'coadd' else ''
            wall = float(walls.get(name[:-5], 'nan'))
            purity = r['completeness_at_reference_purity']
            print(f'| {stack} | {method} | {kept} | {r["completeness"]:.3f} / {r["false_fraction"]:.3f} | '
                  f'{"–" if purity is None else f"{purity:.3f}"} | {100 * r["flux_bias"]:+.1f}% / '
                  f'{100 * r["flux_scatter"]:.1f}% | {r["ssim"]:.3f} | {r["relative_l2"]:.3f} | {wall:.0f} |')
            kind = stack.split('_')[0]
            m = means.setdefault((kind, method), [])
            m.append((r['completeness'], r['false_fraction'], purity if purity is not None else float('nan'),
                      r['flux_scatter'], r['ssim'], r['relative_l2'], wall))
    print()
    print('| stacks | method | n | completeness / false | at mm purity | flux scatter | SSIM | relative L2 | wall s |')
    print('|---|---|---|---|---|---|---|---|---|')
    for (kind, method), values in means.items():
        n = len(values)
        avg = [sum(v[i] for v in values) / n for i in range(7)]
        # Completeness at mm's purity: over the stacks where the image gets that pure (– otherwise).
        pure = [v[2] for v in values if v[2] == v[2]]
        purity = f'{sum(pure) / len(pure):.3f}' + ('' if len(pure) == n else f' ({len(pure)} of {n})') if pure else '–'
        print(f'| {kind} | {method} | {n} | {avg[0]:.3f} / {avg[1]:.3f} | {purity} | {100 * avg[3]:.1f}% | '
              f'{avg[4]:.3f} | {avg[5]:.3f} | {avg[6]:.0f} |')


if __name__ == '__main__':
    main()
