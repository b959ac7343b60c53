"""README.md is generated from index.ipynb (tools/build_readme.py) and must not drift from it."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_matches_index(tmp_path):
    spec = importlib.util.spec_from_file_location('build_readme', ROOT/'tools'/'build_readme.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    out = mod.build(str(ROOT/'index.ipynb'), str(tmp_path/'README.md'))
    assert Path(out).read_text() == (ROOT/'README.md').read_text(), 'README.md is stale: run `python tools/build_readme.py`'


def test_readme_has_the_two_setup_commands():
    text = (ROOT/'README.md').read_text()
    assert 'pip install -e . && .venv/bin/csl run' in text and 'bash .ci/run' in text


def test_readme_tables_have_one_row_per_method_and_level():
    "No row repeats another (`csl` beside `csl@3`), and no test line ('updates per round') in the README."
    import re
    text = (ROOT/'README.md').read_text()
    assert 'updates per round' not in text, 'a test line from index.ipynb leaked into the README (hide that cell)'
    for table in re.findall(r'(?:^\|.*\|\n)+', text, re.M):
        rows = [l.split('|')[1:-1] for l in table.splitlines()[2:]]
        if not rows or 'method' not in table.splitlines()[0]: continue
        bodies = [tuple(c.strip() for c in r[1:]) for r in rows]  # everything but the method's name
        assert len(set(bodies)) == len(bodies), f'two rows say the same thing:\n{table}'


def test_readme_images_exist():
    import re
    text = (ROOT/'README.md').read_text()
    local = [p for p in re.findall(r'!\[[^\]]*\]\(([^)\s]+)\)', text) if '://' not in p]
    assert 'nbs/images/dashboard_static.png' in local or 'nbs/images/dashboard.png' in local, 'no picture of the dashboard'
    assert all((ROOT/p).exists() for p in local), [p for p in local if not (ROOT/p).exists()]
