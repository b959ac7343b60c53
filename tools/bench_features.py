#!/usr/bin/env python
"""Time feature extraction for the embedded default (digits-domains, effnet_lite0): cold (empty temp cache) and warm (cached).

Usage: python tools/bench_features.py [--backbone effnet_lite0] [--device auto] [--keep]
Targets on 2 CPU cores: cold <= 30 s, warm <= 2 s.
"""
import argparse, os, shutil, subprocess, sys, tempfile, time


def _warm_process(backbone, device):
    "Fresh interpreter on a populated cache: imports + data + cached features, as a user's second run sees it."
    t0 = time.perf_counter()
    from csl.data import load_dataset
    from csl.features import get_features
    t1 = time.perf_counter(); data = load_dataset('digits-domains')
    t2 = time.perf_counter(); f = get_features(data, backbone, device=device)
    t3 = time.perf_counter()
    print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f} {tuple(f.shape)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--backbone', default='effnet_lite0')
    ap.add_argument('--device', default='auto')
    ap.add_argument('--keep', action='store_true', help='keep the temporary cache folder')
    ap.add_argument('--_warm', action='store_true', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._warm: return _warm_process(a.backbone, a.device)

    cache = tempfile.mkdtemp(prefix='csl-bench-')
    os.environ['CSL_CACHE'] = cache
    try:
        import torch
        from csl.data import load_dataset
        from csl.features import get_features, feature_cache_path
        t0 = time.perf_counter(); data = load_dataset('digits-domains'); t_load = time.perf_counter() - t0
        t0 = time.perf_counter(); cold = get_features(data, a.backbone, device=a.device); t_cold = time.perf_counter() - t0
        t0 = time.perf_counter(); warm = get_features(data, a.backbone, device=a.device); t_warm = time.perf_counter() - t0
        assert torch.equal(cold, warm), 'warm features differ from cold ones'
        out = subprocess.run([sys.executable, __file__, '--_warm', '--backbone', a.backbone, '--device', a.device],
                             capture_output=True, text=True, env=dict(os.environ, CSL_CACHE=cache), check=True).stdout.split()
        t_imp, t_load2, t_feat2 = map(float, out[:3])
        size = feature_cache_path(data, a.backbone).stat().st_size
        print(f"data      : {data.name}, {len(data)} images {tuple(data.images.shape[1:])}, fingerprint {data.fingerprint}")
        print(f"backbone  : {a.backbone}, features {tuple(cold.shape)}, torch threads {torch.get_num_threads()}, cache file {size / 1e6:.1f} MB")
        print(f"load data : {t_load:.2f} s")
        print(f"cold      : {t_cold:.2f} s  (extract + write, empty cache {cache})")
        print(f"warm      : {t_warm:.3f} s  (read cached features, same process)")
        print(f"warm run  : {t_imp + t_load2 + t_feat2:.2f} s  (fresh process: imports {t_imp:.2f} + data {t_load2:.2f} + cached features {t_feat2:.3f})")
    finally:
        if not a.keep: shutil.rmtree(cache, ignore_errors=True)


if __name__ == '__main__': main()
