"""The installed `csl` console script, end to end, as a user runs it (README command a)."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest
from csl.experiments import HELDOUT_SEEDS

CSL = shutil.which('csl', path=str(Path(sys.executable).parent)) or shutil.which('csl')
FIELDS = ('test_acc', 'pgr', 'keep_rate', 'precision', 'recall', 'assign_acc')
BASE = {'weak', 'naive_w2s', 'few_shot', 'ensemble', 'csl', 'oracle', 'confidence_routing', 'ceiling'}
LEVELS = (1, 2, 3)  # the default hierarchy: 1 -> 2 -> 4 -> 8 teachers


def csl(*args, cache, timeout=900):
    env = {**os.environ, 'CSL_CACHE': str(cache)}
    return subprocess.run([CSL, *args], capture_output=True, text=True, timeout=timeout, env=env)


def row(res, method, labels=None):
    "The row of `method` with `labels` (None: the preset's own kind, listed first)."
    labels = labels or res['labels'][0]
    return next(r for r in res['rows'] if r['method'] == method and r['labels'] == labels)


def mean(res, method, field='test_acc', labels=None):
    vals = [v for v in row(res, method, labels)[field] if v is not None]
    return sum(vals) / len(vals)


def check_contract(res, preset, seeds, levels=None):
    "The results.json contract: today's fields, a `labels` on every row, per-level csl/oracle rows for both label kinds."
    assert res['preset'] == preset and res['seeds'] == seeds and isinstance(res['version'], str) and isinstance(res['config'], dict)
    assert isinstance(res['timing_s'], dict) and sorted(res['labels']) == ['hard', 'soft']
    own = 'soft' if res['config']['csl']['probe']['soft'] else 'hard'
    assert res['labels'][0] == own and res['rows'][0]['labels'] == own   # the preset's own kind comes first
    for kind in res['labels']:
        methods = {r['method'] for r in res['rows'] if r['labels'] == kind}
        assert BASE <= methods, (kind, methods)
        for l in levels or ():
            assert {f'csl@{l}', f'oracle@{l}'} <= methods, (kind, l, methods)
            if res['config']['csl']['assign'] != 'ownership': assert f'official@{l}' in methods, (kind, l)
        if levels: assert row(res, 'csl', kind)['test_acc'] == row(res, f'csl@{levels[-1]}', kind)['test_acc']
    for r in res['rows']:
        assert r['labels'] in ('soft', 'hard')
        assert r['level'] is None or isinstance(r['level'], int)
        assert isinstance(r['n_teachers'], int)
        for f in FIELDS:
            assert len(r[f]) == len(seeds), (r['method'], f)
            for v in r[f]:
                assert v is None or isinstance(v, float), (r['method'], f, v)
                if v is not None and f != 'pgr': assert 0 <= v <= 1, (r['method'], f, v)


@pytest.fixture(scope='module')
def default_run(tmp_path_factory):
    "`csl run` on the embedded default, its default seeds (the held-out ones), cold caches."
    tmp = tmp_path_factory.mktemp('run')
    p = csl('run', '--out', str(tmp/'out'), '--html', str(tmp/'report.html'), cache=tmp/'cache')
    return p, tmp


def test_main_job_runs(default_run):
    p, tmp = default_run
    assert p.returncode == 0, p.stderr[-3000:]
    assert 'digits' in p.stdout and '| csl |' in p.stdout and 'results.json' in p.stdout
    assert 'PGR (%) against the number of teachers' in p.stdout and '| paper (ImageNet) | soft |' in p.stdout
    assert 'feature' in p.stderr.lower() or 'extracting' in p.stderr  # progress goes to stderr
    res = json.loads((tmp/'out'/'results.json').read_text())
    check_contract(res, 'digits', list(HELDOUT_SEEDS), LEVELS)
    assert res['config']['hierarchy'] == 'blocks8' and res['config']['teachers']['budget'] == 'scope'
    assert (tmp/'report.html').stat().st_size > 100_000  # plotly.js inline


def test_main_job_curve(default_run):
    """The paper's curve on the embedded default's held-out seeds, gold-free (select='last'), read from results.json.

    What holds there (issue 20's measurement, `csl run` on seeds 100-104): CSL rises level by level for both kinds of
    labels and beats the official rule by at least 0.10 PGR at 8 teachers; perfect routing bounds it at every level.
    The official rule stays above naive W2S but does not rise level by level on these seeds, so that is not asserted."""
    p, tmp = default_run
    res = json.loads((tmp/'out'/'results.json').read_text())
    pgr = lambda m, kind='soft': mean(res, m, 'pgr', kind)
    naive, L = pgr('naive_w2s'), LEVELS[-1]
    assert pgr(f'official@{L}') > naive, (pgr(f'official@{L}'), naive)
    for kind in ('soft', 'hard'):
        for m in ('csl', 'oracle'):
            curve = [pgr('naive_w2s', kind)] + [pgr(f'{m}@{l}', kind) for l in LEVELS]
            assert all(b > a for a, b in zip(curve, curve[1:])), (m, kind, curve)   # rising level to level
        assert pgr(f'csl@{L}', kind) >= pgr(f'official@{L}', kind) + 0.10, kind     # the done-when of issue 20
        for l in LEVELS:
            assert pgr(f'oracle@{l}', kind) >= pgr(f'csl@{l}', kind), (kind, l)   # perfect routing bounds the gate
            assert mean(res, f'oracle@{l}', 'assign_acc', kind) == 1.0
    assert pgr(f'csl@{L}') >= 0.70, pgr(f'csl@{L}')   # measured 0.792 (posterior, seeds 100-104)
    for l in LEVELS:   # the default gate routes better than the official rule at every level
        assert mean(res, f'csl@{l}', 'assign_acc') > mean(res, f'official@{l}', 'assign_acc'), l
    assert mean(res, 'confidence_routing') < mean(res, 'csl')
    # every label counted: no method row read a gold label of the pool or val; the default gate and the few-shot
    # student read the teachers' own labelled set (200 labels), the naive student and the official rule read none
    method = [r for r in res['rows'] if r['method'].split('@')[0] in ('naive_w2s', 'csl', 'official')]
    assert all(r['gold'] == dict(teach=200 if r['method'].startswith('csl') else 0, train=0, select=0, route=0)
               for r in method), [r['gold'] for r in method]
    assert row(res, 'few_shot')['gold']['teach'] == 200 and row(res, 'ceiling')['gold']['select'] == 680
    assert res['config']['csl']['probe']['select'] == 'last' and 'epoch selection `last`' in p.stdout
    assert 'csl - official, paired by seed' in p.stdout


def test_default_report_renders(default_run):
    "The default's HTML report: the curve with the paper's overlay and a heatmap panel per level, drawn in Chromium."
    from test_browser import _chromium, _screenshot
    np = pytest.importorskip('numpy'); Image = pytest.importorskip('PIL.Image')
    p, tmp = default_run
    page = (tmp/'report.html').read_text()
    for name in ('csl (soft)', 'csl (hard)', 'official (soft)', 'oracle (hard)', 'paper (soft)', 'paper (hard)'):
        assert f'"name":"{name}"' in page, name                       # the curve's traces
    for l, k in zip(LEVELS, (2, 4, 8)): assert f'"name":"L{l} ({k} teachers)"' in page   # a heatmap panel per level
    png = _screenshot(_chromium(), tmp/'report.html', tmp/'report.png')
    img = np.asarray(Image.open(png).convert('RGB')).astype(float)  # (H, W, 3)
    assert img.std() > 10 and (img.max(-1) - img.min(-1) > 80).sum() > 500, 'the report rendered blank'


def test_resume_reuses_finished_seeds(default_run):
    "A second run over the same folder reuses every finished seed and gives the same file."
    p, tmp = default_run
    first = json.loads((tmp/'out'/'results.json').read_text())
    (tmp/'out'/'seeds'/'seed-104.json').unlink()  # as if killed before the last seed finished
    q = csl('run', '--out', str(tmp/'out'), cache=tmp/'cache')
    assert q.returncode == 0, q.stderr[-3000:]
    again = json.loads((tmp/'out'/'results.json').read_text())
    assert again['timing_s']['reused_seeds'] == [100, 101, 102, 103]
    assert again['rows'] == first['rows']


def test_fashion_mnist_preset(tmp_path):
    "The Fashion-MNIST preset (Debian's files) goes through the same runner and writes the same file."
    if not Path('/usr/share/datasets/fashion-mnist').exists() and not os.environ.get('CI'):
        pytest.skip("Debian's dataset-fashion-mnist is not installed (CI installs it)")
    p = csl('run', '--preset', 'fashion-mnist', '--seeds', '0', '--out', str(tmp_path/'out'), cache=tmp_path/'cache')
    assert p.returncode == 0, p.stderr[-3000:]
    check_contract(json.loads((tmp_path/'out'/'results.json').read_text()), 'fashion-mnist', [0], (1,))


@pytest.mark.parametrize('args,msg', [
    (['run', '--preset', 'nope'], "unknown preset 'nope'"),
    (['run', '--seeds', 'x'], 'invalid int value'),
    (['run', '--device', 'tpu'], "invalid choice: 'tpu'"),
    (['frobnicate'], 'invalid choice'),
])
def test_bad_input_one_line_exit_2(tmp_path, args, msg):
    p = csl(*args, cache=tmp_path)
    assert p.returncode == 2 and msg in p.stderr and 'Traceback' not in p.stderr, p.stderr
