"""Security and input hygiene: no file the package reads can run code, one cache folder holds every entry,
and every flag of every subcommand is checked before any work (one line on stderr naming the flag, exit 2)."""
import argparse, contextlib, hashlib, io, json, os, pickle, shutil, subprocess, sys, time, warnings
from pathlib import Path
import pytest
import torch

from csl.core import InputError, cached, load_cached, load_entry, save_entry, _MAGIC
from csl.data import CSLData, Hierarchy, load_dataset, split_indices, fake_cifar100
from csl.features import get_features
from csl.teachers import TeacherConfig, train_teachers, load_teacher, logreg_model, checkpoint_path
from csl.experiments import build_problem, run_experiment, seed_file, DEFAULT_PRESET
from csl.cli import main, _parser

torch.set_num_threads(1)
CSL = shutil.which('csl', path=str(Path(sys.executable).parent)) or shutil.which('csl')


# ---------------------------------------------------------------- crafted payloads

class Plant:
    "A pickle payload: unpickling it calls Path(marker).touch(), i.e. runs code that creates a file."
    def __init__(self, marker): self.marker = Path(marker)
    def __reduce__(self): return (Path.touch, (self.marker,))


def _payload(marker)->bytes:
    buf = io.BytesIO(); torch.save({'x': torch.zeros(3), 'y': Plant(marker)}, buf); return buf.getvalue()


def craft(path:Path, marker:Path)->Path:
    "Overwrite `path` with a csl cache file whose header and SHA-256 are valid and whose payload would create `marker`."
    p = _payload(marker); path.write_bytes(_MAGIC + hashlib.sha256(p).hexdigest().encode() + p); return path


def test_the_payload_is_armed(tmp_path):
    "The crafted payload does run code when loaded the unsafe way, so the tests below mean something."
    marker = tmp_path/'marker'
    torch.load(io.BytesIO(_payload(marker)), weights_only=False)
    assert marker.exists()


def _clean_env(**kw)->dict:
    "This environment without any setting that moves csl's or torch's folders, plus `kw`."
    e = {k: v for k, v in os.environ.items() if k not in ('CSL_CACHE', 'TORCH_HOME', 'XDG_CACHE_HOME', 'TMPDIR')}
    return {**e, 'OMP_NUM_THREADS': '1', 'PYTHONDONTWRITEBYTECODE': '1', **kw}


@pytest.fixture(scope='module')
def home_run(tmp_path_factory):
    "`csl run --cache DIR` with an empty HOME (and empty XDG cache, temp and working folders); the --html page in a missing folder."
    t = tmp_path_factory.mktemp('home-run')
    for d in ('home', 'xdg', 'tmp', 'cwd'): (t/d).mkdir()
    p = subprocess.run([CSL, 'run', '--seeds', '0', '--quiet', '--cache', str(t/'cache'), '--out', str(t/'out'), '--html', str(t/'out'/'page'/'report.html')],
                       capture_output=True, text=True, timeout=600, cwd=t/'cwd',
                       env=_clean_env(HOME=str(t/'home'), XDG_CACHE_HOME=str(t/'xdg'), TMPDIR=str(t/'tmp')))
    return p, t


def test_cache_flag_reaches_every_entry_and_nothing_else_is_written(home_run):
    p, t = home_run
    assert p.returncode == 0, p.stderr[-3000:]
    for d in ('home', 'xdg', 'cwd'): assert list((t/d).rglob('*')) == [], (d, list((t/d).rglob('*')))
    # torch itself makes an empty $TMPDIR/torchinductor_<user> when an optimizer first imports torch._dynamo; csl writes nothing there
    assert [(x.name.startswith('torchinductor_'), list(x.iterdir())) for x in (t/'tmp').iterdir()] in ([], [(True, [])]), list((t/'tmp').rglob('*'))
    assert sorted(x.name for x in t.iterdir()) == ['cache', 'cwd', 'home', 'out', 'tmp', 'xdg']
    for kind in ('data', 'features', 'teachers'): assert len(list((t/'cache'/kind).glob('*.pt'))) == 1, kind
    assert (t/'out'/'results.json').exists() and seed_file(t/'out', 0).exists()
    assert (t/'out'/'page'/'report.html').stat().st_size > 100_000  # --html in a folder that did not exist: created


@pytest.fixture
def cache_copy(home_run, tmp_path):
    p, t = home_run
    assert p.returncode == 0, p.stderr[-3000:]
    return shutil.copytree(t/'cache', tmp_path/'cache')


