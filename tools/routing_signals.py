"""How well can any gold-free signal route? Routing accuracy per level of every signal the method has, one table.

    OMP_NUM_THREADS=1 .venv/bin/python tools/routing_signals.py [--preset fashion-mnist-blocks] [--seeds 11 12 13 14 15]

For each seed: the level-0 student (trained on the generalist's labels, as in every run), then, per level, the share
of the pool routed to the owner of its true class (measurement only; no signal reads a gold label of the pool) by: the
student's scope mass (`scope`), the `with_self` gate, its neighbourhood alone (`neighbours`), a linear head fit on
the teachers' own labelled set (the few-shot student's information), their average and product (and the product with
the student's vote weighted by 0.5 or 2), the same quantities propagated over the pool's 10-nearest-neighbour graph
(10 steps, restart 0.5), the specialists' own confidence (the teacher whose top class is most probable), and the label
accuracy those routes give beside the oracle's. It bounds what a gate built from these signals can reach: the oracle
routes 100 %.
"""
import argparse, statistics, sys
import torch
from csl.experiments import get_preset, build_problem, SELECTION_SEEDS
from csl.cosupervise import level_zero, History, gate_views
from csl.assign import scope_mass, neighbour_mean, fit_unit_head, few_shot_product


def propagate(u0: torch.Tensor, nbrs: torch.Tensor, steps: int = 10, restart: float = 0.5) -> torch.Tensor:
    "(P, U) probabilities smoothed over the neighbour graph: u <- restart * u0 + (1 - restart) * mean over neighbours."
    u = u0
    for _ in range(steps): u = restart * u0 + (1 - restart) * neighbour_mean(u, nbrs)
    return u


def power_product(s: torch.Tensor, h: torch.Tensor, a: float) -> torch.Tensor:
    "(P, C) s^a x h renormalised: the product of experts with the student's vote weighted by a (a = 1: the default)."
    return torch.softmax(a * s.clamp_min(1e-6).log() + h.clamp_min(1e-6).log(), 1)


def signals(p, cfg, seed: int) -> dict:
    "level -> {signal: routing accuracy}, plus the label accuracy of the with_self route and the oracle's."
    start = level_zero(p, cfg, seed, 'cpu', History(meta={}), ())
    views = gate_views(p, cfg, 'cpu', gates=['with_self'])
    pool, y, h, nb = p.splits['pool'], p.truth.labels, p.hierarchy, views.neighbours
    teach = p.splits['teach']  # the teachers' own labelled set: the teachers' data, not the pool's gold
    head = fit_unit_head(p.feats[teach], y[teach], p.n_classes, device='cpu')
    with torch.no_grad(): hp = head(p.feats[pool]).float()  # (P, C)
    sp = start.probs[pool].float()  # (P, C)
    rows = torch.arange(len(pool))
    out = {}
    for l in range(1, p.n_levels):
        own, k = h.owner(l), h.n_teachers(l)
        truth = own[y[pool]]  # (P,) measurement only
        mass = lambda u: scope_mass(u, own, k)  # (P, K)
        acc = lambda m: (m.argmax(1) == truth).float().mean().item()
        s, n, f = mass(sp), mass(neighbour_mean(sp, nb)), mass(hp)
        prod = few_shot_product(sp, hp)  # (P, C) what the default gate smooths
        with_self_mass = lambda u: mass(u) + mass(neighbour_mean(u, nb))  # (P, K) the default gate's arithmetic
        tp = p.bank.probs[l][pool].float()  # (P, K, C)
        label = lambda t: (tp[rows, t].argmax(1) == y[pool]).float().mean().item()
        out[l] = {'scope': acc(s), 'with_self': acc(s + n), 'neighbours': acc(n), 'few-shot head': acc(f),
                  'student + head': acc(s + f), 'student x head': acc(s.clamp_min(1e-6).log() + f.clamp_min(1e-6).log()),
                  'propagated student': acc(mass(propagate(sp, nb))),
                  'propagated student + head': acc(mass(propagate((sp + hp) / 2, nb))),
                  'with_few_shot (student x head, with_self)': acc(mass(prod) + mass(neighbour_mean(prod, nb))),
                  **{f'student x head propagated, {t} steps': acc(mass(propagate(prod, nb, steps=t))) for t in (2, 3, 5, 10)},
                  **{f'student^{a} x head, with_self': acc(with_self_mass(power_product(sp, hp, a))) for a in (0.5, 2)},
                  'specialist confidence': acc(tp.amax(2)),
                  'label acc, with_self route': label((s + n).argmax(1)), 'label acc, oracle route': label(truth)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--preset', default='fashion-mnist-blocks')
    ap.add_argument('--seeds', type=int, nargs='+', default=list(SELECTION_SEEDS))
    a = ap.parse_args(argv)
    pre = get_preset(a.preset)
    runs = []
    for seed in a.seeds:
        _, p, _ = build_problem(pre, seed, 'cpu')
        runs.append(signals(p, pre.csl, seed)); print(f'[routing_signals] seed {seed} done', file=sys.stderr)
    levels = sorted(runs[0])
    print(f"{a.preset}, seeds {' '.join(map(str, a.seeds))}: routing accuracy % per level (mean ± std)\n")
    print('| signal | ' + ' | '.join(f'level {l}' for l in levels) + ' |')
    print('|---|' + '---|' * len(levels))
    for name in runs[0][levels[0]]:
        cell = lambda l: [100 * r[l][name] for r in runs]
        fmt = lambda v: f'{statistics.fmean(v):.1f} ± {statistics.stdev(v):.1f}' if len(v) > 1 else f'{v[0]:.1f}'
        print(f'| {name} | ' + ' | '.join(fmt(cell(l)) for l in levels) + ' |')


if __name__ == '__main__':
    main()
