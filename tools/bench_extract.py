#!/usr/bin/env python
"""Images per second of `csl extract` with 1 and 2 processes on this machine's CPUs.

Runs the embedded default (`--preset digits`: 6,797 images, EfficientNet-Lite0, batch 256) as: one process with one
thread, one process with two threads, and `torchrun --standalone --nproc_per_node=2 -m csl.cli extract` (gloo, one
thread each). Every run starts from an empty feature cache (the data cache is copied in, so all runs load the same
way); the number is the strong-feature stage of `csl extract`'s own table (model loading, extraction, shard writes
and assembly; data loading excluded), the median of --repeats runs, taken in turns so that other load on the machine
hits every configuration alike. Prints a markdown table. Timing is measured here, never asserted in a test.

Usage: python tools/bench_extract.py [--repeats 3] [--preset digits] [--nproc 2]
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

BIN = Path(sys.executable).parent
CSL = shutil.which('csl', path=str(BIN)) or shutil.which('csl')
TORCHRUN = shutil.which('torchrun', path=str(BIN)) or shutil.which('torchrun')


def stage(stdout:str)->tuple:
    "(seconds, images/s, processes) of the strong-feature row of `csl extract`'s table."
    row = next(l for l in stdout.splitlines() if l.startswith('| strong features'))
    cells = [c.strip() for c in row.strip('|').split('|')]
    return float(cells[3]), float(cells[4]), int(cells[5])


def run(cmd:list, threads:int, cache:Path)->tuple:
    "Run one configuration on a fresh cache: (stage seconds, images/s, processes, wall seconds)."
    env = {**{k: v for k, v in os.environ.items() if k != 'CSL_CACHE'}, 'OMP_NUM_THREADS': str(threads)}
    t0 = time.perf_counter()
    args = [*cmd, '--seeds', '0', '--quiet', '--cache', str(cache)]
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode: sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    return (*stage(p.stdout), wall)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--repeats', type=int, default=3, help='runs per configuration (median reported)')
    ap.add_argument('--preset', default='digits', help='preset to extract (default: digits, the embedded default)')
    ap.add_argument('--nproc', type=int, default=2, help='processes for the torchrun configuration')
    a = ap.parse_args()
    extract = [CSL, 'extract', '--preset', a.preset]
    configs = [('1', 1, extract), ('1', a.nproc, extract),
               (f'{a.nproc} (torchrun)', 1, [TORCHRUN, '--standalone', f'--nproc_per_node={a.nproc}', '-m', 'csl.cli',
                                             'extract', '--preset', a.preset])]
    tmp = Path(tempfile.mkdtemp(prefix='csl-bench-extract-'))
    try:
        run(extract, 1, tmp/'warm')  # fills the data cache once (and warms the file cache)
        got = {i: [] for i in range(len(configs))}
        load0 = os.getloadavg()[0]
        for r in range(a.repeats):
            for i, (_, threads, cmd) in enumerate(configs):
                cache = tmp/f'run-{r}-{i}'
                shutil.copytree(tmp/'warm'/'data', cache/'data')
                got[i].append(run(cmd, threads, cache))
                shutil.rmtree(cache)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
        load1 = os.getloadavg()[0]
        print(f"preset {a.preset}, {a.repeats} runs each, {cores} cores, load average {load0:.2f} -> {load1:.2f}\n")
        print('| processes | threads each | images/s | stage s | whole command s | speed-up |')
        print('|---|---|---|---|---|---|')
        base = statistics.median(x[1] for x in got[0])
        for i, (procs, threads, _) in enumerate(configs):
            ips, secs, wall = (statistics.median(x[k] for x in got[i]) for k in (1, 0, 3))
            print(f"| {procs} | {threads} | {ips:.0f} | {secs:.2f} | {wall:.1f} | {ips / base:.2f}x |")
    finally: shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__': main()
