"""The README's and the tutorial's pictures, regenerated from code: the loop diagram (drawn) and the default run's
figures (measured: read from a `csl run` results folder, or run here when it is missing).

    OMP_NUM_THREADS=1 .venv/bin/python tools/make_figures.py [--results results/digits] [--out nbs/images]

Writes nbs/images/csl_loop.png, curve.png, heatmap.png and routing.png (static PNGs: plotly figures through kaleido,
which renders offline with Debian's chromium; the diagram through matplotlib), and dashboard_static.png: the
dashboard's figures after the run, as its offline export (`csl.viz.save_html`) shows them in headless Chromium.
"""
import argparse, json, shutil, subprocess, tempfile
from pathlib import Path
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

BLUE, RED, GREEN, GREY = '#1f77b4', '#d62728', '#2ca02c', '#555555'


def _box(ax, x, y, w, h, text, color, size=10.5):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle='round,pad=0.02,rounding_size=0.05',
                                fc=color + '22', ec=color, lw=1.6))
    ax.text(x, y, text, ha='center', va='center', fontsize=size, color='#222222', wrap=True)


def _arrow(ax, a, b, text='', color=GREY, rad=0.0, off=(0, 0)):
    ax.annotate('', xy=b, xytext=a, arrowprops=dict(arrowstyle='-|>', color=color, lw=1.5, shrinkA=4, shrinkB=4,
                                                    connectionstyle=f'arc3,rad={rad}'))
    if text: ax.text((a[0] + b[0]) / 2 + off[0], (a[1] + b[1]) / 2 + off[1], text, ha='center', va='center', fontsize=9,
                     color=color, style='italic')


