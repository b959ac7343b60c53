"""Property-based tests (hypothesis) of the hierarchy, the gates and the filters.

Every test fixes its example count with `@settings(max_examples=...)` and runs derandomized with no example
database, so CI sees the same examples on every run. Tensors are drawn from a seeded torch generator (the seed
is a hypothesis integer), sizes and partitions are drawn by hypothesis itself so that failures shrink.
"""
import torch
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from csl.core import InputError
from csl.data import Hierarchy
from csl.assign import GateInput, ASSIGNERS, ownership, oracle, ensemble, assignment_accuracy, scope, neighbours, scope_mass
from csl.denoise import teacher_student, local_global, compose, keep_all, precision_recall

torch.set_num_threads(1)


def cfg(n):
    "Fixed example count, derandomized, no database, no deadline (first calls into torch are slow)."
    return settings(max_examples=n, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------- strategies

@st.composite
def partitions(draw, units, max_parts=3):
    "A random partition of `units` into 1..max_parts non-empty scopes (not necessarily contiguous)."
    units = draw(st.permutations(units))
    parts = draw(st.integers(1, min(max_parts, len(units))))
    cuts = sorted(draw(st.lists(st.integers(1, len(units) - 1), min_size=parts - 1, max_size=parts - 1, unique=True))) if parts > 1 else []
    bounds = [0, *cuts, len(units)]
    return [sorted(units[a:b]) for a, b in zip(bounds, bounds[1:])]


@st.composite
def hierarchies(draw, max_units=12, max_depth=3, kind='class'):
    "Nested random partitions: level 0 is every unit, each deeper level splits every scope of the one above."
    n = draw(st.integers(1, max_units)); depth = draw(st.integers(0, max_depth))
    levels = [[list(range(n))]]
    for _ in range(depth):
        levels.append([s for scope in levels[-1] for s in draw(partitions(scope))])
    return Hierarchy(levels, kind, n)


@st.composite
def gate_case(draw, n_max=40):
    "(hierarchy level with K >= 1 teachers, N, seed): a class hierarchy and one of its levels."
    h = draw(hierarchies(max_units=10))
    l = draw(st.integers(0, h.n_levels - 1))
    return h, l, draw(st.integers(1, n_max)), draw(st.integers(0, 2**31 - 1))


def rand_probs(gen, *shape, scale=3.0):
    "Random probability rows over the last dimension (peaked enough to have a clear argmax)."
    return torch.softmax(torch.randn(*shape, generator=gen) * scale, -1)


# ---------------------------------------------------------------- hierarchy

@cfg(200)
@given(hierarchies())
def test_hierarchy_invariants(h):
    "owner, parent and scope_mask agree with the scopes, and every child scope lies inside its parent's."
    u = h.n_units
    assert h.n_teachers(0) == 1 and h.levels[0] == [list(range(u))]
    for l in range(h.n_levels):
        k, owner, mask = h.n_teachers(l), h.owner(l), h.scope_mask(l)
        assert owner.shape == (u,) and owner.dtype == torch.int64 and mask.shape == (k, u) and mask.dtype == torch.bool
        assert (mask.sum(0) == 1).all(), "each unit in exactly one scope"
        assert (mask.sum(1) >= 1).all(), "no empty scope"
        assert mask[owner, torch.arange(u)].all(), "owner points at the scope that holds the unit"
        for j, scope in enumerate(h.levels[l]):
            assert torch.nonzero(mask[j]).flatten().tolist() == scope
        if l:
            parent = h.parent(l)
            assert parent.shape == (k,) and 0 <= parent.min() and parent.max() < h.n_teachers(l - 1)
            assert (mask <= h.scope_mask(l - 1)[parent]).all(), "child scope inside its parent scope"
            assert (h.owner(l - 1) == parent[owner]).all(), "a unit's parent teacher owns it one level up"


@cfg(200)
@given(st.data())
def test_hierarchy_accepts_exactly_the_nested_levels(data):
    "Two independent partitions: the hierarchy builds iff every level-2 scope lies inside one level-1 scope."
    n = data.draw(st.integers(2, 10))
    l1, l2 = data.draw(partitions(list(range(n)), 4)), data.draw(partitions(list(range(n)), 5))
    nested = all(any(set(s) <= set(p) for p in l1) for s in l2)
    if nested: Hierarchy([[list(range(n))], l1, l2], 'class', n)
    else:
        with pytest.raises(InputError, match='straddles'): Hierarchy([[list(range(n))], l1, l2], 'class', n)


@cfg(100)
@given(st.integers(2, 64), st.integers(0, 3), st.integers(2, 3))
def test_class_blocks_are_contiguous_and_balanced(c, depth, branching):
    "The official hierarchy: contiguous class-index blocks whose sizes differ by at most one within a level."
    if branching ** depth > c:
        with pytest.raises(InputError): Hierarchy.class_blocks(c, depth, branching)
        return
    h = Hierarchy.class_blocks(c, depth, branching)
    for l, lvl in enumerate(h.levels):
        assert len(lvl) == branching ** l
        assert all(s == list(range(s[0], s[-1] + 1)) for s in lvl)
        sizes = [len(s) for s in lvl]; assert max(sizes) - min(sizes) <= 1


# ---------------------------------------------------------------- gates

@cfg(150)
@given(gate_case())
def test_gates_return_distributions(case):
    "Every gate returns (N, K) weights and (N, C) float32 label rows that sum to 1; routing gates name a valid teacher."
    h, l, n, seed = case
    gen = torch.Generator().manual_seed(seed); k, c = h.n_teachers(l), h.n_units
    parent = dict(parent_probs=rand_probs(gen, n, h.n_teachers(l - 1), c), parent=h.parent(l)) if l else {}
    g = GateInput(rand_probs(gen, n, k, c).half(), h.owner(l), student_probs=rand_probs(gen, n, c),
                  true_unit=torch.randint(0, c, (n,), generator=gen), neighbour_probs=rand_probs(gen, n, c), **parent)
    for name, fn in ASSIGNERS.items():
        a = fn(g)
        assert a.weights.shape == (n, k) and a.labels.shape == (n, c) and a.labels.dtype == torch.float32, name
        assert torch.allclose(a.labels.sum(1), torch.ones(n), atol=1e-5) and torch.allclose(a.weights.sum(1), torch.ones(n), atol=1e-5), name
        assert (a.weights >= 0).all() and (a.labels >= 0).all(), name
        if a.teacher is not None: assert a.teacher.dtype == torch.int64 and 0 <= a.teacher.min() and a.teacher.max() < k, name


@cfg(150)
@given(gate_case())
def test_scope_gates_pick_the_teacher_with_the_most_mass(case):
    "`scope` routes to a teacher whose scope holds the most student mass; `neighbours` the same for the neighbourhood's."
    h, l, n, seed = case
    gen = torch.Generator().manual_seed(seed); k, c = h.n_teachers(l), h.n_units
    s, nb = rand_probs(gen, n, c), rand_probs(gen, n, c)
    g = GateInput(rand_probs(gen, n, k, c), h.owner(l), student_probs=s, neighbour_probs=nb)
    for gate, p in ((scope, s), (neighbours, nb)):
        mass = scope_mass(p, h.owner(l), k)  # (N, K)
        got = mass.gather(1, gate(g).teacher[:, None]).squeeze(1)
        assert torch.allclose(got, mass.amax(1)), gate.__name__


@cfg(150)
@given(gate_case())
def test_ownership_routes_inside_the_scope_of_the_students_top1(case):
    "The chosen teacher's scope contains the student's top-1 class, and the label is that teacher's row."
    h, l, n, seed = case
    gen = torch.Generator().manual_seed(seed); k, c = h.n_teachers(l), h.n_units
    tp, s = rand_probs(gen, n, k, c), rand_probs(gen, n, c)
    a = ownership(GateInput(tp, h.owner(l), student_probs=s))
    assert h.scope_mask(l)[a.teacher, s.argmax(1)].all()
    assert torch.allclose(a.labels, tp[torch.arange(n), a.teacher], atol=1e-6)


@cfg(150)
@given(gate_case())
def test_oracle_and_a_perfect_student_assign_perfectly(case):
    "The oracle's assignment accuracy is 1, and so is ownership's when the student's top-1 is the true class."
    h, l, n, seed = case
    gen = torch.Generator().manual_seed(seed); k, c = h.n_teachers(l), h.n_units
    y = torch.randint(0, c, (n,), generator=gen)
    right = torch.softmax(torch.randn(n, c, generator=gen) + 20 * torch.nn.functional.one_hot(y, c), 1)  # (N, C) top-1 = y
    g = GateInput(rand_probs(gen, n, k, c), h.owner(l), student_probs=right, true_unit=y)
    true_teacher = h.owner(l)[y]
    assert assignment_accuracy(oracle(g), true_teacher) == 1.0
    assert assignment_accuracy(ownership(g), true_teacher) == 1.0


@cfg(100)
@given(gate_case())
def test_identical_teachers_give_that_teacher(case):
    "K copies of one teacher: the ensemble, and every other gate, gives exactly that teacher's labels."
    h, l, n, seed = case
    gen = torch.Generator().manual_seed(seed); k, c = h.n_teachers(l), h.n_units
    t = rand_probs(gen, n, c)
    parent = dict(parent_probs=rand_probs(gen, n, h.n_teachers(l - 1), c), parent=h.parent(l)) if l else {}
    g = GateInput(t[:, None].expand(n, k, c).contiguous(), h.owner(l), student_probs=rand_probs(gen, n, c),
                  true_unit=torch.randint(0, c, (n,), generator=gen), neighbour_probs=rand_probs(gen, n, c), **parent)
    for name, fn in ASSIGNERS.items():
        assert torch.allclose(fn(g).labels, t, atol=1e-5), name
    assert torch.allclose(ensemble(g).weights, torch.full((n, k), 1 / k))


# ---------------------------------------------------------------- filters

filter_case = st.tuples(st.integers(1, 60), st.integers(2, 12), st.integers(0, 2**31 - 1), st.booleans())


@cfg(200)
@given(filter_case, st.data())
def test_teacher_student_keep_rate_and_size(case, data):
    "Keep rate in [0, 1]; kept-set size = round(rate x N); rate = top-k agreement; rate grows with k; k = C keeps all."
    n, c, seed, ties = case
    k = data.draw(st.integers(1, c))
    gen = torch.Generator().manual_seed(seed)
    s = rand_probs(gen, n, c)
    if ties: s = torch.full((n, c), 1 / c)  # every class ties: the rank rule must still give a whole, consistent set
    yw = torch.randint(0, c, (n,), generator=gen)
    kept = teacher_student(yw, s, k)
    assert 0.0 <= kept.rate <= 1.0 and kept.mask.dtype == torch.bool and kept.mask.shape == (n,)
    assert kept.n_kept == round(kept.rate * n)
    if not ties: assert kept.rate == (s.topk(k, 1).indices == yw[:, None]).any(1).sum().item() / n
    if k < c: assert teacher_student(yw, s, k + 1).rate >= kept.rate
    assert teacher_student(yw, s, c).rate == 1.0


@cfg(150)
@given(filter_case, st.data())
def test_local_global_and_compose(case, data):
    "local_global: rate in [0, 1], size = round(rate x N), monotone in k; compose is the AND of the masks."
    n, c, seed, _ = case
    k = data.draw(st.integers(1, c))
    gen = torch.Generator().manual_seed(seed)
    parent, s, yw = rand_probs(gen, n, c), rand_probs(gen, n, c), torch.randint(0, c, (n,), generator=gen)
    lg = local_global(yw, parent, k)
    assert 0.0 <= lg.rate <= 1.0 and lg.n_kept == round(lg.rate * n)
    if k < c: assert (local_global(yw, parent, k + 1).mask >= lg.mask).all()
    ts = teacher_student(yw, s, data.draw(st.integers(1, c)))
    both = compose(ts, lg, keep_all(yw))
    assert (both.mask == (ts.mask & lg.mask)).all() and both.n_kept == round(both.rate * n)
    assert both.rate <= min(ts.rate, lg.rate)  # exact fractions: no rounding slack


@st.composite
def noisy_labels(draw):
    "Truth, teacher labels with planted noise (a random WRONG class on a random subset), and a seed."
    n, c = draw(st.integers(1, 80)), draw(st.integers(2, 10))
    seed = draw(st.integers(0, 2**31 - 1)); noise = draw(st.floats(0.0, 0.9))
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=gen)
    noisy = torch.rand(n, generator=gen) < noise
    yw = torch.where(noisy, (y + torch.randint(1, c, (n,), generator=gen)) % c, y)  # wrong class where noisy
    return y, yw, c, gen


