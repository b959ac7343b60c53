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
