"""The gate against the release's rule in every setting: datasets x teacher budget x hierarchy x label kind.

    OMP_NUM_THREADS=1 .venv/bin/python tools/gate_grid.py [--gates with_self neighbours ...] [--seeds 11 12 13 14 15]
                                                          [--cells ...] [--out results/gate_grid.json] [--table FILE]

Cells: the embedded digits and Fashion-MNIST with 200 and 1,000 teacher labels, the contiguous class blocks
1 -> 2 -> 4 -> 8 (both datasets) and Fashion-MNIST's three superclasses, soft and hard teacher labels. Per cell and
gate: PGR per level, routing accuracy per level (measured against the truth, which no gate sees), and the paired
difference to the official rule (`ownership`) at the deepest level, mean ± standard error over the seeds; naive W2S
and the oracle beside them. Gold-free throughout: the presets' students keep their last epoch and no gate, filter or
epoch choice reads a gold label. A finished (cell, seed) is kept in --out and not run again. The gates' own options
(CSLConfig fields) are given as `name:field=value` (e.g. `neighbours:neighbours=5`).
"""
import argparse, json, math, statistics, sys, time
from functools import partial
from dataclasses import replace
from pathlib import Path
from csl.cosupervise import co_supervise, Report
from csl.experiments import get_preset, build_problem, SELECTION_SEEDS
from csl.assign import ASSIGNERS, NEEDS, posterior

# gates measured here and not in the registry, added as a user would: `posterior` without its sharpening (t = 1) and
# flattened (t = 2)
for t in (1, 2):
    ASSIGNERS.setdefault(f'posterior_t{t}', partial(posterior, t=float(t)))
    NEEDS.setdefault(f'posterior_t{t}', NEEDS['posterior'])

CELLS = {  # name -> (preset, loader options)
    'digits blocks, 200': ('digits', {}),
    'digits blocks, 1000': ('digits', dict(n_teach=500)),  # 500 per digit set
    'fashion blocks, 200': ('fashion-mnist-blocks', {}),
    'fashion blocks, 1000': ('fashion-mnist-blocks', dict(n_teach=1000)),
    'fashion superclasses, 200': ('fashion-mnist', dict(n_teach=200)),
    'fashion superclasses, 1000': ('fashion-mnist', {}),
}


def _gate_cfg(base, spec: str):
    "A CSLConfig for the gate spec 'name' or 'name:field=value,field=value'."
    name, _, opts = spec.partition(':')
    kw = {k: json.loads(v) for k, v in (o.split('=') for o in opts.split(',') if o)}
    return replace(base, assign=name, **kw)


def _path(rep, m) -> dict:
    rows = [r for r in rep.rows if r['method'].startswith(f'{m}@')]
    return dict(pgr=[r['pgr'] for r in rows], routing=[r['assign_acc'] for r in rows])


def run_cell(cell: str, seeds, gates, done: dict) -> dict:
    "seed -> kind -> {gate spec or baseline: {'pgr': [...], 'routing': [...]}}; only what `done` lacks is run."
    preset_name, data_kw = CELLS[cell]
    p = get_preset(preset_name); p = replace(p, data_kw={**p.data_kw, **data_kw})
    out = {s: {k: dict(v) for k, v in per.items()} for s, per in done.items()}
    for seed in seeds:
        have = out.get(str(seed), {})
        todo = lambda kind: [g for g in ['official', *gates] if g not in have.get(kind, {})]
        if not todo('soft') and not todo('hard'): continue
        _, prob, _ = build_problem(p, seed, 'cpu')
        for kind in ('soft', 'hard'):
            res = have.setdefault(kind, {})
            base = replace(p.csl, probe=replace(p.csl.probe, soft=kind == 'soft'))
            # the official rule with every baseline (naive, oracle, ceiling): the ceiling puts every gate on one scale
            ref = co_supervise(prob, replace(base, assign='ownership'), seed=seed, device='cpu')
            rep = Report.from_history(ref)
            res.update(official=_path(rep, 'csl'), oracle=_path(rep, 'oracle'),
                       naive=dict(pgr=[rep.row('naive_w2s')['pgr']], routing=[]))
            for g in todo(kind):
                h = co_supervise(prob, _gate_cfg(base, g), seed=seed, device='cpu', baselines=False)
                h.ceiling_acc = ref.ceiling_acc
                res[g] = _path(Report.from_history(h), 'csl')
        out[str(seed)] = have
        print(f'[gate_grid] {cell} seed {seed} done', file=sys.stderr, flush=True)
    return out