@pytest.mark.parametrize('kind', ['data', 'features', 'teachers'])
def test_crafted_cache_entry_is_refused_and_recomputed(home_run, cache_copy, tmp_path, kind):
    "A crafted entry with a valid header and checksum: the run warns, recomputes, gives the same problem, and the payload never runs."
    _, ref, _ = build_problem(DEFAULT_PRESET, 0, 'cpu', home_run[1]/'cache')
    marker = tmp_path/'marker'
    for f in (cache_copy/kind).glob('*.pt'): craft(f, marker)
    logs = []
    with pytest.warns(UserWarning, match='recomputing') as rec:
        _, got, _ = build_problem(DEFAULT_PRESET, 0, 'cpu', cache_copy, log=logs.append)
    assert not marker.exists()
    said = [str(w.message) for w in rec] + logs
    assert any(f'/{kind}/' in m and 'holds more than plain values' in m and 'nothing in it ran' in m for m in said), said
    assert torch.equal(got.feats, ref.feats) and all(torch.equal(a, b) for a, b in zip(got.bank.probs, ref.bank.probs))
    for f in (cache_copy/kind).glob('*.pt'): load_cached(f)  # rewritten with a plain entry


def test_crafted_resume_state_is_redone(home_run, cache_copy, tmp_path):
    "Run resume state (`<out>/seeds/seed-N.json`) is JSON: a crafted file in its place is a damaged seed, redone; nothing runs."
    out = shutil.copytree(home_run[1]/'out', tmp_path/'out'); marker = tmp_path/'marker'
    ref = json.loads((out/'results.json').read_text())
    craft(seed_file(out, 0), marker)
    res = run_experiment(DEFAULT_PRESET, [0], out, 'cpu', cache_copy)
    assert res['timing_s']['reused_seeds'] == [] and res['rows'] == ref['rows']
    assert not marker.exists()
    seed_file(out, 0).write_bytes(pickle.dumps(Plant(marker)))  # a bare pickle, no header
    res = run_experiment(DEFAULT_PRESET, [0], out, 'cpu', cache_copy)
    assert res['timing_s']['reused_seeds'] == [] and not marker.exists()


def test_crafted_feature_entry_through_the_command_line(cache_copy, tmp_path):
    "The report of the issue: a crafted features/<key>.pt in --cache. The run warns on stderr, finishes, and never runs the payload."
    marker = tmp_path/'marker'
    craft(next((cache_copy/'features').glob('*.pt')), marker)
    p = subprocess.run([CSL, 'run', '--seeds', '0', '--cache', str(cache_copy), '--out', str(tmp_path/'out')],
                       capture_output=True, text=True, timeout=600, env=_clean_env())
    assert p.returncode == 0, p.stderr[-3000:]
    assert 'holds more than plain values' in p.stderr and 'recomputing' in p.stderr
    assert not marker.exists()


def test_crafted_teacher_checkpoint_is_refused(tmp_path):
    "Teacher checkpoints are read with weights_only=True: a crafted one is one InputError, and nothing in it runs."
    marker, cfg = tmp_path/'marker', TeacherConfig()
    model = logreg_model((1, 8, 8), 10, cfg)
    torch.save(model.state_dict(), checkpoint_path(tmp_path, 0, 0))
    load_teacher(logreg_model((1, 8, 8), 10, cfg), tmp_path, 0, 0)  # a plain state dict loads
    torch.save({**model.state_dict(), 'extra': Plant(marker)}, checkpoint_path(tmp_path, 0, 0))
    with pytest.raises(InputError, match='holds more than plain values'): load_teacher(logreg_model((1, 8, 8), 10, cfg), tmp_path, 0, 0)
    assert not marker.exists()


def test_crafted_cifar_pickle_is_refused(tmp_path):
    "CIFAR-100's pickles are unpickled with an allow-list (numpy arrays, lists, strings): a crafted one is refused, never run."
    root = fake_cifar100(tmp_path/'c100', n_train=2, n_test=1); marker = tmp_path/'marker'
    assert len(load_dataset('cifar-100', root=root, n_teach=50, n_val=50)) == 300
    for name in ('meta', 'train', 'test'):
        f = root/'cifar-100-python'/name; keep = f.read_bytes()
        f.write_bytes(pickle.dumps({'data': Plant(marker)}))
        with pytest.raises(InputError, match=f'{name} is not a CIFAR-100 pickle'): load_dataset('cifar-100', root=root)
        f.write_bytes(keep)
    assert not marker.exists()


