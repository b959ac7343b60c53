"""Each story notebook (01-08) runs on a fresh Colab kernel: before its first `csl` import it has an install cell that
pip-installs the package when `csl` is not importable and does nothing where it is (nbdev_test, a local venv). The
cell is hidden from the docs and never exported."""
import importlib.util, json, re
from pathlib import Path
import pytest
from test_style import STORY

ROOT = Path(__file__).resolve().parents[1]
IMPORTS_CSL = re.compile(r'^\s*(from csl\b|import csl\b)', re.M)


def _install_cell(name: str) -> str:
    "The source of the notebook's install cell: a code cell before the first one that imports csl."
    cells = [''.join(c['source']) for c in json.loads((ROOT/'nbs'/f'{name}.ipynb').read_text())['cells']
             if c['cell_type'] == 'code']
    first = next(i for i, s in enumerate(cells) if IMPORTS_CSL.search(s))
    found = [s for s in cells[:first] if 'pip' in s and 'csl' in s]
    assert found, f'{name}: no install cell before the first csl import (cell {first})'
    return found[0]


class _Shell:
    "Stands in for IPython's `get_ipython()`: records the magics a cell runs."
    def __init__(self): self.magics = []
    def run_line_magic(self, name, line): self.magics.append((name, line))


def _run(src: str) -> list:
    shell = _Shell()
    exec(src, {'get_ipython': lambda: shell})  # `#|` directives are comments to Python
    return shell.magics


@pytest.mark.parametrize('name', STORY)
def test_story_notebook_installs_csl_when_missing(name, monkeypatch):
    src = _install_cell(name)
    lines = src.splitlines()
    assert lines[0].strip() == '#| hide', f'{name}: the install cell should be hidden from the docs'
    assert not any(re.match(r'#\|\s*export', l) for l in lines), f'{name}: the install cell must not be exported'
    assert _run(src) == [], f'{name}: the install cell ran pip although csl is importable'
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda n, *a: None if n == 'csl' else find_spec(n, *a))
    magics = _run(src)  # a fresh Colab kernel: csl is not importable
    assert len(magics) == 1 and magics[0][0] == 'pip' and 'install' in magics[0][1] and 'csl' in magics[0][1], magics
