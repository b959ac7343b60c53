"""Docs a user can open offline: every notebook (with its committed outputs, figures included) as an HTML page, and an
index page that lists them in reading order. The nbdev docs site needs Quarto (`nbdev_docs`, in the GitHub workflow
`.github/workflows/deploy.yaml`); Quarto cannot be installed offline, `jupyter nbconvert` can.

    .venv/bin/python tools/build_docs.py [--out _docs_html] [--mathjax DIR]   # then open _docs_html/index.html

Offline means nothing is loaded from the network: formulas are typeset by a local MathJax 2 (Debian's `libjs-mathjax`,
`apt-get install libjs-mathjax`; its files are copied into `<out>/mathjax`), no require.js or mermaid from a CDN, and
links between notebooks (`nbs/04_assign.ipynb`, `../index.ipynb`) are rewritten to the pages they became. The output
folder is git-ignored. Notebooks are not executed here: the pages show the outputs committed with them.
"""
import argparse, html, json, os, re, shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATHJAX_DIRS = [Path('/usr/share/javascript/mathjax')]  # Debian's libjs-mathjax: MathJax 2.7, as nbconvert configures
MATHJAX_CONFIG = 'TeX-AMS_CHTML-full,Safe'  # nbconvert's own choice: TeX input, CommonHTML output, safe mode
# nbconvert's lab template, less what it would fetch from a CDN: require.js (only widgets use it; none are saved) and
# mermaid (no notebook draws one); plus a bar of links to the index and the pages before and after.
TEMPLATE = '''{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block body_header -%}{{ super() }}{{ resources.csl_nav }}{%- endblock body_header -%}
{%- block body_footer -%}{{ resources.csl_nav }}{{ super() }}{%- endblock body_footer -%}
'''


def _title(nb: dict, path: Path) -> tuple:
    "The notebook's `# Title` and its `> summary` (nbdev's convention; the summary may run over several lines)."
    for c in nb['cells']:
        if c['cell_type'] != 'markdown': continue
        text = ''.join(c['source'])
        m = re.search(r'^# (.+)$', text, re.M)
        if m:
            s = re.search(r'^> .+(?:\n(?!\s*$)(?!#).+)*', text, re.M)
            summary = ' '.join(l.lstrip('> ').strip() for l in s.group(0).splitlines()) if s else ''
            return m.group(1).strip(), summary
    return path.stem, ''


def notebooks() -> list:
    "index.ipynb, then nbs/*.ipynb in their numbered order, then the tutorials (scratch notebooks `_*` left out)."
    nbs = sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
    tut = sorted(p for p in (ROOT/'nbs'/'tutorials').glob('*.ipynb') if not p.name.startswith('_'))
    return [ROOT/'index.ipynb', *nbs, *tut]


def page_name(p: Path) -> str:
    "The page a notebook becomes: `readme.html` for index.ipynb (the README's source), else `<stem>.html`."
    return 'readme.html' if p.resolve() == (ROOT/'index.ipynb').resolve() else f'{p.stem}.html'


def _for_readers(nb):
    "As nbdev's docs show a notebook: hidden cells and `#| default_exp` cells left out, `#|` directive lines dropped."
    keep = []
    for c in nb.cells:
        lines = c.source.splitlines()
        if c.cell_type == 'code' and lines and re.match(r'#\|\s*(hide|default_exp)', lines[0]): continue
        if c.cell_type == 'code': c.source = '\n'.join(l for l in lines if not re.match(r'#\|', l))
        keep.append(c)
    nb.cells = keep
    return nb


def _relink(body: str, src: Path, pages: dict) -> str:
    "Point relative links at what the site holds: a notebook at its page, a file of nbs/images at images/."
    def fix(m):
        attr, url = m.group(1), m.group(2)
        if re.match(r'[a-z][a-z0-9+.-]*:|#|/', url, re.I): return m.group(0)  # absolute, data:, or in-page
        path, frag = (url.split('#', 1) + [''])[:2]
        target = Path(os.path.normpath(src.parent/html.unescape(path)))
        if target in pages: new = pages[target]
        elif target.parent == ROOT/'nbs'/'images': new = f'images/{target.name}'
        else: return m.group(0)  # left for the link test to report
        return f'{attr}="{new}{"#" + frag if frag else ""}"'
    return re.sub(r'\b(href|src)="([^"]*)"', fix, body)


