"""The README's "Measured results" section, written from two `csl run` results folders (never typed by hand).

    OMP_NUM_THREADS=1 .venv/bin/python tools/headline.py [--digits results/digits] [--fashion results/fashion-mnist-blocks]

A folder without results.json is filled first by `csl run`'s defaults (the held-out seeds). The section replaces the
markdown cell of index.ipynb that starts with "## Measured results"; then run `python tools/build_readme.py`.
"""
import argparse, json, statistics
from pathlib import Path
from csl.experiments import (run_experiment, curve_table, mean_of, result_row, paired, DESIGN_SEEDS, SELECTION_SEEDS,
                             HELDOUT_SEEDS)

ROOT = Path(__file__).resolve().parents[1]
HEAD = '## Measured results'


def _load(folder: Path, preset: str) -> dict:
    if not (folder/'results.json').exists(): run_experiment(preset, seeds=HELDOUT_SEEDS, out=folder, device='cpu')
    res = json.loads((folder/'results.json').read_text())
    if sorted(res['seeds']) != sorted(HELDOUT_SEEDS):  # the headline reports held-out seeds only
        raise SystemExit(f"{folder}/results.json has seeds {res['seeds']}; expected the held-out seeds "
                         f"{list(HELDOUT_SEEDS)} (run `csl run --preset {preset} --out {folder}`)")
    return res


def _pct(res, method, field='test_acc', labels=None):
    v = [x for x in result_row(res, method, labels)[field] if x is not None]
    return f'{100 * statistics.fmean(v):.1f} ± {100 * statistics.stdev(v):.1f}'


def _block(res: dict) -> str:
    "The curve table, the accuracies and the routing of one run, in words a reader can check against the table."
    L = max(r['level'] for r in res['rows'] if r['method'].startswith('csl@'))
    n = result_row(res, f'csl@{L}')['n_teachers']
    d, se, k = paired(res)[n]
    acc = (f"Test accuracy (soft labels): weak teacher {_pct(res, 'weak')}, naive weak-to-strong {_pct(res, 'naive_w2s')}, "
           f"csl at {n} teachers {_pct(res, f'csl@{L}')} (official rule {_pct(res, f'official@{L}')}, oracle "
           f"{_pct(res, f'oracle@{L}')}), few-shot {_pct(res, 'few_shot')}, ceiling {_pct(res, 'ceiling')} (the upper "
           f"bound: trained on the pool's gold labels, its epoch chosen on the validation split's). Routing accuracy at "
           + ' / '.join(str(result_row(res, f'csl@{l}')['n_teachers']) for l in range(1, L + 1)) + ' teachers: csl '
           + ' / '.join(_pct(res, f'csl@{l}', 'assign_acc') for l in range(1, L + 1)) + ' %, official '
           + ' / '.join(_pct(res, f'official@{l}', 'assign_acc') for l in range(1, L + 1)) + ' %.')
    verdict = (f"At {n} teachers csl - official is {100 * d:+.1f} ± {100 * se:.1f} PGR points (soft labels, paired over "
               f"{k} seeds, ± standard error).")
    return '\n\n'.join([curve_table(res), verdict + ' ' + acc])


def _few_shot_words(res: dict, name: str) -> str:
    "Where the few-shot student (the teachers' labelled set used directly) beats csl, in words."
    few = mean_of(res, 'few_shot', 'pgr')
    levels = sorted({r['level'] for r in res['rows'] if r['method'].startswith('csl@')})
    behind = [result_row(res, f'csl@{l}')['n_teachers'] for l in levels if mean_of(res, f'csl@{l}', 'pgr') < few]
    if not behind: return f"on {name} the few-shot student (PGR {100 * few:.1f}) is behind csl at every level"
    where = ('at every level' if len(behind) == len(levels)
             else f"with {' and '.join(map(str, behind))} teachers")
    return (f"on {name} the few-shot student (the teachers' gold labels used directly, PGR {100 * few:.1f}) is ahead "
            f"of csl {where} (soft labels)")


def _gap_words(res: dict, name: str) -> str:
    "How much of the gap from the official rule to perfect routing csl closes at the deepest level, per label kind."
    L = max(r['level'] for r in res['rows'] if r['method'].startswith('csl@'))
    part = lambda k: ((mean_of(res, f'csl@{L}', 'pgr', k) - mean_of(res, f'official@{L}', 'pgr', k))
                      / (mean_of(res, f'oracle@{L}', 'pgr', k) - mean_of(res, f'official@{L}', 'pgr', k)))
    return (f"on {name} csl closes {100 * part('soft'):.1f} % (soft labels) and {100 * part('hard'):.1f} % (hard) of "
            "the gap from the official rule to perfect routing")