def confident_right(y, c, gen):
    "A judge that is right and confident: top-1 is the true class with probability > 1/2 on every sample."
    n = len(y)
    top = 0.5 + 0.49 * torch.rand(n, generator=gen)  # (N,) in (0.5, 0.99)
    rest = torch.rand(n, c, generator=gen).scatter(1, y[:, None], 0.0)  # (N, C)
    rest = rest / rest.sum(1, keepdim=True).clamp_min(1e-12) * (1 - top)[:, None]
    return rest.scatter(1, y[:, None], top[:, None])  # (N, C)


@cfg(200)
@given(noisy_labels(), st.data())
def test_filter_never_lowers_precision_with_a_right_confident_student(case, data):
    """Planted noise, and a student that is right with top-1 probability > 1/2: every clean label then has a
    smaller student loss than every noisy one, so the loss-ranked kept set takes clean samples first and its
    precision is never below the raw labels' (for any k). With k = 1 it keeps exactly the clean samples.
    (With an arbitrary student the claim is false: a student that agrees with a wrong label keeps it.)"""
    y, yw, c, gen = case
    s = confident_right(y, c, gen)
    raw = (yw == y).double().mean().item()
    k = data.draw(st.integers(1, c))
    kept = teacher_student(yw, s, k)
    if kept.n_kept:
        assert precision_recall(kept.mask, yw, y).precision >= raw - 1e-12
    k1 = teacher_student(yw, s, 1)
    assert (k1.mask == (yw == y)).all()


@cfg(150)
@given(noisy_labels())
def test_local_global_with_a_right_parent_keeps_exactly_the_clean_labels(case):
    "A parent whose top-1 is the truth: local_global(k=1) keeps a label iff it is correct (precision 1, recall 1)."
    y, yw, c, gen = case
    kept = local_global(yw, confident_right(y, c, gen), 1)
    assert (kept.mask == (yw == y)).all()
    p, r = precision_recall(kept.mask, yw, y)
    assert (p == 1.0 or not kept.n_kept) and (r == 1.0 or not (yw == y).any())
