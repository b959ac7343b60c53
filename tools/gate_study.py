"""Which E-step routes best? Every gate of `csl.assign.ASSIGNERS` worth comparing (and one defined here, to show
how a user adds a gate), on the embedded default (seeds 0-2, where the gates were designed), on held-out seeds
(11-15) and on Fashion-MNIST class blocks (seeds 0-4), through the whole loop. Prints the markdown table that
nbs/04_assign.ipynb shows, and writes every number to a JSON file.

    OMP_NUM_THREADS=1 .venv/bin/python tools/gate_study.py [--out results/gate_study.json] [--quick]

A gate is judged on PGR at the deepest level (8 teachers) and on routing accuracy per level. Ground truth is
read only to measure (routing accuracy, PGR); no gate sees it. About 10 minutes on 2 CPU cores (--quick: 1 seed
per setting, a smoke test of the script).
"""
import argparse, json, statistics, sys, time
from dataclasses import replace
from pathlib import Path
import torch
from csl.assign import ASSIGNERS, GateInput, Assignment, _route, _need, scope_mass
from csl.cosupervise import co_supervise, Report
from csl.experiments import get_preset, build_problem


def top2_teacher_tiebreak(g: GateInput) -> Assignment:
    "The student's two most likely scopes; of their two teachers, the one more sure of its own label."
    up = _need(g, 'unit_probs', 'top2')  # (N, U)
    if up is None or g.k == 1: return _route(g, torch.zeros(g.n, dtype=torch.long, device=g.owner.device))
    top2 = scope_mass(up, g.owner, g.k).topk(2, dim=1).indices  # (N, 2)
    conf = g.teacher_probs.float().amax(2).gather(1, top2)  # (N, 2) each candidate teacher's max probability
    return _route(g, top2.gather(1, conf.argmax(1, keepdim=True)).squeeze(1))


ASSIGNERS['top2'] = top2_teacher_tiebreak  # a user's gate: one function in the registry

VARIANTS = {  # name -> (gate, rounds)
    'ownership (official)': ('ownership', 1),
    'ownership, 2 rounds': ('ownership', 2),
    'scope': ('scope', 1),
    'agreement': ('agreement', 1),
    'soft (HME mixture)': ('soft', 1),
    'parent (product)': ('parent', 1),
    'top2 + teacher tie-break': ('top2', 1),
    'neighbours': ('neighbours', 1),
    'neighbours, 2 rounds': ('neighbours', 2),
    'with_self': ('with_self', 1),
}
SETTINGS = {  # name -> (preset, seeds)
    'digits 0-2': ('digits', (0, 1, 2)),
    'digits 11-15 (held out)': ('digits', (11, 12, 13, 14, 15)),
    'fashion blocks 0-4': ('fashion-mnist-blocks', (0, 1, 2, 3, 4)),
}


def run(setting: str, quick: bool) -> dict:
    "variant -> per seed: PGR and routing accuracy per level (soft labels, the presets' own kind)."
    preset_name, seeds = SETTINGS[setting]
    preset = get_preset(preset_name)
    out = {v: [] for v in VARIANTS}
    for seed in seeds[:1] if quick else seeds:
        _, prob, _ = build_problem(preset, seed, 'cpu')
        base = co_supervise(prob, replace(preset.csl, assign='ownership'), seed=seed, device='cpu')  # weak, ceiling
        for v, (gate, rounds) in VARIANTS.items():
            h = co_supervise(prob, replace(preset.csl, assign=gate, rounds=rounds), seed=seed, device='cpu', baselines=False)
            h.ceiling_acc = base.ceiling_acc
            rows = [r for r in Report.from_history(h).rows if r['method'].startswith('csl@')]
            out[v].append(dict(seed=seed, pgr=[r['pgr'] for r in rows], routing=[r['assign_acc'] for r in rows]))
        print(f'[gate_study] {setting} seed {seed} done', file=sys.stderr, flush=True)
    return out


def _ms(xs: list) -> str:
    xs = [x for x in xs if x is not None]
    if not xs: return 'n/a'
    return f'{statistics.fmean(xs):.2f} ± {statistics.stdev(xs):.2f}' if len(xs) > 1 else f'{xs[0]:.2f}'


def table(res: dict) -> str:
    """Markdown: per setting, PGR at the deepest level (mean ± std over seeds), its paired difference to the official
    rule (mean ± standard error over seeds) and the routing accuracy per level (mean)."""
    head = '| gate | ' + ' | '.join(f'{s}: PGR@8 | vs official | routing L1/L2/L3' for s in res) + ' |'
    lines = [head, '|---|' + '---|---|---|' * len(res)]
    for v in VARIANTS:
        cells = []
        for s, by in res.items():
            pgr = [r['pgr'][-1] for r in by[v]]
            diff = [a - b['pgr'][-1] for a, b in zip(pgr, by['ownership (official)'])]
            route = ' / '.join(f"{statistics.fmean(r['routing'][l] for r in by[v]):.2f}" if by[v][0]['routing'][l] is not None
                               else 'n/a' for l in range(len(by[v][0]['routing'])))
            se = statistics.stdev(diff) / len(diff) ** 0.5 if len(diff) > 1 else 0.0  # paired: same seeds, same problems
            cells += [_ms(pgr), '' if v == 'ownership (official)' else f'{statistics.fmean(diff):+.2f} ± {se:.2f}', route]
        lines.append(f'| {v} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', type=Path, default=Path('results/gate_study.json'))
    ap.add_argument('--quick', action='store_true', help='one seed per setting: checks the script, measures nothing')
    ap.add_argument('--table', type=Path, default=None, help='only print the table of an earlier run (its JSON file)')
    a = ap.parse_args()
    if a.table: print(table(json.loads(a.table.read_text()))); sys.exit(0)
    torch.set_num_threads(1); t0 = time.perf_counter()
    res = {s: run(s, a.quick) for s in SETTINGS}
    a.out.parent.mkdir(parents=True, exist_ok=True); a.out.write_text(json.dumps(res, indent=1))
    print(table(res))
    print(f'\n{time.perf_counter() - t0:.0f} s; every number in {a.out}')
