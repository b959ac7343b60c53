"""The offline docs build (tools/build_docs.py: the committed notebooks through `jupyter nbconvert`) produces pages that
open in a real browser and are not blank, with the notebooks' committed figures in them; every page, opened in headless
Chromium, has no dead local link, loads no script or style from the network (a Colab badge image may), and shows no
raw TeX (the local MathJax typeset it).

Needs the Debian packages `chromium` and `libjs-mathjax` (`.ci/run` installs both). Outside CI the browser tests are
skipped when either is missing; in CI (`CI` set) a missing one fails. The gate notebook's rendered formulas are kept
as a screenshot at `results/docs_04_assign.png` (gitignored) for a human to look at.
"""
import os, re, subprocess, sys, tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote
import pytest
from test_browser import CHROMIUM_FLAGS, _chromium, _screenshot

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT/'results'
sys.path.insert(0, str(ROOT/'tools'))
from build_docs import MATHJAX_DIRS, find_mathjax, notebooks, page_name  # the tool's own list, in reading order

# TeX that MathJax would have replaced: $...$ on one line, \(...\), \[...\], or a control word such as \frac
RAW_TEX = re.compile(r'\$[^$\n]+\$|\\\(|\\\[|\\[a-zA-Z]{2,}')


@pytest.fixture(scope='module')
def site(tmp_path_factory) -> Path:
    try: find_mathjax()
    except SystemExit as e:
        if os.environ.get('CI'): pytest.fail(f'{e} (.ci/run must install the Debian package libjs-mathjax)')
        pytest.skip(f'no local MathJax in {MATHJAX_DIRS}: install the Debian package libjs-mathjax')
    out = tmp_path_factory.mktemp('docs')/'site'
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'build_docs.py'), '--out', str(out)], capture_output=True,
                       text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_every_notebook_has_a_page(site):
    names = {page_name(p) for p in notebooks()}
    assert names <= {p.name for p in site.glob('*.html')}, names - {p.name for p in site.glob('*.html')}
    index = (site/'index.html').read_text()
    assert all(f'href="{n}"' in index for n in names)
    assert '#| hide' not in (site/'readme.html').read_text()
    assert '[arXiv' not in index and '`' not in index, 'the index shows raw markdown in a summary'


def test_a_page_renders_in_chromium(site):
    np = pytest.importorskip('numpy'); Image = pytest.importorskip('PIL.Image')
    png = _screenshot(_chromium(), site/'index.html', site/'index.png')
    img = np.asarray(Image.open(png).convert('RGB')).astype(float)  # (H, W, 3)
    assert img.std() > 10, f'blank page (pixel std {img.std():.1f})'
    assert (img.max(-1) - img.min(-1) > 80).sum() > 500, 'no coloured content: the loop diagram did not render'


class _Page(HTMLParser):
    "What a rendered page holds: ids, links and resources, visible text (outside code), MathJax's math and errors."
    SKIP = {'script', 'style', 'pre', 'code', 'textarea', 'noscript'}  # tags whose text MathJax leaves alone too

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.text, self.tex, self.rendered, self.errors, self._skip = set(), [], [], 0, 0, 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if 'id' in a: self.ids.add(a['id'])
        if 'name' in a and tag == 'a': self.ids.add(a['name'])
        for k in ('href', 'src'):
            if a.get(k) and tag in ('a', 'img', 'script', 'link', 'iframe', 'source'): self.links.append((tag, a[k]))
        cls = (a.get('class') or '').split()
        if tag == 'script' and (a.get('type') or '').startswith('math/tex'): self.tex += 1
        if 'MathJax_CHTML' in cls or tag == 'mjx-container': self.rendered += 1
        if 'MathJax_Error' in cls or 'merror' in cls or 'mjx-merror' in cls: self.errors += 1
        if tag in self.SKIP: self._skip.append(tag)

    def handle_endtag(self, tag):
        if self._skip and self._skip[-1] == tag: self._skip.pop()

    def handle_data(self, data):
        if not self._skip: self.text.append(data)


def _dom(exe: str, page: Path) -> str:
    "The page's DOM after its scripts ran (MathJax typesetting included), as Chromium serializes it."
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', '--dump-dom', page.resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '</html>' in r.stdout, \
        f'chromium could not open {page.name} (rc {r.returncode}): {r.stderr[-1500:]}'
    return r.stdout


