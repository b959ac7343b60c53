"""Reliability: bad inputs give one clear error, caches survive corruption and concurrent writers, the same seed
gives the same results, and an interrupted run resumes to identical results."""
import json, multiprocessing as mp, os, shutil, subprocess, sys, time, warnings
from dataclasses import replace
from pathlib import Path
import pytest
import torch

from csl.core import InputError, CacheError, accuracy, pgr, cache_key, save_cached, load_cached, cached, check_shape, _MAGIC
from csl.data import Hierarchy
from csl.assign import GateInput, assign, ownership, ensemble, assignment_accuracy, assignment_counts, fit_unit_head
from csl.denoise import teacher_student, local_global, precision_recall, compose, Kept
from csl.student import ProbeConfig
from csl.cosupervise import (CSLConfig, Callback, History, Report, Truth, co_supervise, synthetic_problem)
from csl.experiments import run_experiment, build_problem, get_preset, seed_file
from csl.viz import accuracy_by_level, assignment_heatmap, save_html

torch.set_num_threads(1)
CSL = shutil.which('csl', path=str(Path(sys.executable).parent)) or shutil.which('csl')
FAST = CSLConfig(probe=ProbeConfig(epochs=3))


# ---------------------------------------------------------------- bad inputs at the public entry points

SP = synthetic_problem(240)
S = SP.splits
T4 = torch.full((4, 2, 4), .25)  # (N, K, C) uniform teachers
OWN = torch.tensor([0, 0, 1, 1])
U4 = torch.full((4, 4), .25)


def _with(**kw): return replace(SP, **kw)


