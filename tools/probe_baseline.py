"""Ground-truth linear probes on the embedded default: the strong features against weak pixel-level inputs.

Usage: python tools/probe_baseline.py   (prints one line per input; the strong ceiling must reach >= 90 %)
"""
import torch
from csl.core import accuracy
from csl.data import load_dataset
from csl.features import get_features
from csl.student import fit_probe, predict

d = load_dataset('digits-domains'); s = d.splits
train = torch.cat([s['teach'], s['pool']])  # every labelled-able training image; val picks the epoch, test reports
inputs = [('effnet_lite0 features', get_features(d)), ('raw 16x16 pixels', d.images.flatten(1)),
          ('effnet_lite0, random weights', get_features(d, pretrained=False))]
for name, x in inputs:
    p = fit_probe(x[train], d.labels[train], x_val=x[s['val']], y_val=d.labels[s['val']], device='cpu')
    print(f"{name:30s} D={x.shape[1]:4d}  ground-truth linear probe, test accuracy {accuracy(predict(p, x[s['test']]), d.labels[s['test']]):.3f}")