# ---------------------------------------------------------------- a valid checksum is not a valid entry: each kind's schema

def _data(v, how):
    x, y, dom = v
    if how == 'shape': return x[:, :, :8, :8].contiguous(), y, dom  # 8x8 images
    if how == 'count': return x[:-1], y[:-1], dom[:-1]
    if how == 'nan': x = x.clone(); x[0, 0, 0, 0] = float('nan'); return x, y, dom
    return x.double(), y, dom  # dtype


def _features(f, how):
    if how == 'shape': return f[:, :5].contiguous()  # (N, 5) instead of (N, 160)
    if how == 'count': return f[:-1]
    if how == 'nan': f = f.clone(); f[3, 7] = float('nan'); return f
    return f.double()


def _teachers(s, how):
    s = dict(s)
    if how == 'shape': s['probs'] = [p[:, :, :5] / p[:, :, :5].sum(-1, keepdim=True) for p in s['probs']]
    elif how == 'count': s['probs'], s['levels'] = s['probs'][:1], s['levels'][:1]  # a bank cut to its first level
    elif how == 'nan': s['probs'] = [p.clone() for p in s['probs']]; s['probs'][-1][0, 0, 0] = float('nan')
    else: s['probs'] = [p.float() for p in s['probs']]
    return s


DAMAGE = {'data': _data, 'features': _features, 'teachers': _teachers}


@pytest.mark.parametrize('how', ['shape', 'count', 'nan', 'dtype'])
def test_wrong_entry_with_a_valid_checksum_is_warned_and_recomputed(home_run, cache_copy, how):
    "Every cache kind holding a wrong-shape, wrong-count, NaN or wrong-dtype value (valid checksum): one warning naming the file, recomputed, the same problem."
    _, ref, _ = build_problem(DEFAULT_PRESET, 0, 'cpu', home_run[1]/'cache')
    files = {kind: next((cache_copy/kind).glob('*.pt')) for kind in DAMAGE}
    for kind, f in files.items():
        save_entry(f, kind, DAMAGE[kind](load_entry(f, kind), how))
        load_cached(f)  # the checksum holds
    with pytest.warns(UserWarning, match='recomputing') as rec:
        _, got, _ = build_problem(DEFAULT_PRESET, 0, 'cpu', cache_copy)
    said = [str(w.message) for w in rec]
    for kind, f in files.items():
        assert any(str(f) in m and 'unexpected value' in m for m in said), (kind, said)
        load_entry(f, kind)  # rewritten with a valid entry
    assert torch.equal(got.feats, ref.feats) and all(torch.equal(a, b) for a, b in zip(got.bank.probs, ref.bank.probs))
    assert torch.equal(got.truth.labels, ref.truth.labels)


def test_entry_made_for_another_key_is_recomputed(home_run, cache_copy):
    "A valid features entry copied under another entry's name (another key) is not used."
    f = next((cache_copy/'features').glob('*.pt')); other = f.with_name('digits-domains-effnet_lite0-0123456789abcdef0123.pt')
    shutil.copy(f, other)
    with pytest.warns(UserWarning, match=f"was made for '{f.name}'"):
        cached(other, lambda: torch.zeros(1), kind='features')


@pytest.mark.parametrize('what', ['fifo', 'dev-zero'])
def test_fifo_or_dev_zero_as_cache_entries_the_run_finishes(home_run, cache_copy, tmp_path, what):
    "A FIFO (would block a plain open for ever) or a link to /dev/zero (would fill memory) as every cache entry: refused, recomputed, exit 0."
    for kind in DAMAGE:
        for f in (cache_copy/kind).glob('*.pt'):
            f.unlink()
            os.mkfifo(f) if what == 'fifo' else f.symlink_to('/dev/zero')
    p = subprocess.run([CSL, 'run', '--seeds', '0', '--cache', str(cache_copy), '--out', str(tmp_path/'out')],
                       capture_output=True, text=True, timeout=600, env=_clean_env())
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stderr.count('is not a regular file') >= 3 and 'recomputing' in p.stderr, p.stderr[-3000:]
    for kind in DAMAGE: assert all(f.is_file() and not f.is_symlink() for f in (cache_copy/kind).glob('*.pt'))
    ref = json.loads((home_run[1]/'out'/'results.json').read_text())
    assert json.loads((tmp_path/'out'/'results.json').read_text())['rows'] == ref['rows']

# ---------------------------------------------------------------- one cache folder: argument > CSL_CACHE > ~/.cache/csl

