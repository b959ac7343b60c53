"""The installed `csl` console script, end to end, as a user runs it (README command a)."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest

CSL = shutil.which('csl', path=str(Path(sys.executable).parent)) or shutil.which('csl')
FIELDS = ('test_acc', 'pgr', 'keep_rate', 'precision', 'recall', 'assign_acc')
METHODS = {'weak', 'naive_w2s', 'ensemble', 'csl', 'oracle', 'confidence_routing', 'ceiling'}


def csl(*args, cache, timeout=900):
    env = {**os.environ, 'CSL_CACHE': str(cache)}
    return subprocess.run([CSL, *args], capture_output=True, text=True, timeout=timeout, env=env)


def mean(res, method, field='test_acc'):
    vals = [v for v in next(r for r in res['rows'] if r['method'] == method)[field] if v is not None]
    return sum(vals) / len(vals)


def check_contract(res, preset, seeds):
    assert res['preset'] == preset and res['seeds'] == seeds and isinstance(res['version'], str) and isinstance(res['config'], dict)
    assert isinstance(res['timing_s'], dict)
    methods = {r['method'] for r in res['rows']}
    assert METHODS <= methods, methods
    assert all(m in METHODS or m.startswith('csl@') for m in methods), methods
    for r in res['rows']:
        assert r['level'] is None or isinstance(r['level'], int)
        assert isinstance(r['n_teachers'], int)
        for f in FIELDS:
            assert len(r[f]) == len(seeds), (r['method'], f)
            for v in r[f]:
                assert v is None or isinstance(v, float), (r['method'], f, v)
                if v is not None and f != 'pgr': assert 0 <= v <= 1, (r['method'], f, v)


@pytest.fixture(scope='module')
def default_run(tmp_path_factory):
    "`csl run` on the embedded default, 3 seeds, cold caches."
    tmp = tmp_path_factory.mktemp('run')
    p = csl('run', '--out', str(tmp/'out'), '--html', str(tmp/'report.html'), cache=tmp/'cache')
    return p, tmp


def test_main_job_runs(default_run):
    p, tmp = default_run
    assert p.returncode == 0, p.stderr[-3000:]
    assert 'digits-domains' in p.stdout and '| csl |' in p.stdout and 'results.json' in p.stdout
    assert 'feature' in p.stderr.lower() or 'extracting' in p.stderr  # progress goes to stderr
    res = json.loads((tmp/'out'/'results.json').read_text())
    check_contract(res, 'digits-domains', [0, 1, 2])
    assert (tmp/'report.html').stat().st_size > 100_000  # plotly.js inline


def test_main_job_result(default_run):
    "The method works on the embedded default (the numbers the README reports come from this file)."
    p, tmp = default_run
    res = json.loads((tmp/'out'/'results.json').read_text())
    c, n = mean(res, 'csl'), mean(res, 'naive_w2s')
    assert c >= n + 0.05, (c, n)
    assert mean(res, 'csl', 'pgr') >= mean(res, 'naive_w2s', 'pgr') + 0.10
    assert mean(res, 'oracle') >= c - 0.01
    assert mean(res, 'confidence_routing') < c


def test_resume_reuses_finished_seeds(default_run):
    "A second run over the same folder reuses every finished seed and gives the same file."
    p, tmp = default_run
    first = json.loads((tmp/'out'/'results.json').read_text())
    (tmp/'out'/'seeds'/'seed-2.json').unlink()  # as if killed before seed 2 finished
    q = csl('run', '--out', str(tmp/'out'), cache=tmp/'cache')
    assert q.returncode == 0, q.stderr[-3000:]
    again = json.loads((tmp/'out'/'results.json').read_text())
    assert again['timing_s']['reused_seeds'] == [0, 1]
    assert again['rows'] == first['rows']


def test_fashion_mnist_preset(tmp_path):
    "The Fashion-MNIST preset (Debian's files) goes through the same runner and writes the same file."
    if not Path('/usr/share/datasets/fashion-mnist').exists() and not os.environ.get('CI'):
        pytest.skip("Debian's dataset-fashion-mnist is not installed (CI installs it)")
    p = csl('run', '--preset', 'fashion-mnist', '--seeds', '0', '--out', str(tmp_path/'out'), cache=tmp_path/'cache')
    assert p.returncode == 0, p.stderr[-3000:]
    check_contract(json.loads((tmp_path/'out'/'results.json').read_text()), 'fashion-mnist', [0])


@pytest.mark.parametrize('args,msg', [
    (['run', '--preset', 'nope'], "unknown preset 'nope'"),
    (['run', '--seeds', 'x'], 'invalid int value'),
    (['run', '--device', 'tpu'], "invalid choice: 'tpu'"),
    (['frobnicate'], 'invalid choice'),
])
def test_bad_input_one_line_exit_2(tmp_path, args, msg):
    p = csl(*args, cache=tmp_path)
    assert p.returncode == 2 and msg in p.stderr and 'Traceback' not in p.stderr, p.stderr
