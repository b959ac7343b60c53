"""Every public config and entry function checks its arguments before any work: a wrong type, a wrong range and a
non-finite value each raise one `InputError` that names the argument (never a bare TypeError, a later failure
somewhere else, or a silent acceptance)."""
import math
import pytest
import torch

from csl.core import InputError, CSLError, set_seed, SEED_MAX
from csl.hierarchy import Hierarchy
from csl.student import ProbeConfig
from csl.teachers import TeacherConfig, train_teachers
from csl.cosupervise import CSLConfig, co_supervise, synthetic_problem
from csl.data import load_dataset
from csl.features import get_features
from csl.experiments import build_problem, run_experiment, configure

torch.set_num_threads(1)
NAN, INF = float('nan'), float('inf')
SP = synthetic_problem(60)


class Boom:
    "Stands in for an argument that must never be reached: the check comes first."
    def __getattr__(self, name): raise AssertionError(f'work started: {name} was read before the arguments were checked')


# per config: field -> (wrong type, wrong range); the non-finite value is NaN or inf
CONFIG_BAD = {
    ProbeConfig: dict(hidden=('8', -1), epochs=(2.5, 0), lr=('0.1', -1.), wd=(None, -0.1), batch_size=(1.0, 0),
                      soft=('no', 2), aux_conf=('0', 1.5), aux_warmup=([], -0.5), standardize=('yes', 1),
                      eval_batch_size=('1', 0), fast=(0.0, 3), precision=(16, 'fp16'), select=(1, 'best')),
    TeacherConfig: dict(kind=(3, ''), n_per_teacher=('10', 0), epochs=('3', 0), steps=(1.5, 10**9), lr=('1', 0.),
                        wd=('x', -1.), batch_size=('8', 0), grid=(8.0, 0), pretrained=('no', 2), budget=(1, 'all'),
                        checkpoints=(3, ''), cosine_steps=('1', 0)),
    CSLConfig: dict(assign=(1, 'best'), filter=(None, 'top9'), local_global=('1', -1), rounds=(1.0, 0),
                    reinit=('no', 2), scale_epochs=(1, -1), neighbours=('10', -1), probe=({'epochs': 1}, None),
                    epoch_rule=(1, 'ceil'), keep_better=('no', 2), route_keep=('yes', 2)),
}
# (call, argument, wrong type, wrong range, non-finite): `call(v)` passes `v` as `argument`, every other one valid
WALK = [
    *[(lambda v, cls=cls, k=k: cls(**{k: v}), k, t, r, NAN if i % 2 else INF)
      for cls, bad in CONFIG_BAD.items() for i, (k, (t, r)) in enumerate(bad.items())],
    (lambda v: Hierarchy.class_blocks(v), 'n_classes', '10', 0, INF),
    (lambda v: Hierarchy.class_blocks(10, depth=v), 'depth', '2', -1, NAN),
    (lambda v: Hierarchy.class_blocks(10, branching=v), 'branching', 2.0, 1, INF),
    (lambda v: Hierarchy.domains(v), 'n_domains', '2', 0, NAN),
    (lambda v: Hierarchy.superclasses(v), 'groups', 'ab', [], NAN),
    (lambda v: Hierarchy.superclasses([[0], [1]], n_classes=v), 'n_classes', '2', 0, INF),
    (lambda v: Hierarchy([[[0, 1]]], n_units=v), 'n_units', '2', 0, NAN),
    (lambda v: set_seed(v), 'seed', '0', SEED_MAX + 1, NAN),
    (lambda v: co_supervise(SP, seed=v), 'seed', '0', 2**70, NAN),
    (lambda v: co_supervise(SP, baselines=v), 'baselines', 'no', 2, NAN),
    (lambda v: build_problem('digits-by-domain', seed=v, cache_dir=Boom()), 'seed', '0', -1, INF),
    (lambda v: run_experiment('digits-by-domain', seeds=v, out=Boom()), 'seeds', 0, [SEED_MAX + 1], [NAN]),
    (lambda v: train_teachers(Boom(), Boom(), seed=v), 'seed', '0', 2**64, NAN),
    (lambda v: train_teachers(Boom(), Boom(), cfg=v), 'cfg', {'kind': 'logreg'}, CSLConfig(), NAN),
    (lambda v: get_features(Boom(), batch_size=v), 'batch_size', '256', 0, INF),
    (lambda v: get_features(Boom(), pretrained=v), 'pretrained', 'yes', 2, NAN),
    (lambda v: get_features(Boom(), dtype=v), 'dtype', 'float32', torch.int64, NAN),
    (lambda v: load_dataset('digits-domains', seed=v), 'seed', '1', -1, NAN),
    (lambda v: load_dataset('digits-domains', size=v), 'size', '16', 100_000, NAN),
    (lambda v: load_dataset('digits-domains', val=v), 'val', '0.1', 0.9, NAN),
    (lambda v: load_dataset('digits-domains', n_teach=v), 'n_teach', '5', -5, INF),
    (lambda v: configure('digits-by-domain', batch_size=v), 'batch_size', '8', 0, NAN),
    (lambda v: configure('digits-by-domain', teacher_steps=v), 'steps', '8', 10**9, INF),
]
CASES = [(f"{i:02d}-{arg}-{what}", call, arg, v) for i, (call, arg, *bad) in enumerate(WALK)
         for what, v in zip(('type', 'range', 'nonfinite'), bad)]


@pytest.mark.parametrize('what,call,arg,value', CASES, ids=[c[0] for c in CASES])
def test_bad_argument_is_one_input_error_naming_it(what, call, arg, value):
    with pytest.raises(InputError) as e: call(value)
    msg = str(e.value)
    assert f'{arg}=' in msg or f'{arg} ' in msg or f'{arg}:' in msg, msg
    assert '\n' not in msg and 'expected' in msg, msg


def test_every_config_field_is_walked():
    "A new field of a public config needs a row in CONFIG_BAD."
    import dataclasses
    for cls, bad in CONFIG_BAD.items(): assert [f.name for f in dataclasses.fields(cls)] == list(bad), cls


def test_one_error_hierarchy():
    "Every error csl raises on purpose is a CSLError: bad input (also a ValueError) or a bad cache file."
    from csl.core import CacheError
    assert issubclass(InputError, CSLError) and issubclass(InputError, ValueError)
    assert issubclass(CacheError, CSLError) and not issubclass(CacheError, InputError)