@pytest.mark.parametrize('source', ['argument', 'environment', 'default'])
def test_cache_folder_precedence_for_every_kind(tmp_path, monkeypatch, source):
    "Data, features and teachers all go to the argument when given, else to $CSL_CACHE, else to ~/.cache/csl."
    arg, env, home = tmp_path/'arg', tmp_path/'env', tmp_path/'home'
    monkeypatch.setenv('HOME', str(home))
    if source == 'default': monkeypatch.delenv('CSL_CACHE', raising=False)
    else: monkeypatch.setenv('CSL_CACHE', str(env))
    cd = arg if source == 'argument' else None
    d = load_dataset('digits-domains', cache_dir=cd)
    idx = torch.cat([torch.arange(40), torch.arange(1797, 1837)])  # 40 images of each domain
    tiny = CSLData('tiny', d.images[idx], d.labels[idx], d.classes, split_indices(d.domains[idx], teach=10, val=.2, test=.2), d.domains[idx], d.domain_names)
    get_features(tiny, cache_dir=cd, device='cpu')
    train_teachers(tiny, Hierarchy.domains(2), TeacherConfig(epochs=5), device='cpu', cache_dir=cd)
    want = {'argument': arg, 'environment': env, 'default': home/'.cache'/'csl'}[source]
    for kind in ('data', 'features', 'teachers'): assert len(list((want/kind).glob('*.pt'))) == 1, kind
    assert [p for p in (arg, env, home) if p.exists() and not want.is_relative_to(p)] == []


# ---------------------------------------------------------------- every flag of every subcommand, one bad value at least

