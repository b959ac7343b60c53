"""House rules a reader notices: short exported lines, small notebooks without saved widget state, figures committed
in every notebook of the method's story, and notebooks in the story's order."""
import json
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
STORY = ['01_method', '02_hierarchy', '03_teachers', '04_assign', '05_denoise', '06_student', '07_cosupervise', '08_viz']
NOTEBOOKS = [ROOT/'index.ipynb', *sorted((ROOT/'nbs').glob('*.ipynb')), *sorted((ROOT/'nbs'/'tutorials').glob('*.ipynb'))]


def _generated(line: str) -> bool:
    "Lines nbdev writes itself: the `__all__` list (wrapped by nbdev) and the cell markers."
    return line.startswith(("__all__", "           '", '# %%'))


def test_exported_lines_fit_in_120_characters():
    long = [f'{p.name}:{i}: {len(l)}' for p in sorted((ROOT/'csl').glob('*.py')) if p.name != '_modidx.py'
            for i, l in enumerate(p.read_text().splitlines(), 1) if i > 1 and len(l) > 120 and not _generated(l)]
    assert not long, f'{len(long)} exported lines over 120 characters: {long[:20]}'


def test_docstrings_are_whole():
    "A docstring split over two lines must be one string: a second literal is a separate statement, lost to help()."
    import ast
    text = lambda s: isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)
    cut = [f"{p.name}:{getattr(n, 'lineno', 1)} {getattr(n, 'name', 'module')}" for p in sorted((ROOT/'csl').glob('*.py'))
           for n in ast.walk(ast.parse(p.read_text()))
           if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and len(n.body) > 1
           and text(n.body[0]) and text(n.body[1])]
    assert not cut, f'{len(cut)} docstrings cut in half (the second part is a separate statement): {cut}'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_names_its_kernel(path):
    "JupyterLab opens the notebook on the python3 kernel instead of asking 'Select Kernel' (nbdev_clean keeps it)."
    assert json.loads(path.read_text()).get('metadata', {}).get('kernelspec', {}).get('name') == 'python3', path.name


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_small_and_has_no_widget_state(path):
    assert path.stat().st_size < 1_000_000, f'{path.name}: {path.stat().st_size} bytes'
    nb = json.loads(path.read_text())
    assert 'widgets' not in nb.get('metadata', {}), f'{path.name} carries saved widget state'
    views = [o for c in nb['cells'] for o in c.get('outputs', []) if 'application/vnd.jupyter.widget-view+json' in o.get('data', {})]
    assert not views, f'{path.name}: {len(views)} widget views committed'


@pytest.mark.parametrize('name', STORY)
def test_story_notebooks_show_a_figure(name):
    nb = json.loads((ROOT/'nbs'/f'{name}.ipynb').read_text())
    pngs = [o for c in nb['cells'] for o in c.get('outputs', []) if 'image/png' in o.get('data', {})]
    assert pngs, f'{name}: no figure in the committed outputs (run tools/run_notebooks.py)'


def test_notebooks_are_numbered_in_story_order():
    names = [p.stem for p in sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))]
    assert names[:len(STORY)] == STORY, names


def _hidden(cell) -> bool:
    return any(l.strip() == '#| hide' for l in ''.join(cell['source']).splitlines())


@pytest.mark.parametrize('name', STORY)
def test_story_cells_show_output(name):
    "Most code cells a reader sees (all but `#| hide`) show an output: each step is run and shown on the real problem."
    nb = json.loads((ROOT/'nbs'/f'{name}.ipynb').read_text())
    cells = [c for c in nb['cells'] if c['cell_type'] == 'code' and not _hidden(c)]
    shown = [c for c in cells if c.get('outputs')]
    assert 2 * len(shown) > len(cells), f'{name}: only {len(shown)} of {len(cells)} visible code cells show an output'


METHOD = ['assign', 'denoise', 'student', 'teachers', 'cosupervise', 'viz']


@pytest.mark.parametrize('module', METHOD)
def test_method_code_has_one_statement_per_line(module):
    "No `a; b` in the method's modules: a reader sees one step per line (a guard `if x: return y` is one step)."
    import ast
    tree = ast.parse((ROOT/'csl'/f'{module}.py').read_text())
    bodies = [b for n in ast.walk(tree) for f in ('body', 'orelse', 'finalbody')
              if isinstance(b := getattr(n, f, None), list)]
    joined = sorted({s.lineno for body in bodies for a, s in zip(body, body[1:]) if a.end_lineno == s.lineno})
    assert not joined, f'csl/{module}.py: {len(joined)} lines hold two statements: {joined[:30]}'
