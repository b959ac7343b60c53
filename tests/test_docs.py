"""The offline docs build (tools/build_docs.py: the committed notebooks through `jupyter nbconvert`) produces pages that
open in a real browser and are not blank, with the notebooks' committed figures in them."""
import subprocess, sys
from pathlib import Path
import pytest
from test_browser import _chromium, _screenshot

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
from build_docs import notebooks  # the tool's own list, in reading order


@pytest.fixture(scope='module')
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('docs')/'site'
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'build_docs.py'), '--out', str(out)], capture_output=True, text=True,
                       timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_every_notebook_has_a_page(site):
    names = {'readme' if p.name == 'index.ipynb' else p.stem for p in notebooks()}
    assert names <= {p.stem for p in site.glob('*.html')}, names - {p.stem for p in site.glob('*.html')}
    index = (site/'index.html').read_text()
    assert all(f'href="{n}.html"' in index for n in names)
    assert '#| hide' not in (site/'readme.html').read_text()


def test_a_page_renders_in_chromium(site):
    np = pytest.importorskip('numpy'); Image = pytest.importorskip('PIL.Image')
    png = _screenshot(_chromium(), site/'index.html', site/'index.png')
    img = np.asarray(Image.open(png).convert('RGB')).astype(float)  # (H, W, 3)
    assert img.std() > 10, f'blank page (pixel std {img.std():.1f})'
    assert (img.max(-1) - img.min(-1) > 80).sum() > 500, 'no coloured content: the loop diagram did not render'

