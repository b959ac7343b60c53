"""No gold label reaches the method: the weak-to-strong protocol, proved on the real presets.

For the default preset (the embedded digits) and `fashion-mnist-blocks`, one seed, both kinds of teacher labels:
replace every gold label of the pool and the validation split by a wrong one (`csl.cosupervise.wrong_gold`; the
test labels are kept, so test accuracy stays comparable) and run the whole loop again. Every method row (naive W2S,
CSL and the official rule at every level, the ensemble, confidence routing) must have exactly the same test accuracy;
only rows defined by the truth (oracle, ceiling) may move, and they must (the poisoning reached the problem). The
preset's own selection rule is used, and for the digits also `select='weak'`, the rule that routes and filters the
validation split with the method's own gate and filters. The default gate reads the teachers' own labelled set (the
few-shot student's labels, the ones the teachers learnt from): counted in `gold['teach']`, never a pool or val label.
"""
import os
from dataclasses import replace
from pathlib import Path
import pytest
from csl.cosupervise import co_supervise, Report, wrong_gold
from csl.experiments import get_preset, build_problem, DEFAULT_PRESET
from csl.assign import NEEDS

METHODS = ('naive_w2s', 'csl', 'official', 'ensemble', 'confidence_routing')  # and every 'csl@L', 'official@L'


def method_rows(rep: Report) -> dict:
    "Test accuracy of every row the method computes (no gold label may change them)."
    return {r['method']: r['test_acc'] for r in rep.rows if r['method'].split('@')[0] in METHODS}


def check(preset, seed=0):
    _, p, _ = build_problem(preset, seed=seed)
    bad = wrong_gold(p)
    assert bool((bad.truth.labels[p.splits['val']] != p.truth.labels[p.splits['val']]).all())
    for kind in preset.labels:
        cfg = replace(preset.csl, probe=replace(preset.csl.probe, soft=kind == 'soft'))
        clean, poisoned = (Report.from_history(co_supervise(x, cfg, seed=seed, device='cpu')) for x in (p, bad))
        a, b = method_rows(clean), method_rows(poisoned)
        assert len(a) >= 2 + 2 * (p.n_levels - 1), sorted(a)  # every level of csl and official is compared
        assert a == b, {m: (a[m], b.get(m)) for m in a if a[m] != b.get(m)}
        moved = {r['method'] for r, s in zip(clean.rows, poisoned.rows) if r['test_acc'] != s['test_acc']}
        assert {'oracle', 'ceiling'} <= moved, moved
        for r in clean.rows:  # every label counted: no method row read a gold label of the pool or val
            if r['method'].split('@')[0] not in METHODS: continue
            assert (r['gold']['train'], r['gold']['select'], r['gold']['route']) == (0, 0, 0), r
            # the default gate reads the teachers' own labelled set (the few-shot student), and says so
            assert r['gold']['teach'] in (0, len(p.splits['teach'])), r
        assert clean.row('csl')['gold']['teach'] == (len(p.splits['teach']) if 'few_shot_probs' in NEEDS.get(cfg.assign, ())
                                                    else 0)


def test_default_preset_reads_no_gold_label():
    check(get_preset(DEFAULT_PRESET))


def test_weak_selection_reads_no_gold_label():
    p = get_preset(DEFAULT_PRESET)
    check(replace(p, csl=replace(p.csl, probe=replace(p.csl.probe, select='weak')), both_labels=False))


def test_confident_routes_read_no_gold_label():
    "The opt-in `route_keep` ranks routes by the gate's own confidence: with weak selection, still no gold label."
    p = get_preset(DEFAULT_PRESET)
    check(replace(p, csl=replace(p.csl, route_keep=True, probe=replace(p.csl.probe, select='weak')), both_labels=False))


def test_fashion_mnist_blocks_reads_no_gold_label():
    if not Path('/usr/share/datasets/fashion-mnist').exists() and not os.environ.get('CI'):
        pytest.skip("Debian's dataset-fashion-mnist is not installed (CI installs it)")
    check(get_preset('fashion-mnist-blocks'))