def _parse(text: str) -> _Page:
    p = _Page(); p.feed(text); p.close()
    return p


def test_every_page_links_resolve_and_formulas_render(site):
    exe = _chromium()
    pages = sorted(site.glob('*.html'))
    static_ids = {p.name: _parse(p.read_text(encoding='utf-8')).ids for p in pages}
    problems, typeset = [], 0
    for page in pages:
        dom = _parse(_dom(exe, page))
        for tag, url in dom.links:
            if re.match(r'(https?:)?//', url, re.I):
                if tag in ('script', 'link', 'iframe'): problems.append(f'{page.name}: <{tag}> fetches {url}')
                continue
            if re.match(r'[a-z][a-z0-9+.-]*:', url, re.I) and not url.startswith('file:'): continue  # data:, mailto:
            path, _, frag = url.partition('#')
            path = unquote(path.split('?')[0].removeprefix(page.parent.resolve().as_uri() + '/'))
            target = site/path if path else page
            if not target.exists(): problems.append(f'{page.name}: dead link <{tag}> {url}')
            elif frag and unquote(frag) not in (dom.ids if target == page else static_ids.get(target.name, {frag})):
                problems.append(f'{page.name}: <{tag}> {url}: no #{frag} in {target.name}')
        raw = sorted({m.group(0) for m in RAW_TEX.finditer(''.join(dom.text))})
        if raw: problems.append(f'{page.name}: raw TeX in the rendered page: {raw[:5]}')
        if dom.rendered < dom.tex: problems.append(f'{page.name}: MathJax typeset {dom.rendered} of {dom.tex} formulas')
        if dom.errors: problems.append(f'{page.name}: {dom.errors} MathJax errors')
        typeset += dom.rendered
    assert not problems, '\n'.join(problems)
    assert typeset > 0, 'no formula was typeset on any page: is MathJax loading?'


def test_gate_page_shows_typeset_formulas(site):
    "04_assign's formulas, rendered: the DOM holds MathJax's output, and a screenshot of that part of the page is kept."
    np = pytest.importorskip('numpy'); Image = pytest.importorskip('PIL.Image')
    exe, page = _chromium(), site/'04_assign.html'
    dom = _parse(_dom(exe, page))
    assert dom.tex >= 3 and dom.rendered >= dom.tex and not dom.errors, (dom.tex, dom.rendered, dom.errors)
    # where the formulas sit: a copy of the page that writes their offsets into the DOM once MathJax is done
    probe = page.with_name('_probe_04_assign.html')
    js = ('<script>MathJax.Hub.Queue(function(){var ys=[].map.call(document.querySelectorAll(".MathJax_CHTML"),'
          'function(e){return Math.round(e.getBoundingClientRect().top+window.scrollY)});'
          'document.body.setAttribute("data-math-y",ys.join(" "));});</script>')
    probe.write_text(page.read_text(encoding='utf-8').replace('</body>', js + '</body>'), encoding='utf-8')
    ys = [int(v) for v in re.search(r'data-math-y="([\d ]+)"', _dom(exe, probe)).group(1).split()]
    bands = []  # (top, bottom) in page pixels: formulas closer than 400 px share a band
    for y in sorted(ys):
        if bands and y - bands[-1][1] < 400: bands[-1][1] = y
        else: bands.append([y, y])
    with tempfile.TemporaryDirectory() as profile:
        tall = site/'04_assign_tall.png'
        flags = [f for f in CHROMIUM_FLAGS if not f.startswith('--window-size')]
        flags.append(f'--window-size=1200,{max(ys) + 400}')
        subprocess.run([exe, *flags, f'--user-data-dir={profile}', f'--screenshot={tall}', probe.resolve().as_uri()],
                       capture_output=True, timeout=120)
    full = Image.open(tall).convert('RGB')
    crops = [full.crop((0, max(0, t - 120), 1200, b + 160)) for t, b in bands]
    img = Image.new('RGB', (1200, sum(c.height for c in crops) + 8 * (len(crops) - 1)), 'lightgrey')
    for i, c in enumerate(crops): img.paste(c, (0, sum(d.height + 8 for d in crops[:i])))
    OUT.mkdir(exist_ok=True)
    img.save(OUT/'docs_04_assign.png')
    a = np.asarray(img).astype(float)  # (H, W, 3)
    assert a.std() > 10 and (a.min(-1) < 128).mean() > 0.01, 'the screenshot of the formulas looks blank'