CUDA = torch.cuda.is_available()
FLAG_BAD = [  # (subcommand, flag, arguments, words the one stderr line must contain)
    ('run', '--preset', ['--preset', 'nope'], "unknown preset 'nope'"),
    ('run', '--seeds', ['--seeds', 'x'], "invalid int value: 'x'"),
    ('run', '--seeds', ['--seeds', '-1'], '--seeds -1: expected an int in [0, 9223372036854775807]'),
    ('run', '--seeds', ['--seeds', str(2**63)], f'--seeds {2**63}: expected an int in [0, 9223372036854775807]'),
    ('run', '--seeds', ['--seeds', '0', '--seeds', '1'], '--seeds given twice; expected each flag once'),
    ('run', '--seeds', ['--seeds', '0', '0'], 'seeds=[0, 0]; expected distinct ints >= 0'),
    ('run', '--out', ['--out', '{file}'], 'expected a folder, not a file'),
    ('run', '--out', ['--out', ''], "'': expected a non-empty path"),
    ('run', '--out', ['--out', '{file}/sub'], '{file} is a file'),
    ('run', '--device', ['--device', 'tpu'], "invalid choice: 'tpu'"),
    *([] if CUDA else [('run', '--device', ['--device', 'cuda'], 'CUDA is not available')]),
    ('run', '--cache', ['--cache', '{file}'], 'expected a folder, not a file'),
    ('run', '--cache', ['--cache', ''], "'': expected a non-empty path"),
    ('run', '--html', ['--html', '{dir}'], 'expected a file name, not a folder'),
    ('run', '--html', ['--html', '{file}/report.html'], '{file} is a file'),
    ('run', '--html', ['--out', '{dir}', '--html', '{dir}/results.json'], 'would overwrite the result file {dir}/results.json'),
    ('run', '--html', ['--out', '{dir}', '--seeds', '3', '--html', '{dir}/seeds/seed-3.json'], 'would overwrite the result file'),
    ('run', '--html', ['--html', '{dir}/x.html', '--html', '{dir}/y.html'], '--html given twice'),
    ('run', '--quiet', ['--quiet=yes'], "ignored explicit argument 'yes'"),
    ('run', '--root', ['--root', '{missing}'], 'is not a folder'),
    ('run', '--download', ['--download'], 'cannot download'),
    ('run', '--labels', ['--labels', 'fuzzy'], "invalid choice: 'fuzzy'"),
    ('run', '--select', ['--select', 'best'], "invalid choice: 'best'"),
    ('run', '--teachers', ['--teachers', '{missing}'], 'is not a folder'),
    ('run', '--teachers', ['--teachers', '{dir}'], 'holds no level{l}-teacher{k}.pt file'),
    ('run', '--backbone', ['--backbone', 'vgg'], 'expected one of effnet_lite0'),
    ('run', '--random-weights', ['--random-weights=1'], "ignored explicit argument '1'"),
    ('run', '--batch-size', ['--batch-size', '-1'], 'expected an int in [1, 1048576]'),
    ('run', '--batch-size', ['--batch-size', 'big'], "invalid int value: 'big'"),
    ('run', '--teacher-steps', ['--teacher-steps', '0'], 'expected an int in [1, 10000000]'),
    ('run', '--teacher-steps', ['--teacher-steps', '1000000000'], 'expected an int in [1, 10000000]'),
    ('run', '--data', ['--data', 'oops'], 'expected KEY=VALUE'),
    ('run', '--data', ['--data', 'n_teach=abc'], "expected an int or a float (digits-domains's n_teach)"),
    ('run', '--data', ['--data', 'n_teach=-5'], 'expected a count >= 1'),
    ('run', '--data', ['--data', 'val=2.5'], 'expected a share in (0, 1]'),
    ('run', '--data', ['--data', 'val=0.9', 'test=0.9'], '--data val=0.9 test=0.9: the shares add up to 1.8; expected less than 1'),
    ('run', '--data', ['--data', 'size=100000'], '--data size=100000: expected an int in [1, 1024]'),
    ('run', '--data', ['--data', 'n_teach=5', '--data', 'val=0.2'], '--data given twice'),
    ('run', '--data', ['--data', 'colour=red'], "digits-domains has no option 'colour'"),
    ('run', '--data', ['--data', 'cache_dir=/x'], 'cache_dir has its own flag; expected --cache'),
    ('run', '--data', ['--preset', 'fashion-mnist', '--data', 'n_teach=0.05'], "expected an int (fashion-mnist's n_teach)"),
    ('extract', '--preset', ['--preset', 'nope'], "unknown preset 'nope'"),
    ('extract', '--seeds', ['--seeds', 'x'], "invalid int value: 'x'"),
    ('extract', '--seeds', ['--seeds', '-1'], '--seeds -1: expected an int in [0, 9223372036854775807]'),
    ('extract', '--seeds', ['--seeds', str(2**70)], 'expected an int in [0, 9223372036854775807]'),
    ('extract', '--seeds', ['--seeds', '0', '0'], '--seeds 0 0: expected distinct ints >= 0'),
    ('extract', '--device', ['--device', 'tpu'], "invalid choice: 'tpu'"),
    *([] if CUDA else [('extract', '--device', ['--device', 'cuda'], 'CUDA is not available')]),
    ('extract', '--cache', ['--cache', '{file}'], 'expected a folder, not a file'),
    ('extract', '--cache', ['--cache', '{file}/sub'], '{file} is a file'),
    ('extract', '--cache', ['--cache', ' '], "' ': expected a non-empty path"),
    ('extract', '--quiet', ['--quiet=yes'], "ignored explicit argument 'yes'"),
    ('extract', '--root', ['--root', '{missing}'], 'is not a folder'),
    ('extract', '--download', ['--download'], 'cannot download'),
    ('extract', '--backbone', ['--backbone', 'vgg'], 'expected one of effnet_lite0'),
    ('extract', '--random-weights', ['--random-weights=1'], "ignored explicit argument '1'"),
    ('extract', '--batch-size', ['--batch-size', '0'], 'expected an int in [1, 1048576]'),
    ('extract', '--batch-size', ['--batch-size', 'big'], "invalid int value: 'big'"),
    ('extract', '--data', ['--data', 'n_teach=-5'], 'expected a count >= 1'),
    ('extract', '--data', ['--data', 'colour=red'], "digits-domains has no option 'colour'"),
    ('extract', '--data', ['--data', 'root=/x'], 'root has its own flag; expected --root'),
    ('bench', '--quick', ['--quick=1'], "ignored explicit argument '1'"),
    ('bench', '--json', ['--json', '{dir}'], 'expected a file name, not a folder'),
    ('bench', '--json', ['--json', '{file}/b.json'], '{file} is a file'),
    ('bench', '--json', ['--json', '{dir}/seeds/seed-0.json'], 'would overwrite a result file of a csl run'),
    ('bench', '--device', ['--device', 'tpu'], "invalid choice: 'tpu'"),
    ('bench', '--n', ['--n', '-5'], 'expected an int in [100, 100000000]'),
    ('bench', '--n', ['--n', '1000000000'], '--n 1000000000: expected an int in [100, 100000000]'),
    ('bench', '--n', ['--n', '100000000', '--d', '65536'], 'the synthetic data alone need'),
    ('bench', '--n', ['--n', 'ten'], "invalid int value: 'ten'"),
    ('bench', '--c', ['--c', '2'], 'expected an int in [3, 100000]'),
    ('bench', '--k', ['--k', '3'], 'expected a power of 2'),
    ('bench', '--k', ['--c', '4', '--k', '8'], 'expected at most the smallest --c (4)'),
    ('bench', '--d', ['--d', '0'], 'expected an int in [1, 65536]'),
    ('bench', '--epochs', ['--epochs', '0'], 'expected an int in [1, 10000]'),
    ('bench', '--lr', ['--lr', '-1'], 'expected a number > 0'),
    ('bench', '--lr', ['--lr', 'nan'], 'expected a number > 0'),
    ('bench', '--batch-size', ['--batch-size', '0'], 'expected an int in [1, 16777216]'),
    ('bench', '--precision', ['--precision', 'fp8'], "invalid choice: 'fp8'"),
    ('bench', '--threads', ['--threads', '-1'], 'expected an int in [0, 4096]'),
    ('bench', '--no-reference', ['--no-reference=1'], "ignored explicit argument '1'"),
    ('bench', '--in-process', ['--in-process=1'], "ignored explicit argument '1'"),
    ('presets', '--all', ['--all'], 'unrecognized arguments: --all'),
]


