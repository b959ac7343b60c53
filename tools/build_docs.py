"""Docs a user can open offline: every notebook (with its committed outputs, figures included) as an HTML page, and an
index page that lists them in reading order. The nbdev docs site needs Quarto (`nbdev_docs`, in the GitHub workflow
`.github/workflows/deploy.yaml`); Quarto cannot be installed offline, `jupyter nbconvert` can.

    .venv/bin/python tools/build_docs.py [--out _docs_html]      # then open _docs_html/index.html

The output folder is git-ignored. Notebooks are not executed here: the pages show the outputs committed with them.
"""
import argparse, html, json, re, shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _title(nb: dict, path: Path) -> tuple:
    "The notebook's `# Title` and its `> summary` line (nbdev's convention), else the file name."
    for c in nb['cells']:
        if c['cell_type'] != 'markdown': continue
        text = ''.join(c['source'])
        m = re.search(r'^# (.+)$', text, re.M)
        if m:
            s = re.search(r'^> (.+)$', text, re.M)
            return m.group(1).strip(), s.group(1).strip() if s else ''
    return path.stem, ''


def notebooks() -> list:
    "index.ipynb, then nbs/*.ipynb in their numbered order, then the tutorials (scratch notebooks `_*` left out)."
    nbs = sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
    tut = sorted(p for p in (ROOT/'nbs'/'tutorials').glob('*.ipynb') if not p.name.startswith('_'))
    return [ROOT/'index.ipynb', *nbs, *tut]


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


def build(out: Path = ROOT/'_docs_html') -> Path:
    "Convert every notebook to `out/<name>.html` (images inlined) and write `out/index.html`; returns the index page."
    import nbformat
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name='lab')
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    items = []
    for p in notebooks():
        nb = json.loads(p.read_text())
        body, _ = exporter.from_notebook_node(_for_readers(nbformat.read(p, as_version=4)))
        name = 'readme' if p.name == 'index.ipynb' else p.stem
        (out/f'{name}.html').write_text(body, encoding='utf-8')
        title, summary = _title(nb, p)
        items.append(f'<li><a href="{name}.html">{html.escape(title)}</a> <span>{html.escape(summary)}</span></li>')
    images = ROOT/'nbs'/'images'
    if images.exists():  # notebooks in nbs/ link images/..., index.ipynb (the readme page) links nbs/images/...
        shutil.copytree(images, out/'images'); shutil.copytree(images, out/'nbs'/'images')
    page = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>csl docs</title><style>body{font-family:sans-serif;'
            'margin:2em;max-width:60em;color:#222} li{margin:.4em 0} span{color:#666}</style></head><body>'
            '<h1>csl: Co-Supervised Learning</h1><p>The notebooks in reading order (offline build).</p>'
            f'<img src="images/csl_loop.png" alt="the co-supervision loop" style="max-width:100%"><ol>{"".join(items)}</ol>'
            '</body></html>')
    (out/'index.html').write_text(page, encoding='utf-8')
    return out/'index.html'


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', type=Path, default=ROOT/'_docs_html')
    print(build(ap.parse_args().out))
