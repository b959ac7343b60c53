"""The weak-to-strong protocol, measured: which epoch-selection rule, and how the gate's neighbourhood size matters.

    OMP_NUM_THREADS=1 .venv/bin/python tools/protocol_study.py select [--presets digits fashion-mnist-blocks]
    OMP_NUM_THREADS=1 .venv/bin/python tools/protocol_study.py k [--presets digits fashion-mnist-blocks]

`select`: each preset under `select='weak'`, `'last'` and (opt-in, for reference) `'gold'` on the selection seeds
11-15 (`csl.experiments.SELECTION_SEEDS`); prints PGR per level and the paired difference of every rule to `'last'`
(mean ± standard error over seeds). The gold-free rule that wins here is the presets' default.

`k`: the default gate with k = 5, 10, 20, 40 pool neighbours on the held-out seeds 100-104
(`HELDOUT_SEEDS`), the presets' own selection rule; prints PGR at the deepest level and routing accuracy per k, with
the paired difference to k = 10 (the value fixed in advance: this sweep reports, it does not choose).

Runs are written under --out (default results/protocol) and resumed: a finished seed is never run twice. About
5 minutes per preset and study on 2 CPU cores (Fashion-MNIST: about 10).
"""
import argparse, json, math, statistics
from dataclasses import replace
from pathlib import Path
from csl.experiments import configure, run_experiment, SELECTION_SEEDS, HELDOUT_SEEDS


def _row(res, method, kind):
    return next(r for r in res['rows'] if r['method'] == method and r['labels'] == kind)


def _pm(vals):
    return f'{100 * statistics.fmean(vals):.1f} ± {100 * statistics.stdev(vals):.1f}'


def _diff(a, b):
    d = [x - y for x, y in zip(a, b)]
    return f'{100 * statistics.fmean(d):+.1f} ± {100 * statistics.stdev(d) / math.sqrt(len(d)):.1f}'


def select_study(preset, out):
    "PGR per level under each selection rule, and each rule's paired difference to 'last'."
    runs = {s: run_experiment(configure(preset, select=s), SELECTION_SEEDS, out/f'{preset}-select-{s}', 'cpu')
            for s in ('weak', 'last', 'gold')}
    base = runs['last']; L = max(r['level'] for r in base['rows'] if r['method'].startswith('csl@'))
    methods = ['naive_w2s'] + [f'csl@{l}' for l in range(1, L + 1)] + [f'official@{L}']
    lines = [f"{preset}, seeds {list(SELECTION_SEEDS)}: PGR (%) per rule, and the paired difference to 'last' "
             "(± standard error)", '', '| rule | labels | ' + ' | '.join(methods) + ' |',
             '|---|---|' + '---|' * len(methods)]
    for kind in base['labels']:
        for s, res in runs.items():
            cells = [_pm(_row(res, m, kind)['pgr']) for m in methods]
            if s != 'last': cells = [f"{c} ({_diff(_row(res, m, kind)['pgr'], _row(base, m, kind)['pgr'])})"
                                     for c, m in zip(cells, methods)]
            lines.append(f"| {s} | {kind} | " + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def k_study(preset, out, ks=(5, 10, 20, 40)):
    "PGR at the deepest level and routing accuracy per neighbourhood size, paired against k = 10."
    p = configure(preset)
    runs = {k: run_experiment(replace(p, csl=replace(p.csl, neighbours=k)), HELDOUT_SEEDS, out/f'{preset}-k{k}', 'cpu')
            for k in ks}
    base = runs[10]; L = max(r['level'] for r in base['rows'] if r['method'].startswith('csl@'))
    lines = [f"{preset}, seeds {list(HELDOUT_SEEDS)}, select='{p.csl.probe.select}': the gate `{p.csl.assign}` per k", '',
             f'| k | labels | PGR csl@{L} (%) | paired to k=10 | routing L1 / L{L} (%) | csl - official@{L} |',
             '|---|---|---|---|---|---|']
    for kind in base['labels']:
        for k, res in runs.items():
            r, ref = _row(res, f'csl@{L}', kind), _row(base, f'csl@{L}', kind)
            route = ' / '.join(f"{100 * statistics.fmean(_row(res, f'csl@{l}', kind)['assign_acc']):.1f}" for l in (1, L))
            to_10 = '' if k == 10 else _diff(r['pgr'], ref['pgr'])
            lines.append(f"| {k} | {kind} | {_pm(r['pgr'])} | {to_10} | {route} "
                         f"| {_diff(r['pgr'], _row(res, f'official@{L}', kind)['pgr'])} |")
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('study', choices=['select', 'k'])
    ap.add_argument('--presets', nargs='+', default=['digits', 'fashion-mnist-blocks'])
    ap.add_argument('--out', type=Path, default=Path('results/protocol'))
    a = ap.parse_args()
    for preset in a.presets:
        print((select_study if a.study == 'select' else k_study)(preset, a.out) + '\n', flush=True)


if __name__ == '__main__':
    main()