def _flags()->set:
    "(subcommand, flag) for every long option of every subcommand of `csl`."
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {(name, o) for name, sp in sub.choices.items() for a in sp._actions for o in a.option_strings if o.startswith('--') and o != '--help'}


def test_every_flag_has_a_bad_value():
    "A new flag needs a rule (csl.cli._RUN_RULES, _EXTRACT_RULES, csl.bench._BENCH_RULES) and a row in FLAG_BAD."
    missing = _flags() - {(s, f) for s, f, *_ in FLAG_BAD}
    assert not missing, f"flags without a bad value in FLAG_BAD: {sorted(missing)}"


def _files(root:Path)->set: return {p.relative_to(root) for p in root.rglob('*')}


@pytest.mark.parametrize('sub,flag,args,words', FLAG_BAD, ids=[f"{s} {' '.join(a)}" for s, f, a, w in FLAG_BAD])
def test_bad_flag_is_one_line_exit_2_before_any_work(tmp_path, monkeypatch, sub, flag, args, words):
    "Exit 2, one line on stderr naming the flag and what was expected, no traceback, nothing written, at once."
    (tmp_path/'cwd').mkdir(); (tmp_path/'home').mkdir(); (tmp_path/'a-folder').mkdir(); (tmp_path/'a-file').write_text('x')
    monkeypatch.chdir(tmp_path/'cwd'); monkeypatch.setenv('HOME', str(tmp_path/'home')); monkeypatch.setenv('CSL_CACHE', str(tmp_path/'cache'))
    fill = lambda s: s.replace('{file}', str(tmp_path/'a-file')).replace('{dir}', str(tmp_path/'a-folder')).replace('{missing}', str(tmp_path/'missing'))
    before, out, err = _files(tmp_path), io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: rc = main([sub, *map(fill, args)])
        except SystemExit as e: rc = e.code
    dt = time.perf_counter() - t0
    lines = [l for l in err.getvalue().splitlines() if l.strip()]
    assert rc == 2 and len(lines) == 1 and 'Traceback' not in err.getvalue(), (rc, err.getvalue())
    assert flag in lines[0] and fill(words) in lines[0], lines[0]
    assert out.getvalue() == '' and _files(tmp_path) == before  # rejected before any work: nothing printed, nothing written
    assert dt < 20, dt  # generous: a rejection takes milliseconds; work would take many seconds


CONSOLE_BAD = [(['bench', '--n', '-5'], '--n -5: expected an int in [100, 100000000]'),
               (['run', '--data', 'n_teach=abc'], '--data n_teach=abc: expected an int or a float'),
               (['run', '--data', 'n_teach=-5'], '--data n_teach=-5: expected a count >= 1'),
               (['run', '--batch-size', '-1'], '--batch-size -1: expected an int in [1, 1048576]'),
               (['run', '--teacher-steps', '0'], '--teacher-steps 0: expected an int in [1, 10000000]'),
               (['run', '--seeds', '0', '0'], '--seeds 0 0: seeds=[0, 0]; expected distinct ints >= 0')]