def _grid_words(gate: str, path: Path = ROOT/'results'/'gate_grid.json') -> str:
    "The default gate against the release's rule over the whole settings grid: the range of paired differences."
    grid = json.loads(path.read_text()) if path.exists() else {}
    diffs = []  # (mean, standard error) per cell and label kind, at the deepest level
    for by_seed in grid.values():
        for kind in ('soft', 'hard'):
            d = [s[kind][gate]['pgr'][-1] - s[kind]['official']['pgr'][-1] for s in by_seed.values() if gate in s[kind]]
            if len(d) > 1: diffs.append((statistics.fmean(d), statistics.stdev(d) / len(d) ** 0.5))
    if not diffs: return f"`tools/gate_grid.py --gates {gate}` has not been run"
    lo, hi = min(m for m, _ in diffs), max(m for m, _ in diffs)
    z = min(m / se for m, se in diffs if se > 0)
    return (f"in all {len(diffs)} cells of a settings grid (two datasets, 200 and 1,000 teacher labels, class blocks "
            f"and superclasses, soft and hard labels; selection seeds) the default gate is ahead of the release's rule "
            f"by {100 * lo:+.1f} to {100 * hi:+.1f} PGR points at the deepest level (paired; at least {z:.1f} standard "
            "errors above zero)")


def section(digits: dict, fashion: dict) -> str:
    seeds, gate = digits['seeds'], digits['config']['csl']['assign']
    intro = (f"{HEAD}\n\nEvery number here is gold-free and on held-out seeds: `csl run` with its defaults, seeds "
             f"{', '.join(map(str, seeds))}, which were never used to design anything (the defaults were designed on "
             f"seeds {', '.join(map(str, DESIGN_SEEDS))}, the epoch rule was chosen on seeds "
             f"{', '.join(map(str, SELECTION_SEEDS))}). Every student keeps its last epoch, the students' settings were "
             "chosen by weak-label validation (`tools/tune_student.py`), and no method row reads a gold label of the "
             "pool or of the validation split: `tests/test_gold_free.py` replaces them all by wrong ones and gets the "
             "same numbers to the digit. Gold labels serve the measurements, the oracle, the ceiling and the "
             "`few_shot` reference, which trains the strong student directly on the teachers' own labelled set: what "
             "those labels buy without any teacher. The default gate reads that set too (the few-shot student's "
             "opinion on each sample's scope), and every row says how many of those labels it read. PGR (%) against "
             f"the number of teachers, for the package's gate (`csl`, `{gate}`), the release's rule (`official`) and perfect routing (`oracle`), soft and hard "
             "teacher labels; the ImageNet curve is drawn for its shape only.")
    d = f"**Embedded default `digits`** ({digits['preset']}, {len(seeds)} seeds):\n\n" + _block(digits)
    figs = ("![PGR against the number of teachers](nbs/images/curve.png)\n\n"
            "![routing accuracy and label precision per level](nbs/images/routing.png)\n\n"
            "![the default gate's assignments at 8 teachers](nbs/images/heatmap.png)")
    f = (f"**Second dataset: `csl run --preset fashion-mnist-blocks`** (Fashion-MNIST, the same class blocks, 200 "
         f"teacher labels, {len(fashion['seeds'])} seeds):\n\n" + _block(fashion))
    notes = ("Where it does not win: " + _few_shot_words(digits, 'the digits') + '; '
             + _few_shot_words(fashion, 'Fashion-MNIST') + '; ' + _gap_words(digits, 'the digits') + ', '
             + _gap_words(fashion, 'Fashion-MNIST') + '. Elsewhere: ' + _grid_words(gate)
             + " ([the gate notebook](nbs/04_assign.ipynb), `tools/gate_grid.py`). The "
             "pictures are regenerated from the run by `tools/make_figures.py`, this section by `tools/headline.py`; "
             "the choice of epoch rule and the neighbourhood sweep are measured in [the loop notebook]"
             "(nbs/07_cosupervise.ipynb) (`tools/protocol_study.py`).\n\n"
             "The paper-scale presets (`imagenet-paper`, `imagenet-paper-hard`, `cifar100-superclass`, `domainnet`) "
             "need a GPU kernel and their data; `csl presets` prints what each needs, the release's settings and the "
             "paper's PGR.")
    return '\n\n'.join([intro, d, figs, f, notes])


def write(text: str, nb_path: Path = ROOT/'index.ipynb') -> Path:
    nb = json.loads(nb_path.read_text())
    cell = next(c for c in nb['cells'] if c['cell_type'] == 'markdown' and ''.join(c['source']).startswith(HEAD))
    lines = text.split('\n'); cell['source'] = [l + '\n' for l in lines[:-1]] + [lines[-1]]
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return nb_path


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--digits', type=Path, default=ROOT/'results'/'digits')
    ap.add_argument('--fashion', type=Path, default=ROOT/'results'/'fashion-mnist-blocks')
    a = ap.parse_args()
    print('wrote', write(section(_load(a.digits, 'digits'), _load(a.fashion, 'fashion-mnist-blocks'))))