def _ms(v):
    return f'{100 * statistics.fmean(v):.1f} ± {100 * statistics.stdev(v):.1f}' if len(v) > 1 else f'{100 * v[0]:.1f}'


def table(res: dict, gates) -> str:
    "Markdown, one block per cell: PGR per level and routing per gate, and the paired difference to the official rule."
    out = []
    for cell, by_seed in res.items():
        seeds = sorted(by_seed, key=int)
        if not seeds: continue
        levels = len(by_seed[seeds[0]]['soft']['official']['pgr'])
        out += [f"**{cell}** (seeds {', '.join(seeds)}; PGR % per level, routing % at the deepest level; "
                "vs official: paired difference at the deepest level, mean ± standard error)", '',
                '| gate | ' + ' | '.join(f'{k} L{l + 1}' for k in ('soft', 'hard') for l in range(levels))
                + ' | routing soft | vs official soft | vs official hard |',
                '|---|' + '---|' * (2 * levels + 3)]
        for g in ['naive', 'official', *gates, 'oracle']:
            cells = []
            for kind in ('soft', 'hard'):
                for l in range(levels):
                    v = [by_seed[s][kind][g]['pgr'][min(l, len(by_seed[s][kind][g]['pgr']) - 1)] for s in seeds]
                    cells.append(_ms(v) if g != 'naive' or l == 0 else '')
            route = [by_seed[s]['soft'][g]['routing'][-1] for s in seeds] if by_seed[seeds[0]]['soft'][g]['routing'] else []
            cells.append(f'{100 * statistics.fmean(route):.1f}' if route and None not in route else '')
            for kind in ('soft', 'hard'):
                if g in ('naive', 'official', 'oracle'): cells.append(''); continue
                d = [by_seed[s][kind][g]['pgr'][-1] - by_seed[s][kind]['official']['pgr'][-1] for s in seeds]
                se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else float('nan')
                flag = ' **loses**' if statistics.fmean(d) < -se else ''
                cells.append(f'{100 * statistics.fmean(d):+.1f} ± {100 * se:.1f}{flag}')
            out.append(f'| {g} | ' + ' | '.join(cells) + ' |')
        out += ['', _versus(by_seed, seeds, gates), '']
    return '\n'.join(out)


def _versus(by_seed: dict, seeds: list, gates) -> str:
    "The first gate against each other gate, paired by seed at the deepest level (PGR points, mean ± standard error)."
    parts = []
    for g in gates[1:]:
        d = {k: [by_seed[s][k][gates[0]]['pgr'][-1] - by_seed[s][k][g]['pgr'][-1] for s in seeds]
             for k in ('soft', 'hard')}
        se = {k: statistics.stdev(v) / math.sqrt(len(v)) if len(v) > 1 else float('nan') for k, v in d.items()}
        parts.append(f'{gates[0]} - {g}: ' + ', '.join(f'{k} {100 * statistics.fmean(v):+.1f} ± {100 * se[k]:.1f}'
                                                      for k, v in d.items()))
    return ('Paired at the deepest level: ' + '; '.join(parts) + '.') if parts else ''


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--gates', nargs='+', default=['with_self', 'neighbours'])
    ap.add_argument('--seeds', type=int, nargs='+', default=list(SELECTION_SEEDS))
    ap.add_argument('--cells', nargs='+', default=list(CELLS), choices=list(CELLS))
    ap.add_argument('--out', type=Path, default=Path('results/gate_grid.json'))
    ap.add_argument('--table', action='store_true', help='only print the table of --out')
    a = ap.parse_args()
    res = json.loads(a.out.read_text()) if a.out.exists() else {}
    if not a.table:
        t0 = time.perf_counter()
        for cell in a.cells:
            res[cell] = run_cell(cell, a.seeds, a.gates, res.get(cell, {}))
            a.out.parent.mkdir(parents=True, exist_ok=True); a.out.write_text(json.dumps(res, indent=1))
        print(f'{time.perf_counter() - t0:.0f} s; every number in {a.out}', file=sys.stderr)
    print(table({c: res[c] for c in a.cells if c in res}, a.gates))


if __name__ == '__main__':
    main()
