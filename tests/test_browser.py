"""The static HTML export renders offline in a real browser (headless Chromium): not a blank page, figures drawn.

Needs the Debian package `chromium` (`.ci/run` installs it). Outside CI the test is skipped when Chromium is
missing; in CI (`CI` set) a missing Chromium fails the test. The screenshot is kept at `results/screenshot.png`
(gitignored) for a human to look at.
"""
import os, re, shutil, subprocess, tempfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT/'results'
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
                  '--disable-sync', '--no-first-run', '--hide-scrollbars', '--virtual-time-budget=10000', '--window-size=1200,800']


def _chromium() -> str:
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if exe is None:
        if os.environ.get('CI'): pytest.fail("chromium is not on PATH in CI: .ci/run must install the Debian package 'chromium'")
        pytest.skip("chromium is not on PATH (install the Debian package 'chromium' to run the browser test)")
    return exe


@pytest.fixture(scope='module')
def page() -> Path:
    "One quick synthetic run, exported with `save_html`."
    from csl.cosupervise import co_supervise, synthetic_problem, CSLConfig
    from csl.student import ProbeConfig
    from csl.viz import Dashboard
    dash = Dashboard()
    co_supervise(synthetic_problem(), CSLConfig(probe=ProbeConfig(epochs=5)), cbs=[dash])
    return dash.save_html(OUT/'dashboard.html', title='csl browser test')


def _screenshot(exe: str, html: Path, png: Path) -> Path:
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', f'--screenshot={png}', html.resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.exists(), f"chromium wrote no screenshot (rc {r.returncode}):\n{r.stderr[-2000:]}"
    return png


def test_html_is_self_contained(page):
    text = page.read_text()
    assert text.count('plotly.js v') == 1, 'plotly.js must be inlined exactly once'
    assert not re.search(r'<script[^>]+src=', text), 'a script is loaded from outside the file (blank offline)'
    assert text.count('Plotly.newPlot(') == 5, 'expected five figures'
    assert page.stat().st_size < 5e6, page.stat().st_size


def test_renders_in_chromium(page):
    np = pytest.importorskip('numpy'); Image = pytest.importorskip('PIL.Image')
    png = _screenshot(_chromium(), page, OUT/'screenshot.png')
    img = np.asarray(Image.open(png).convert('RGB')).astype(float)  # (H, W, 3)
    assert img.shape[:2] == (800, 1200), img.shape
    assert img.std() > 10, f'screenshot looks blank (pixel std {img.std():.1f})'
    non_white = (img.min(-1) < 240).mean()
    assert non_white > 0.02, f'too little drawn: {non_white:.1%} non-white pixels'
    # plotly's coloured traces and markers: saturated pixels; a page whose figures failed shows only black/grey text
    saturated = (img.max(-1) - img.min(-1) > 80).sum()
    assert saturated > 500, f'no figure content rendered ({saturated} saturated pixels)'
    colours = len(np.unique(img[::2, ::2].astype(int) @ np.array([65536, 256, 1])))
    assert colours > 30, f'only {colours} distinct colours'