def _nav(i: int, items: list) -> str:
    "Links to the index and to the pages before and after page `i` in reading order."
    links = ['<a href="index.html">all notebooks</a>']
    if i > 0: links.append(f'<a href="{items[i-1][0]}">&larr; {html.escape(items[i-1][1])}</a>')
    if i + 1 < len(items): links.append(f'<a href="{items[i+1][0]}">{html.escape(items[i+1][1])} &rarr;</a>')
    return f'<nav class="csl-nav" style="margin:1em 0;display:flex;gap:2em">{"".join(links)}</nav>'


def find_mathjax(given=None) -> Path:
    "A local MathJax 2 folder (the one holding MathJax.js), or a clear error saying how to install one."
    for d in ([Path(given)] if given else MATHJAX_DIRS):
        if (d/'MathJax.js').exists() and (d/'config'/f'{MATHJAX_CONFIG.split(",")[0]}.js').exists(): return d
    raise SystemExit(f'no local MathJax 2 in {given or [str(d) for d in MATHJAX_DIRS]}: install the Debian package '
                     "libjs-mathjax (apt-get install libjs-mathjax) or pass --mathjax DIR (a folder with MathJax.js)")


def copy_mathjax(src: Path, dst: Path) -> Path:
    "Copy the parts of MathJax that TeX input and CommonHTML output need (about 2 MB of its 54), symlinks followed."
    keep = ['MathJax.js', f'config/{MATHJAX_CONFIG.split(",")[0]}.js', 'config/Safe.js', 'config/local', 'extensions',
            'jax/input/TeX', 'jax/output/CommonHTML', 'jax/element', 'fonts/HTML-CSS/TeX/woff', 'localization/en']
    for k in keep:
        s, d = src/k, dst/k
        if not s.exists(): continue
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(s, d) if s.is_dir() else shutil.copyfile(s, d)
    return dst


def build(out: Path = ROOT/'_docs_html', mathjax=None) -> Path:
    "Convert every notebook to `out/<name>.html` (images inlined) and write `out/index.html`; returns the index page."
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    mj = find_mathjax(mathjax)
    exporter = HTMLExporter(extra_loaders=[DictLoader({'csl.html.j2': TEMPLATE})], template_file='csl.html.j2',
                            mathjax_url=f'mathjax/MathJax.js?config={MATHJAX_CONFIG}')
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    copy_mathjax(mj, out/'mathjax')
    paths = notebooks()
    pages = {p.resolve(): page_name(p) for p in paths}
    titles = [_title(json.loads(p.read_text()), p) for p in paths]
    items = [(pages[p.resolve()], t) for p, (t, _) in zip(paths, titles)]
    for i, p in enumerate(paths):
        nb = _for_readers(nbformat.read(p, as_version=4))
        body, _ = exporter.from_notebook_node(nb, resources={'csl_nav': _nav(i, items)})
        (out/items[i][0]).write_text(_relink(body, p.resolve(), pages), encoding='utf-8')
    if (ROOT/'nbs'/'images').exists(): shutil.copytree(ROOT/'nbs'/'images', out/'images')
    lis = ''.join(f'<li><a href="{name}">{html.escape(t)}</a><div class="summary">{markdown2html_mistune(s)}</div></li>'
                  for (name, _), (t, s) in zip(items, titles))
    page = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>csl docs</title><style>'
            'body{font-family:sans-serif;margin:2em;max-width:60em;color:#222} li{margin:.6em 0} .summary{color:#555}'
            ' .summary p{margin:.2em 0}</style></head><body><h1>csl: Co-Supervised Learning</h1>'
            '<p>The notebooks in reading order (offline build).</p>'
            '<img src="images/csl_loop.png" alt="the co-supervision loop" style="max-width:100%">'
            f'<ol>{lis}</ol></body></html>')
    (out/'index.html').write_text(page, encoding='utf-8')
    return out/'index.html'


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', type=Path, default=ROOT/'_docs_html')
    ap.add_argument('--mathjax', type=Path, default=None, help='a MathJax 2 folder (default: Debian libjs-mathjax)')
    a = ap.parse_args()
    print(build(a.out, a.mathjax))