BAD = [  # (what, call, words the message must contain)
    ('accuracy: float labels', lambda: accuracy(torch.eye(2), torch.tensor([0.5, 1.])), 'labels: expected an integer tensor of class ids'),
    ('accuracy: labels out of range', lambda: accuracy(torch.eye(2), torch.tensor([0, 2])), 'expected class ids in [0, 2)'),
    ('accuracy: list', lambda: accuracy([0, 1], torch.tensor([0, 1])), 'expected (N, C) scores'),
    ('pgr: None', lambda: pgr(None, .5, .9), 'acc_w2s=None'),
    ('cache_key: object with an address', lambda: cache_key(x=object()), 'no stable text form'),
    ('gate: int teacher probs', lambda: GateInput(T4.long(), OWN), 'teacher_probs: expected a floating-point'),
    ('gate: fp16 rows off by 0.2', lambda: GateInput(torch.full((4, 2, 4), .2).half(), OWN), 'rows do not sum to 1'),
    ('gate: NaN student', lambda: GateInput(T4, OWN, student_probs=U4.clone().fill_(float('nan'))), 'student_probs: 16 non-finite'),
    ('gate: owner out of range', lambda: GateInput(T4, torch.tensor([0, 0, 1, 2])), 'owner: values in [0, 2]'),
    ('assign: not a GateInput', lambda: assign(T4, 'ownership'), 'expected a GateInput'),
    ('assign: unknown gate', lambda: assign(GateInput(T4, OWN, student_probs=U4), 'best'), "unknown method 'best'"),
    ('assignment_accuracy: float truth', lambda: assignment_accuracy(ensemble(GateInput(T4, OWN)), torch.zeros(4)), 'true_teacher: expected an integer'),
    ('assignment_counts: class 9 of 4', lambda: assignment_counts(ensemble(GateInput(T4, OWN)), torch.tensor([0, 1, 2, 9]), 4), 'classes: values in [0, 9]'),
    ('fit_unit_head: NaN features', lambda: fit_unit_head(torch.full((4, 3), float('nan')), torch.tensor([0, 1, 0, 1]), 2), 'x: 12 non-finite'),
    ('teacher_student: label 7 of 4', lambda: teacher_student(torch.tensor([0, 1, 7, 2]), U4), 'labels: values in [0, 7]'),
    ('teacher_student: k=True', lambda: teacher_student(torch.tensor([0, 1, 2, 2]), U4, k=True), 'k=True'),
    ('local_global: k=0', lambda: local_global(torch.tensor([0, 1, 2, 2]), U4, k=0), 'k=0; expected an int in [1, C=4]'),
    ('precision_recall: float mask', lambda: precision_recall(torch.tensor([.5, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), torch.tensor([0, 1, 1, 0])), 'expected a bool mask'),
    ('compose: not Kept', lambda: compose(torch.ones(3, dtype=torch.bool)), 'expected Kept results'),
    ('Hierarchy: straddling scope', lambda: Hierarchy([[[0, 1, 2, 3]], [[0, 1], [2, 3]], [[1, 2], [0], [3]]]), 'straddles'),
    ('Problem: int features', lambda: _with(feats=SP.feats.long()), 'feats: dtype torch.int64; expected floating-point'),
    ('Problem: NaN features', lambda: _with(feats=SP.feats.clone().index_fill_(0, torch.tensor([3]), float('nan'))), 'feats: 16 non-finite'),
    ('Problem: features on another device', lambda: _with(feats=SP.feats.to('meta')), 'feats is on meta; expected the CPU'),
    ('Problem: float labels', lambda: _with(truth=Truth(SP.truth.labels.float())), 'truth.labels: expected an integer tensor'),
    ('Problem: labels out of range', lambda: _with(truth=Truth(SP.truth.labels + 4)), 'truth.labels: values in [4, 7]'),
    ('Problem: teacher rows not summing to 1', lambda: _with(bank=type(SP.bank)(probs=[SP.bank.probs[0] * .5, SP.bank.probs[1]], hierarchy=SP.hierarchy)), 'bank.probs[0]: 240 rows do not sum to 1'),
    ('Problem: test index out of range', lambda: _with(splits={**S, 'test': S['test'] + 1000}), "splits['test']: values in"),
    ('Problem: pool and test overlap', lambda: _with(splits={**S, 'test': S['pool'][:10]}), "splits['pool'] and splits['test'] share 10 samples"),
    ('Problem: bool mask as a split', lambda: _with(splits={**S, 'val': torch.ones(240, dtype=torch.bool)}), "splits['val']: expected an integer tensor"),
    ('Problem: empty pool', lambda: _with(splits={**S, 'pool': S['pool'][:0]}), "['pool'] missing or empty"),
    ('Problem: no hierarchy', lambda: _with(hierarchy=None), 'expected a csl.data.Hierarchy'),
    ('co_supervise: dict config', lambda: co_supervise(SP, {'assign': 'ownership'}), 'cfg is dict; expected a CSLConfig'),
    ('co_supervise: local_global k > C', lambda: co_supervise(SP, CSLConfig(local_global=5)), 'k=5 but the problem has C=4'),
    ('CSLConfig: unknown filter', lambda: CSLConfig(filter='top9'), "CSLConfig.filter='top9'"),
    ('CSLConfig: rounds=True', lambda: CSLConfig(rounds=True), 'CSLConfig.rounds=True'),
    ('History.from_dict: damaged record', lambda: History.from_dict({'records': [{'x': 1}], 'weak_acc': .5, 'ceiling_acc': .9, 'meta': {}}), 'records[0] has keys'),
    ('viz: a dict for a History', lambda: accuracy_by_level({}), 'accuracy_by_level: hist is dict'),
    ('viz: unknown method', lambda: assignment_heatmap(History(), 'oracel'), "method='oracel'"),
    ('save_html: not a History', lambda: save_html('/tmp/x.html', {}), 'expected a csl History'),
    ('experiments: unknown preset', lambda: get_preset('imagenet-1k'), "unknown preset 'imagenet-1k'"),
]


@pytest.mark.parametrize('what,call,words', BAD, ids=[b[0] for b in BAD])
def test_bad_input_gives_one_clear_error(what, call, words):
    "An `InputError` (a ValueError) whose message names the argument and what was expected; never a torch traceback."
    with pytest.raises(InputError) as e: call()
    assert words in str(e.value), str(e.value)
    assert '\n' not in str(e.value)


# ---------------------------------------------------------------- caches

def test_cache_key_covers_whole_tensors():
    a = torch.arange(5000); b = a.clone(); b[2500] = -1  # same printed summary, different content
    assert cache_key(x=a) != cache_key(x=b) and cache_key(x=a) == cache_key(x=a.clone())
    assert cache_key(x=a) != cache_key(x=a.int())  # dtype is part of the content


@pytest.mark.parametrize('damage', ['flip', 'truncate_payload', 'truncate_header', 'empty', 'foreign', 'unloadable'])
def test_corrupt_cache_is_detected_reported_and_recomputed(tmp_path, damage):
    f = tmp_path/'entry.pt'; value = {'x': torch.arange(1000.)}
    save_cached(f, value); raw = f.read_bytes(); n = len(_MAGIC) + 64
    if damage == 'flip': f.write_bytes(raw[:n + 500] + bytes([raw[n + 500] ^ 1]) + raw[n + 501:])
    elif damage == 'truncate_payload': f.write_bytes(raw[:len(raw) // 2])
    elif damage == 'truncate_header': f.write_bytes(raw[:20])
    elif damage == 'empty': f.write_bytes(b'')
    elif damage == 'foreign': torch.save(value, f)  # a plain torch file: no header
    elif damage == 'unloadable':
        import hashlib; junk = b'not a pickle'
        f.write_bytes(_MAGIC + hashlib.sha256(junk).hexdigest().encode() + junk)
    with pytest.raises(CacheError, match='entry.pt'): load_cached(f)
    logs, calls = [], []
    with pytest.warns(UserWarning, match='recomputing'):
        got = cached(f, lambda: calls.append(1) or value, log=logs.append)
    assert calls == [1] and torch.equal(got['x'], value['x']) and 'recomputing' in logs[0]
    assert torch.equal(load_cached(f)['x'], value['x'])  # the entry was rewritten, valid
    assert not list(tmp_path.glob('*.tmp'))


def test_cached_check_rejects_a_wrong_value(tmp_path):
    f = tmp_path/'feats.pt'; save_cached(f, torch.zeros(3, 2))
    with pytest.warns(UserWarning, match='unexpected value'):
        got = cached(f, lambda: torch.zeros(5, 2), check=lambda o: check_shape(o, (5, 2), 'features'))
    assert got.shape == (5, 2) and load_cached(f).shape == (5, 2)


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    class Boom:
        def __reduce__(self): raise RuntimeError('cannot pickle')
    with pytest.raises(InputError, match='expected only tensors'): save_cached(tmp_path/'x.pt', {'a': Boom()})  # not a plain value
    def full(fd): raise OSError(28, 'No space left on device')
    monkeypatch.setattr('csl.core.os.fsync', full)  # the disk fills up in the middle of the write
    with pytest.raises(OSError): save_cached(tmp_path/'x.pt', {'a': torch.zeros(3)})
    assert list(tmp_path.iterdir()) == []


def _value(): return {'x': torch.arange(1_000_000, dtype=torch.float32), 'meta': 'same key, same content'}


def _writer(path, barrier, rounds, q):
    from csl.core import cached, save_cached
    v = _value(); barrier.wait()
    got = cached(path, lambda: (time.sleep(0.2), v)[1])  # both compute at once: neither finds the entry
    for _ in range(rounds): save_cached(path, v)
    q.put(('writer', bool(torch.equal(got['x'], v['x']))))


def _reader(path, barrier, stop, q):
    from csl.core import load_cached, CacheError
    barrier.wait(); ok = bad = 0
    while not stop.is_set():
        if os.path.exists(path):
            try: load_cached(path); ok += 1
            except CacheError: bad += 1
    q.put(('reader', (ok, bad)))


def test_concurrent_writers_do_not_clobber(tmp_path):
    "Two processes compute and write the same key at once while a third reads: no reader ever sees a partial file."
    ctx = mp.get_context('spawn'); path = str(tmp_path/'same-key.pt')
    barrier, stop, q = ctx.Barrier(3), ctx.Event(), ctx.Queue()
    writers = [ctx.Process(target=_writer, args=(path, barrier, 8, q)) for _ in range(2)]
    reader = ctx.Process(target=_reader, args=(path, barrier, stop, q))
    for p in [*writers, reader]: p.start()
    for p in writers: p.join(120)
    stop.set(); reader.join(60)
    out = [q.get(timeout=10) for _ in range(3)]
    assert all(p.exitcode == 0 for p in [*writers, reader])
    assert [v for k, v in out if k == 'writer'] == [True, True]
    ok, bad = next(v for k, v in out if k == 'reader')
    assert bad == 0 and ok > 0, (ok, bad)
    assert torch.equal(load_cached(path)['x'], _value()['x'])
    assert [p.name for p in tmp_path.iterdir()] == ['same-key.pt']  # no temporary file left behind


# ---------------------------------------------------------------- determinism

def _strip(h:History)->list:
    "Records without wall times."
    return [{k: v for k, v in r.__dict__.items() if k != 'seconds'} for r in h.records]


def test_same_seed_same_report_cpu():
    p = synthetic_problem(400)
    a, b = co_supervise(p, FAST, seed=3, device='cpu'), co_supervise(p, FAST, seed=3, device='cpu')
    assert Report.from_history(a).rows == Report.from_history(b).rows
    assert _strip(a) == _strip(b)
    assert _strip(co_supervise(p, FAST, seed=4, device='cpu')) != _strip(a)  # and the seed matters


def _csl(*args, cache, env=None):
    e = {**os.environ, 'CSL_CACHE': str(cache), 'OMP_NUM_THREADS': '1', **(env or {})}
    return subprocess.Popen([CSL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)


def test_csl_run_twice_at_once_gives_identical_results(tmp_path):
    "Two `csl run` at the same time, into two folders, sharing one cold cache: same rows, valid cache files."
    procs = [_csl('run', '--seeds', '0', '--quiet', '--out', str(tmp_path/d), cache=tmp_path/'cache') for d in ('a', 'b')]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (o, e) in zip(procs, outs): assert p.returncode == 0, e[-3000:]
    ra, rb = (json.loads((tmp_path/d/'results.json').read_text()) for d in ('a', 'b'))
    assert ra['rows'] == rb['rows']
    ha, hb = (History.from_dict(json.loads(seed_file(tmp_path/d, 0).read_text())['history']) for d in ('a', 'b'))
    assert _strip(ha) == _strip(hb)
    files = [f for f in (tmp_path/'cache').rglob('*') if f.is_file()]
    assert files and not [f for f in files if f.name.endswith('.tmp')]
    for f in files: load_cached(f)  # every entry intact


# ---------------------------------------------------------------- resume

class StopAt(Callback):
    "Raise KeyboardInterrupt (as Ctrl-C would) at a chosen point of a chosen seed."
    def __init__(self, seed, where='before_run'): self.seed, self.where = seed, where
    def before_run(self, hist):
        if self.where == 'before_run' and hist.meta['seed'] == self.seed: raise KeyboardInterrupt
    def after_round(self, hist, rec):
        if self.where == 'csl@1' and hist.meta['seed'] == self.seed and rec.method == 'csl' and rec.level == 1: raise KeyboardInterrupt


@pytest.fixture(scope='module')
def cache(tmp_path_factory): return tmp_path_factory.mktemp('cache')


@pytest.fixture(scope='module')
def reference(cache, tmp_path_factory):
    "An uninterrupted 2-seed run of the default preset."
    return run_experiment('digits-by-domain', (0, 1), tmp_path_factory.mktemp('ref'), 'cpu', cache)


@pytest.mark.parametrize('where', ['before_run', 'csl@1'])
def test_interrupted_run_resumes_to_identical_results(reference, cache, tmp_path, where):
    "Ctrl-C after seed 0 (before seed 1 starts, or in the middle of its level 1): rerun reuses seed 0, redoes seed 1."
    with pytest.raises(KeyboardInterrupt):
        run_experiment('digits-by-domain', (0, 1), tmp_path, 'cpu', cache, cbs=[StopAt(1, where)])
    assert seed_file(tmp_path, 0).exists() and not seed_file(tmp_path, 1).exists() and not (tmp_path/'results.json').exists()
    res = run_experiment('digits-by-domain', (0, 1), tmp_path, 'cpu', cache)
    assert res['timing_s']['reused_seeds'] == [0]
    assert res['rows'] == reference['rows']
    assert json.loads((tmp_path/'results.json').read_text())['rows'] == reference['rows']


@pytest.mark.parametrize('damage', ['truncated', 'records'])
def test_damaged_seed_file_is_recomputed(reference, cache, tmp_path, damage):
    "A seed file cut short (killed mid-write by something other than us) or with damaged records is redone, not trusted."
    run_experiment('digits-by-domain', (0, 1), tmp_path, 'cpu', cache)
    f = seed_file(tmp_path, 0); d = json.loads(f.read_text())
    if damage == 'truncated': f.write_text(f.read_text()[:200])
    else: d['history']['records'][0] = {'oops': 1}; f.write_text(json.dumps(d))
    res = run_experiment('digits-by-domain', (0, 1), tmp_path, 'cpu', cache)
    assert res['timing_s']['reused_seeds'] == [1] and res['rows'] == reference['rows']


def test_corrupt_feature_cache_is_recomputed(reference, cache):
    "A damaged feature file in a real cache is reported, recomputed and gives the same features."
    preset = get_preset('digits-by-domain')
    _, p0, _ = build_problem(preset, 0, 'cpu', cache)
    f = next((cache/'features').glob('*.pt')); raw = f.read_bytes(); f.write_bytes(raw[:len(raw) - 100])
    logs = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        _, p1, _ = build_problem(preset, 0, 'cpu', cache, log=logs.append)
    assert any('corrupt' in m for m in logs), logs
    assert torch.equal(p0.feats, p1.feats)
    load_cached(f)


# ---------------------------------------------------------------- the command line

def _run_cli(*args, cache):
    p = _csl(*args, cache=cache); o, e = p.communicate(timeout=300)
    return p.returncode, o, e


def _one_clear_line(rc, err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc == 2, (rc, err[-2000:])
    assert 'Traceback' not in err, err[-2000:]
    return lines


CLI_BAD = [  # (args, words in the error line)
    (['run', '--preset', 'nope'], "unknown preset 'nope'"),
    (['run', '--seeds', '-1'], '--seeds -1: expected an int in [0, '),
    (['run', '--out', '{file}', '--seeds', '0'], '{file}'),
    (['run', '--out', '/proc/csl-no/out', '--seeds', '0'], '/proc/csl-no'),
]


@pytest.mark.parametrize('args,words', CLI_BAD, ids=[' '.join(a[:3]) for a, _ in CLI_BAD])
def test_cli_bad_input_exit_2_one_line(tmp_path, cache, args, words):
    f = tmp_path/'a-file'; f.write_text('x')
    args = [a.replace('{file}', str(f)) for a in args]
    rc, out, err = _run_cli(*args, '--quiet', cache=cache)
    lines = _one_clear_line(rc, err)
    assert len(lines) == 1 and lines[0].startswith('csl run: error:') and words.replace('{file}', str(f)) in lines[0], err


@pytest.mark.parametrize('args', [['run', '--seeds', 'x'], ['run', '--device', 'tpu'], ['bogus']], ids=['seeds x', 'device tpu', 'bogus'])
def test_cli_bad_flags_one_line(cache, args):
    rc, out, err = _run_cli(*args, cache=cache)
    lines = _one_clear_line(rc, err)
    assert len(lines) == 1 and 'error' in lines[0], err


@pytest.mark.parametrize('flag', ['--cache', '--html-dir', '--html-under-file'])
def test_cli_bad_paths_exit_2(tmp_path, cache, flag):
    f = tmp_path/'a-file'; f.write_text('x')
    args = {'--cache': ['--cache', str(f)], '--html-dir': ['--html', str(tmp_path)], '--html-under-file': ['--html', str(f/'x.html')]}[flag]
    rc, out, err = _run_cli('run', '--seeds', '0', '--quiet', '--out', str(tmp_path/'out'), *args, cache=cache)
    lines = _one_clear_line(rc, err)
    assert len(lines) == 1 and lines[0].startswith('csl run: error:'), err
