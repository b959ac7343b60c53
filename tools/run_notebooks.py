"""Execute the notebooks in place so their committed outputs (the documentation, nbdev's convention) are current, with
figures as static PNGs and no saved widget state.

    OMP_NUM_THREADS=1 .venv/bin/python tools/run_notebooks.py [NOTEBOOK ...]     # default: index.ipynb and nbs/*.ipynb

Each notebook runs in a fresh Jupyter kernel in its own folder, with `PLOTLY_RENDERER=png` so a plotly figure that ends
a cell is stored as a PNG (kaleido, offline through Debian's chromium) instead of a JSON spec that GitHub cannot
draw; interactive users keep plotly's default renderer. Widget views (the live dashboard) and widget state are
dropped: saved state carries all of plotly.js. The Colab tutorials (nbs/tutorials, GPU and internet) are not run.
Fails if a notebook ends up over 1 MB.
"""
import os, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDGET = 'application/vnd.jupyter.widget-view+json'
MAX_BYTES = 1_000_000


def _drop_widgets(nb):
    "Remove widget views from outputs and the notebook's saved widget state."
    nb.metadata.pop('widgets', None)
    for c in nb.cells:
        if c.cell_type != 'code': continue
        c.outputs = [o for o in c.get('outputs', []) if WIDGET not in o.get('data', {})]
    return nb


def run(path: Path, timeout: int = 1800) -> int:
    "Execute one notebook in place; returns its size in bytes."
    import nbformat, nbclient
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name='python3', timeout=timeout, resources={'metadata': {'path': str(path.parent)}})
    client.execute()
    nbformat.write(_drop_widgets(nb), path)
    return path.stat().st_size


if __name__ == '__main__':
    os.environ['PLOTLY_RENDERER'] = 'png'  # inherited by the kernels
    paths = [Path(p).resolve() for p in sys.argv[1:]] or [ROOT/'index.ipynb', *sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))]
    big = []
    for p in paths:
        t0 = time.perf_counter(); size = run(p)
        print(f'{p.relative_to(ROOT)}: {size / 1e3:.0f} kB, {time.perf_counter() - t0:.0f} s', flush=True)
        if size > MAX_BYTES: big.append(p.name)
    if big: sys.exit(f'over 1 MB: {big}')
