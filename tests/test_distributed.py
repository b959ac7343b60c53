"""Data-parallel extraction under torchrun (issue 14), on this machine's CPUs (gloo). Two processes over the embedded
default write the very cache entry one process writes (same path, same bytes); a rank killed mid-run leaves its finished
shards and a relaunch reuses them; the teachers' AlexNet pass is sharded the same way; `csl run` afterwards extracts
nothing; the several-node command works (two 'nodes' on this machine). About a minute on 2 cores."""
import os, re, shutil, subprocess, sys, textwrap
from pathlib import Path
import pytest
import torch

from csl.core import load_cached, load_entry
from csl.features import shard_folder, shard_plan

BIN = Path(sys.executable).parent
CSL = shutil.which('csl', path=str(BIN)) or shutil.which('csl')
TORCHRUN = shutil.which('torchrun', path=str(BIN)) or shutil.which('torchrun')
N_DIGITS = 6797
pytestmark = pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                                reason='this torch has no torch.distributed with gloo')


def _env()->dict:
    "One thread per process, no cache folder from the environment (every command names its own)."
    env = {k: v for k, v in os.environ.items() if k != 'CSL_CACHE'}
    return {**env, 'OMP_NUM_THREADS': '1', 'PYTHONDONTWRITEBYTECODE': '1'}


def run(*args, timeout=300)->subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=_env())


def torchrun(*args, n=2, timeout=300)->subprocess.CompletedProcess:
    "`torchrun --standalone` (a local rendezvous on a free port) with `n` processes."
    return run(TORCHRUN, '--standalone', f'--nproc_per_node={n}', *args, timeout=timeout)


def entries(cache:Path)->list: return sorted((cache/'features').glob('*.pt'))


def reused_rows(stderr:str)->set:
    "The (start, stop) row ranges of the shards the log says were reused."
    return {(int(a), int(b)) for a, b in re.findall(r'reusing the shard of rows (\d+)-(\d+)', stderr)}


def extracted_rows(stderr:str, rank:int|None=None)->set:
    "The (start, stop) row ranges of the shards the log says were extracted and written (by `rank`, or by any)."
    found = re.findall(r'rows (\d+)-(\d+) written \(\d+/\d+ on rank (\d+)\)', stderr)
    return {(int(a), int(b)) for a, b, r in found if rank is None or int(r) == rank}


@pytest.fixture(scope='module')
def one(tmp_path_factory)->Path:
    "`csl extract` alone: the reference entry."
    cache = tmp_path_factory.mktemp('one')/'cache'
    p = run(CSL, 'extract', '--seeds', '0', '--cache', cache)
    assert p.returncode == 0, p.stderr[-3000:]
    assert '| 1 |' in p.stdout and 'extracting digits-domains-effnet_lite0-' in p.stderr
    [e] = entries(cache)
    return e


@pytest.fixture(scope='module')
def two(tmp_path_factory)->tuple:
    "`torchrun --nproc_per_node=2 -m csl.cli extract`: the same preset on two CPU processes."
    cache = tmp_path_factory.mktemp('two')/'cache'
    return torchrun('-m', 'csl.cli', 'extract', '--seeds', '0', '--cache', cache), cache


def test_two_processes_write_the_entry_one_process_writes(one, two):
    "Same cache key and path, bit-identical file; each rank extracted its own shards; no shard is left behind."
    p, cache = two
    assert p.returncode == 0, p.stderr[-3000:]
    [e] = entries(cache)
    assert e.name == one.name  # the same content-addressed key
    assert e.read_bytes() == one.read_bytes()  # on the CPU: bit-identical, not only close
    x = load_entry(e, 'features')  # kind and key checked too
    assert x.shape == (N_DIGITS, 160) and x.dtype == torch.float32 and torch.equal(x, load_entry(one, 'features'))
    plan = set(shard_plan(N_DIGITS, 256))
    by_rank = [extracted_rows(p.stderr, r) for r in (0, 1)]
    assert by_rank[0] and by_rank[1] and not by_rank[0] & by_rank[1] and by_rank[0] | by_rank[1] == plan
    assert not shard_folder(e).exists() and [d.name for d in (cache/'features').iterdir()] == [e.name]
    table = [l for l in p.stdout.splitlines() if l.startswith('| strong features')]
    assert len(table) == 1 and table[0].endswith('| 2 |') and e.name in table[0], p.stdout  # printed once, by rank 0