def test_bad_flags_through_the_console_script(tmp_path):
    "The failures of the issue, through the installed `csl` (all at once): exit 2, one line, no traceback, nothing written."
    (tmp_path/'cwd').mkdir()
    env = _clean_env(HOME=str(tmp_path/'cwd'), CSL_CACHE=str(tmp_path/'cache'))
    procs = [(subprocess.Popen([CSL, *a], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path/'cwd', env=env), w, time.perf_counter())
             for a, w in CONSOLE_BAD]
    for p, words, t0 in procs:
        out, err = p.communicate(timeout=300)
        lines = [l for l in err.splitlines() if l.strip()]
        assert p.returncode == 2 and len(lines) == 1 and 'Traceback' not in err and words in lines[0], (p.args, err)
        assert time.perf_counter() - t0 < 120  # generous: interpreter start and imports only
    assert sorted(tmp_path.rglob('*')) == [tmp_path/'cwd']  # no cache, no results folder


# ---------------------------------------------------------------- issue 23: the other files csl reads back

FASHION = Path('/usr/share/datasets/fashion-mnist')


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
@pytest.mark.parametrize('how', ['shape', 'count', 'nan', 'dtype'])
def test_fashion_mnist_cache_with_wrong_tensors_is_recomputed(tmp_path, how):
    "torchvision's processed/ files in the cache (plain tensors it prefers to the raw files): a wrong one is warned about and redone."
    from csl.data import fashion_mnist
    ref = fashion_mnist(cache_dir=tmp_path, n_pool=500, n_test=500)
    proc = tmp_path/'FashionMNIST'/'processed'; proc.mkdir()
    for name, n in (('training.pt', 60_000), ('test.pt', 10_000)):
        x, y = torch.zeros(n, 28, 28, dtype=torch.uint8), torch.arange(n) % 10
        x = {'shape': x[:, :8, :8], 'count': x[:-1], 'nan': x.float().fill_(float('nan')), 'dtype': x.long()}[how]
        torch.save((x, y[:len(x)]), proc/name)
    with pytest.warns(UserWarning, match='are not Fashion-MNIST .*recomputing'):
        got = fashion_mnist(cache_dir=tmp_path, n_pool=500, n_test=500)
    assert torch.equal(got.images, ref.images) and torch.equal(got.labels, ref.labels) and not proc.exists()


@pytest.mark.parametrize('what', ['fifo', 'dev-zero', 'deep', 'huge-key'])
def test_damaged_resume_file_is_redone(home_run, cache_copy, tmp_path, what):
    "A seed file that is a FIFO, a link to /dev/zero, JSON nested 100,000 deep or a dict where a list is expected: warned, redone, same rows."
    out = shutil.copytree(home_run[1]/'out', tmp_path/'out'); f = seed_file(out, 0); f.unlink()
    ref = json.loads((out/'results.json').read_text())
    if what == 'fifo': os.mkfifo(f)
    elif what == 'dev-zero': f.symlink_to('/dev/zero')
    elif what == 'deep': f.write_text('[' * 100_000 + ']' * 100_000)
    else: f.write_text(json.dumps({'key': {'a': 1}, 'history': 'x', 'histories': []}))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); res = run_experiment(DEFAULT_PRESET, [0], out, 'cpu', cache_copy)
    assert res['timing_s']['reused_seeds'] == [] and res['rows'] == ref['rows']
    if what != 'huge-key': assert any('is damaged' in str(x.message) and str(f) in str(x.message) for x in w), [str(x.message) for x in w]
    assert f.is_file() and not f.is_symlink()


def test_unwritable_cache_kind_folder_fails_before_any_work(tmp_path):
    "A teachers/ folder that cannot be written (here a file in its place: root ignores permissions) is exit 2 at once, not after training."
    (tmp_path/'cache').mkdir(); (tmp_path/'cache'/'teachers').write_text('x')
    err = io.StringIO(); t0 = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()): rc = main(['run', '--cache', str(tmp_path/'cache'), '--out', str(tmp_path/'out')])
    assert rc == 2 and f"--cache {tmp_path/'cache'/'teachers'}: cannot write there" in err.getvalue(), err.getvalue()
    assert time.perf_counter() - t0 < 20 and not (tmp_path/'out').exists() and sorted(p.name for p in (tmp_path/'cache').iterdir()) == ['teachers']


