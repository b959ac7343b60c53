"""Build README.md from index.ipynb (nbdev_readme needs Quarto, which cannot be installed here).

Markdown cells are copied, code cells become ```python blocks, and small text/markdown outputs follow them.
Cells marked `#| hide` (and their outputs) are left out, as nbdev's own renderer would.
"""
import json, sys
from pathlib import Path

def _src(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']

def _output(out):
    data = out.get('data', {})
    if 'text/markdown' in data: return ''.join(data['text/markdown'])
    if out.get('output_type') == 'stream': return '```\n' + ''.join(out['text']).rstrip() + '\n```'
    if 'text/plain' in data and 'text/html' not in data and 'application/vnd.plotly.v1+json' not in data:
        return '```\n' + ''.join(data['text/plain']).rstrip() + '\n```'
    return None

def build(nb_path='index.ipynb', out_path='README.md'):
    nb = json.loads(Path(nb_path).read_text())
    parts = ['<!-- generated from index.ipynb by tools/build_readme.py: edit the notebook, not this file -->']
    for cell in nb['cells']:
        src = _src(cell)
        if src.lstrip().startswith(('#| hide', '#|hide', '#| export', '#| default_exp')): continue
        if cell['cell_type'] == 'markdown': parts.append(src)
        elif cell['cell_type'] == 'code' and src.strip():
            parts.append('```python\n' + src.rstrip() + '\n```')
            parts += [o for o in map(_output, cell.get('outputs', [])) if o]
    Path(out_path).write_text('\n\n'.join(parts) + '\n')
    return out_path

if __name__ == '__main__': print('wrote', build(*sys.argv[1:]))