def test_csl_run_after_extract_extracts_nothing(two, tmp_path):
    "`csl run` alone on the cache `csl extract` filled: it trains teachers but extracts no feature."
    p, cache = two
    assert p.returncode == 0, p.stderr[-3000:]
    cache = shutil.copytree(cache, tmp_path/'cache')
    before = {f.name: f.stat().st_mtime_ns for f in entries(cache)}
    r = run(CSL, 'run', '--seeds', '0', '--cache', cache, '--out', tmp_path/'out', timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'extracting' not in r.stderr and 'teachers: training' in r.stderr, r.stderr
    assert {f.name: f.stat().st_mtime_ns for f in entries(cache)} == before


WORKER = '''
import os, signal, sys
import torch
from csl.data import CSLData, load_dataset
from csl.features import distributed, in_turn
mode, cache, rank = sys.argv[1], sys.argv[2], int(os.environ['RANK'])
if mode == 'kill':  # rank 1 is killed (SIGKILL) right after writing its third shard
    from csl.experiments import extract_preset
    made = []
    def log(m):
        sys.stderr.write(f"[rank {rank}] {m}\\n")  # one write: lines of two processes never mix
        if rank == 1 and m.startswith('extracting'): made.append(m)
        if len(made) == 3: os.kill(os.getpid(), signal.SIGKILL)
    extract_preset('digits', [0], 'cpu', cache, log)
if mode == 'alexnet':  # the alexnet_head teachers' backbone pass, random weights at 64 px, on 300 digits
    from csl.teachers import TeacherConfig, alexnet_features
    with distributed('cpu'):
        d = in_turn(lambda: load_dataset('digits-domains', cache_dir=cache))
        tiny = CSLData('digits-tiny', d.images[:300], d.labels[:300], d.classes, dict(test=torch.arange(300)))
        cfg = TeacherConfig(kind='alexnet_head', grid=64, pretrained=False)
        x = alexnet_features(tiny, cfg, 'cpu', cache, batch_size=32)
    print(rank, tuple(x.shape), x.dtype, flush=True)
'''


@pytest.fixture(scope='module')
def worker(tmp_path_factory)->Path:
    f = tmp_path_factory.mktemp('worker')/'worker.py'
    f.write_text(textwrap.dedent(WORKER))
    return f


def test_killed_rank_leaves_its_shards_and_a_relaunch_reuses_them(one, worker, tmp_path):
    "Rank 1 dies (SIGKILL) after 3 shards: the launch fails, no entry; the same command reuses every finished shard."
    cache = tmp_path/'cache'
    p = torchrun(worker, 'kill', cache)
    assert p.returncode != 0, p.stderr[-3000:]
    e = cache/'features'/one.name
    assert not e.exists()
    finished = {tuple(int(v) for v in f.name.split('-')[1:3]) for f in shard_folder(e).glob('rows-*.pt')}
    by_rank1 = extracted_rows(p.stderr, 1)
    assert len(by_rank1) == 3 and by_rank1 <= finished, (by_rank1, finished)
    q = torchrun('-m', 'csl.cli', 'extract', '--seeds', '0', '--cache', cache)
    assert q.returncode == 0, q.stderr[-3000:]
    reused, extracted = reused_rows(q.stderr), extracted_rows(q.stderr)
    assert reused == finished, (reused, finished)  # every finished shard reused, none recomputed
    assert extracted == set(shard_plan(N_DIGITS, 256)) - finished
    assert f'({len(finished)} reused)' in q.stderr
    assert e.read_bytes() == one.read_bytes() and not shard_folder(e).exists()


def test_teachers_backbone_pass_is_sharded_too(worker, tmp_path):
    "`alexnet_features` under torchrun: every rank gets the features; the entry is the one a single process writes."
    from csl.data import CSLData, load_dataset
    from csl.teachers import TeacherConfig, alexnet_features
    p = torchrun(worker, 'alexnet', tmp_path/'two')
    assert p.returncode == 0, p.stderr[-3000:]
    assert sorted(p.stdout.split('\n')[:2]) == ['0 (300, 9216) torch.float16', '1 (300, 9216) torch.float16'], p.stdout
    d = load_dataset('digits-domains', cache_dir=tmp_path/'one')
    tiny = CSLData('digits-tiny', d.images[:300], d.labels[:300], d.classes, dict(test=torch.arange(300)))
    with pytest.warns(UserWarning, match='random conv features'):
        alexnet_features(tiny, TeacherConfig(kind='alexnet_head', grid=64, pretrained=False), 'cpu', tmp_path/'one', 32)
    [a], [b] = entries(tmp_path/'one'), entries(tmp_path/'two')
    assert a.name == b.name and a.name.startswith('digits-tiny-alexnet_conv-') and a.read_bytes() == b.read_bytes()


def test_two_nodes_one_process_each(one, tmp_path):
    "The several-node command (--nnodes, --node-rank, a c10d rendezvous endpoint), two 'nodes' on this machine."
    import socket
    with socket.socket() as s:
        s.bind(('localhost', 0))
        port = s.getsockname()[1]
    cmd = [TORCHRUN, '--nnodes=2', '--nproc_per_node=1', '--rdzv-backend=c10d', f'--rdzv-endpoint=localhost:{port}',
           '--rdzv-id=csl-test', '-m', 'csl.cli', 'extract', '--seeds', '0', '--cache', str(tmp_path/'cache')]
    nodes = [subprocess.Popen(cmd[:1] + [f'--node-rank={r}'] + cmd[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=_env()) for r in (0, 1)]
    outs = [p.communicate(timeout=300) for p in nodes]
    for p, (o, e) in zip(nodes, outs): assert p.returncode == 0, e[-3000:]
    assert extracted_rows(outs[0][1], 0) and extracted_rows(outs[1][1], 1)  # both nodes extracted shards
    assert '| 2 |' in outs[0][0] and outs[1][0] == ''  # the table comes from rank 0 only
    [e] = entries(tmp_path/'cache')
    assert e.name == one.name and e.read_bytes() == one.read_bytes()