def test_backbone_weights_never_touch_torch_home(tmp_path, monkeypatch):
    "Backbone downloads go to <cache>/hub; TORCH_HOME is left alone; hub code only from the pinned DINOv2 commit, fetched afresh."
    from unittest import mock
    from urllib.error import URLError
    from csl.features import load_backbone, DINOV2_COMMIT
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'torch-home'))
    seen = []
    def offline(url, **kw): seen.append((url, torch.hub.get_dir(), kw.get('weights_only'))); raise URLError('offline')
    with mock.patch('torch.hub.load_state_dict_from_url', side_effect=offline):
        for name in ('dino_vitb8', 'dino_resnet50', 'alexnet'):
            with pytest.raises(InputError, match=f"backbone '{name}': could not load"): load_backbone(name, cache_dir=tmp_path/'cache')
    assert [(d, w) for _, d, w in seen] == [(str(tmp_path/'cache'/'hub'), True)] * 2 and not (tmp_path/'torch-home').exists()
    with mock.patch('torch.hub.load', return_value=torch.nn.Identity()) as hub:
        load_backbone('dinov2_vits14', cache_dir=tmp_path/'cache')
    assert hub.call_args.args[0] == f'facebookresearch/dinov2:{DINOV2_COMMIT}' and hub.call_args.kwargs['force_reload']
    assert torch.hub.get_dir() == str(tmp_path/'torch-home'/'hub')  # restored: TORCH_HOME's, as before


def test_incomplete_teachers_folder_fails_before_feature_extraction(tmp_path):
    "--teachers with a checkpoint missing: exit 2 naming the missing files, before any feature is extracted."
    t = tmp_path/'teachers'; t.mkdir()
    torch.save(logreg_model((1, 8, 8), 10, TeacherConfig()).state_dict(), checkpoint_path(t, 0, 0))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(['run', '--teachers', str(t), '--cache', str(tmp_path/'cache'), '--out', str(tmp_path/'out'), '--seeds', '0', '--quiet'])
    assert rc == 2 and '14 of 15 missing (level1-teacher0.pt, level1-teacher1.pt, ' in err.getvalue(), err.getvalue()
    assert list((tmp_path/'cache'/'features').glob('*')) == []


class System:
    "The payload of the issue: unpickling it calls os.system."
    def __reduce__(self): return (os.system, ('touch /nonexistent-csl-marker',))


@pytest.mark.parametrize('how', ['torch.save', 'pickle'])
def test_blocked_payload_says_nothing_ran_and_never_quotes_the_retry_advice(tmp_path, how):
    "A refused os.system payload (cache entry, teacher checkpoint): the message says nothing ran, never 'weights_only=False'."
    buf = io.BytesIO(); torch.save({'x': System()}, buf) if how == 'torch.save' else buf.write(pickle.dumps({'x': System()}))
    p = buf.getvalue(); f = tmp_path/'entry.pt'; f.write_bytes(_MAGIC + hashlib.sha256(p).hexdigest().encode() + p)
    with pytest.warns(UserWarning) as rec: cached(f, lambda: torch.ones(1), kind='x')
    ck = tmp_path/'ck'; ck.mkdir(); checkpoint_path(ck, 0, 0).write_bytes(p)
    with pytest.raises(InputError) as e: load_teacher(logreg_model((1, 8, 8), 10, TeacherConfig()), ck, 0, 0)
    for m in (next(str(w.message) for w in rec if 'recomputing' in str(w.message)), str(e.value)):
        assert 'nothing in it ran' in m and 'weights_only' not in m and 'arbitrary code' not in m, m


def test_deeply_nested_json_in_a_flag_is_one_line():
    "--data n_teach=[[[...]]] nested 100,000 deep: read as text (not JSON past Python's limit), then refused by type."
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(['run', '--data', 'n_teach=' + '[' * 100_000 + ']' * 100_000])
    assert rc == 2 and len(err.getvalue().splitlines()) == 1 and "expected an int or a float (digits-domains's n_teach)" in err.getvalue()


def test_dataset_files_special_or_crafted_are_one_input_error(tmp_path):
    "ImageNet's meta.bin with an os.system payload, or a FIFO; a CIFAR-100 pickle linked to /dev/zero: one InputError each, at once."
    from csl.data import fake_imagenet
    root = fake_imagenet(tmp_path/'in'); meta = Path(root)/'meta.bin'
    torch.save({'x': System()}, meta)
    with pytest.raises(InputError, match='nothing in it ran'): load_dataset('imagenet', root=root)
    meta.unlink(); os.mkfifo(meta)
    with pytest.raises(InputError, match='meta.bin is not a regular file'): load_dataset('imagenet', root=root)
    c = fake_cifar100(tmp_path/'c', n_train=2, n_test=1); f = c/'cifar-100-python'/'train'; f.unlink(); f.symlink_to('/dev/zero')
    with pytest.raises(InputError, match='train is not a regular file'): load_dataset('cifar-100', root=c)