def loop_diagram(path: Path) -> Path:
    "The co-supervision loop: level 0, then per level E-step (gate), noise rejection, M-step; the hierarchy beside it."
    fig, ax = plt.subplots(figsize=(11.6, 5.6), dpi=110)
    ax.set_xlim(0, 11.6); ax.set_ylim(0, 5.6); ax.axis('off')
    _box(ax, 1.6, 4.6, 2.6, 0.8, 'generalist teacher\n(level 0: all classes)', GREY)
    _box(ax, 1.6, 2.9, 2.6, 1.0, 'the student\nlinear probe on frozen\nstrong features', BLUE)
    _box(ax, 5.0, 4.6, 3.3, 1.0, 'E-step: the gate routes each sample\nofficial: the scope of the student\'s top class\n'
         'default: student x few-shot student,\nover the sample and its neighbours', RED, 9)
    _box(ax, 5.0, 2.9, 3.0, 0.9, 'specialists of level l\nlabel the samples\nrouted to them', GREY, 10)
    _box(ax, 5.0, 1.2, 3.0, 0.9, 'noise rejection\nkeep labels in the student\'s top-3,\nlowest loss first', GREEN, 10)
    _box(ax, 1.6, 1.2, 2.6, 0.9, 'M-step: a fresh student\ntrains on the kept labels\n(epochs x 1/keep rate)', BLUE, 10)
    _arrow(ax, (1.6, 4.2), (1.6, 3.4), 'level 0: labels the pool', off=(0.95, 0))
    _arrow(ax, (2.9, 3.2), (3.5, 4.4), 'routes level l', off=(0.55, -0.15))
    _arrow(ax, (5.0, 4.15), (5.0, 3.35), 'teacher per sample', off=(0.95, 0))
    _arrow(ax, (5.0, 2.45), (5.0, 1.65), 'labels', off=(0.45, 0))
    _arrow(ax, (3.5, 1.2), (2.9, 1.2))
    _arrow(ax, (0.6, 1.65), (0.6, 2.4))
    ax.text(0.45, 2.02, 'l + 1', ha='right', va='center', fontsize=9, color=GREY, style='italic')
    # the hierarchy
    ax.text(9.1, 5.25, 'the hierarchy (digits: class blocks)', ha='center', fontsize=10.5, weight='bold', color='#222222')
    levels = [['0-9'], ['0-4', '5-9'], ['0-2', '3-4', '5-7', '8-9'], ['0-1', '2', '3', '4', '5-6', '7', '8', '9']]
    ys = [4.6, 3.6, 2.6, 1.6]
    for l, (lvl, y) in enumerate(zip(levels, ys)):
        n = len(lvl); xs = [7.3 + (i + 0.5) * 3.6 / n for i in range(n)]
        for i, (x, s) in enumerate(zip(xs, lvl)):
            ax.add_patch(FancyBboxPatch((x - 0.19, y - 0.2), 0.38, 0.4, boxstyle='round,pad=0.02', fc=GREY + '18', ec=GREY, lw=1))
            ax.text(x, y, s, ha='center', va='center', fontsize=8.5)
            if l:
                px = 7.3 + (i // 2 + 0.5) * 3.6 / (n // 2)
                ax.plot([px, x], [ys[l - 1] - 0.2, y + 0.2], color=GREY, lw=0.8)
        ax.text(11.55, y, f'L{l}: {n}', ha='right', va='center', fontsize=9, color=GREY)
    ax.text(9.1, 0.8, 'each level: one gate, one filter, one student;\nmore specialists, narrower scopes', ha='center',
            fontsize=9.5, color=GREY, style='italic')
    fig.tight_layout(); path.parent.mkdir(parents=True, exist_ok=True); fig.savefig(path); plt.close(fig)
    return path


def run_figures(results: Path, out: Path) -> list:
    "The default run's curve, heatmap and routing figures as PNGs (a quick `csl run` first when `results` is missing)."
    from csl.experiments import run_experiment, seed_file, HELDOUT_SEEDS
    from csl.cosupervise import History
    from csl.core import PAPER_PGR
    from csl.cosupervise import CURVE_METHODS
    from csl.viz import pgr_by_teachers, assignment_heatmap, routing_by_level
    if not (results/'results.json').exists(): run_experiment('digits', HELDOUT_SEEDS, results, 'cpu')
    res = json.loads((results/'results.json').read_text())
    hist = History.from_dict(json.loads(seed_file(results, res['seeds'][0]).read_text())['history'])
    figs = {'curve.png': pgr_by_teachers(res, reference=PAPER_PGR, methods=CURVE_METHODS, height=420),
            'heatmap.png': assignment_heatmap(hist, height=380), 'routing.png': routing_by_level(hist, height=380)}
    seeds = ', '.join(map(str, res['seeds']))
    figs['curve.png'].update_layout(title=f"PGR against number of teachers: {res['preset']}, seeds {seeds}, "
                                          f"epoch rule '{res['config']['csl']['probe']['select']}' (no gold label)")
    paths = []
    for name, f in figs.items():
        f.update_layout(sliders=[]) if name == 'heatmap.png' else None
        f.write_image(out/name, width=900, height=f.layout.height or 400, scale=1); paths.append(out/name)
    return paths


def dashboard_picture(results: Path, out: Path, height: int = 1900) -> Path:
    "The first seed's run as the dashboard's static export (`save_html`), screenshot by headless Chromium."
    from csl.experiments import seed_file
    from csl.cosupervise import History
    from csl.viz import save_html
    res = json.loads((results/'results.json').read_text())
    hist = History.from_dict(json.loads(seed_file(results, res['seeds'][0]).read_text())['history'])
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if exe is None: raise SystemExit("dashboard_static.png needs Chromium (the Debian package 'chromium')")
    with tempfile.TemporaryDirectory() as tmp:
        page = save_html(Path(tmp)/'dashboard.html', hist, res, title=f"csl run: {res['preset']}, seeds {res['seeds']}")
        flags = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--virtual-time-budget=10000',
                 '--disable-background-networking', '--no-first-run', f'--window-size=1000,{height}']
        png = out.resolve()/'dashboard_static.png'
        subprocess.run([exe, *flags, f'--user-data-dir={tmp}/profile', f'--screenshot={png}', page.resolve().as_uri()],
                       capture_output=True, timeout=120, check=True)
    return out/'dashboard_static.png'


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--results', type=Path, default=Path('results/digits'))
    ap.add_argument('--out', type=Path, default=Path('nbs/images'))
    a = ap.parse_args()
    print(loop_diagram(a.out/'csl_loop.png'))
    for p in run_figures(a.results, a.out): print(p)
    print(dashboard_picture(a.results, a.out))
