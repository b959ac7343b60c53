#!/usr/bin/env python
"""GPU check of the co-supervision benchmark: our loop vs the reference-style loop on CUDA, time per level.

Usage: python tools/bench_gpu.py [--n 10000 40000 160000] [--c 100 1000] [--epochs 20] [--quick] [--json FILE] [--no-reference]
Same synthetic cases as `csl bench` (csl.bench): pool N, C classes, D = 384, K up to 8 (levels of 1, 2, 4, 8 teachers).
Each loop runs in a fresh process; prints seconds per level for both loops, their ratio, the test-accuracy
difference and peak GPU memory. Exits with status 2 and a clear message when CUDA is not available.
Budget: the default grid (6 cases, reference included) takes minutes on an H100/H200; `--quick` takes well under one.
"""
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    import torch
    if not torch.cuda.is_available():
        print(f"bench_gpu: CUDA is not available here (torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
              "run this on a machine with an NVIDIA GPU, or use `csl bench --device cpu` for the CPU benchmark.", file=sys.stderr)
        return 2
    from csl.bench import bench_main
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    if '--device' not in argv: argv += ['--device', 'cuda']
    if not any(a in argv for a in ('--n', '--quick')): argv += ['--n', '10000', '40000', '160000']
    return bench_main(argv)


if __name__ == '__main__': sys.exit(main())
