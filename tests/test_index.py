"""index.ipynb runs top to bottom in a real Jupyter kernel, and its live dashboard works there.

`nbdev_test` runs notebooks without a kernel (no widget comms), so it cannot see whether the widgets come
up. This test executes index.ipynb with nbclient and a real IPython kernel and checks:

- some cell output is a widget view (`application/vnd.jupyter.widget-view+json`): the `Dashboard` displayed;
- the contract line that index.ipynb prints after its run (in a hidden cell, so the README leaves it out), exactly
      print(f'updates per round: {dash.n_updates}/{len(hist.records)}')
  shows one figure update per round (each record of the `History` is one round the loop announced).

The executed notebook is not saved: widget state must never be committed.
"""
import os, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
INDEX = ROOT/'index.ipynb'
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'
CONTRACT = re.compile(r'updates per round: (\d+)/(\d+)')


def execute(path: Path, timeout: int = 1800):
    "Run a notebook in a fresh python3 kernel (this interpreter), in the repository root; return the executed notebook."
    nbformat = pytest.importorskip('nbformat'); nbclient = pytest.importorskip('nbclient')
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name='python3', timeout=timeout, resources={'metadata': {'path': str(ROOT)}})
    client.execute()
    return nb


def outputs(nb) -> list:
    return [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])]


def check_dashboard(nb):
    "The checks above, on an executed notebook."
    outs = outputs(nb)
    assert any(WIDGET_MIME in o.get('data', {}) for o in outs), 'no widget view in the outputs: the Dashboard was not displayed'
    text = '\n'.join(o.get('text', '') if o.get('output_type') == 'stream' else o.get('data', {}).get('text/plain', '') for o in outs)
    found = CONTRACT.findall(text)
    assert found, "no line 'updates per round: N/N' in the outputs; index.ipynb must print(f'updates per round: {dash.n_updates}/{len(hist.records)}')"
    updates, rounds = map(int, found[-1])
    assert rounds > 0 and updates == rounds, f'dashboard made {updates} figure updates for {rounds} rounds; expected exactly one per round'


def test_index_runs_with_live_dashboard():
    if not INDEX.exists():
        if os.environ.get('CI'): pytest.fail(f'{INDEX} is missing')
        pytest.skip(f'{INDEX} not written yet')
    check_dashboard(execute(INDEX))
