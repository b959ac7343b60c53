"""Choose a preset's student settings without a gold label: weak-label validation on the design seeds.

    OMP_NUM_THREADS=1 .venv/bin/python tools/tune_student.py [--preset digits] [--seeds 0 1 2] [--out FILE]

The rule, fixed before it was run: over a small grid of Adam learning rates and weight decays (batch size and epochs
stay the preset's), keep the setting whose level-0 student (the naive weak-to-strong student, trained on the
generalist teacher's labels of the pool, its epoch chosen by the preset's own rule) agrees best with the generalist's labels of the validation split, averaged
over the design seeds. The validation split's gold labels, the pool's and the test split's are never read: the
student is built from a `Problem` whose truth is replaced by labels that are all wrong (`_blind`), so a setting
that peeked at them could not win. Prints one line per setting, the chosen one last.
"""
import argparse, json, statistics
from dataclasses import replace
from pathlib import Path
from csl.cosupervise import Truth, level_zero
from csl.experiments import get_preset, build_problem, DESIGN_SEEDS

GRID = dict(lr=(1e-3, 3e-3, 1e-2), wd=(0.0, 1e-4, 1e-2))


def _blind(problem):
    "The same problem with every gold label replaced by a wrong one: what the tuning sees of the truth."
    y = problem.truth.labels
    return replace(problem, truth=Truth((y + 1) % problem.n_classes, problem.truth.domains))


def agreement(p, cfg, seed):
    "Share of the validation split where the level-0 student (its epoch chosen as `cfg` says) names the generalist's class."
    val = p.splits['val']
    student = level_zero(p, cfg, seed=seed, device='cpu').probs[val].argmax(1)  # (V,)
    return (student == p.bank.probs[0][val, 0].float().argmax(1)).float().mean().item()


def score(preset, problems, lr, wd):
    "Mean over seeds of the level-0 student's agreement with the generalist's labels of the validation split."
    cfg = replace(preset.csl, probe=replace(preset.csl.probe, lr=lr, wd=wd))
    return statistics.fmean(agreement(p, cfg, s) for s, p in problems.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--preset', default='digits')
    ap.add_argument('--seeds', type=int, nargs='+', default=list(DESIGN_SEEDS))
    ap.add_argument('--out', type=Path, default=None, help='also write the scores as JSON')
    a = ap.parse_args()
    preset = get_preset(a.preset)
    problems = {s: _blind(build_problem(preset, seed=s)[1]) for s in a.seeds}
    rows = [dict(lr=lr, wd=wd, agreement=score(preset, problems, lr, wd)) for lr in GRID['lr'] for wd in GRID['wd']]
    for r in rows: print(f"{a.preset}: lr {r['lr']:g}, wd {r['wd']:g}: weak-label agreement {r['agreement']:.4f}")
    best = max(rows, key=lambda r: r['agreement'])
    print(f"chosen for {a.preset} (seeds {a.seeds}): lr {best['lr']:g}, wd {best['wd']:g}")
    if a.out: a.out.write_text(json.dumps(dict(preset=a.preset, seeds=a.seeds, rows=rows, chosen=best), indent=1))


if __name__ == '__main__':
    main()
