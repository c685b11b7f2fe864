"""Time every metric on 640×480 triples: ``python -m fusionlib.bench [--profile smoke]``.

The triple is an MSRS test pair from the data root when present (a synthetic scene otherwise)
with its average fusion recoloured to RGB, the VIFB setting (colour VIS and fused, grey IR).
Torch runs on one thread (``--threads``), each item ``--repeats`` times after a warm-up; the
table keeps the fastest run: each metric on already prepared planes, then whole ``evaluate()``
calls (input conversion included), which is what the speed target is about. Written to ``reports/<profile>/metrics/bench.{csv,md}`` with provenance.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from fusionlib.data import find_pairs, split_dir
from fusionlib.data.synthetic import make_scene
from fusionlib.io import read_pair, to_array, to_tensor
from fusionlib.metrics import CONVENTIONS, METRICS, VIFB_METRICS, _metric_functions, evaluate, prepare
from fusionlib.common.baselines import average, fuse_rgb
from fusionlib.reports import Reporter


def triple(h: int = 480, w: int = 640) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(ir H×W, vis H×W×3, fused H×W×3) uint8 and where they came from."""
    folder = split_dir("msrs", "test")
    if folder.is_dir():
        s = find_pairs(folder)[0]
        ir, vis = read_pair(s.paths["ir"], s.paths["vi"])
        source = f"msrs/test/{s.name}"
    else:
        scene = make_scene(0, (h, w))
        ir, vis = (scene.ir * 255).round().astype(np.uint8), (scene.vis * 255).round().astype(np.uint8)
        source = "synthetic scene 0"
    ir, vis = ir[:h, :w], vis[:h, :w]
    fused = to_array(fuse_rgb(average)(to_tensor(ir), to_tensor(vis))[0])
    return ir, vis, fused, source


def _fastest(fn, repeats: int, device: str) -> float:
    fn()  # warm-up (allocations, CUDA kernels)
    times = []
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def bench(repeats: int = 3, device: str = "cpu", convention: str = "vifb") -> tuple[pd.DataFrame, str]:
    """Fastest wall time (ms) of each metric on prepared planes, and of whole :func:`evaluate` calls
    (input conversion included) for the 13 VIFB metrics and for all metrics but PI."""
    ir, vis, fused, source = triple()
    # on the CPU: the uint8 arrays a user passes; elsewhere: (C, H, W) tensors on the device
    images = [x if device == "cpu" else to_tensor(x)[0].to(device) for x in (ir, vis, fused)]
    conv = CONVENTIONS[convention]
    fns = _metric_functions(conv, None, None)
    p = prepare(*images, conv)
    rows = [{"timed": name, "VIFB": name in VIFB_METRICS, "ms": _fastest(lambda: fns[name](p), repeats, device)}
            for name in METRICS if name != "PI"]  # PI needs Ma's model (not available offline)
    for label, names in (("evaluate(): the 13 VIFB metrics", VIFB_METRICS),
                         ("evaluate(): all metrics but PI", [m for m in METRICS if m != "PI"])):
        rows.append({"timed": label, "VIFB": names == VIFB_METRICS,
                     "ms": _fastest(lambda: evaluate(*images, names, convention), repeats, device)})
    return pd.DataFrame(rows), source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusionlib.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per item; the fastest is kept")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    table, source = bench(args.repeats, args.device)
    rep = Reporter("metrics", "bench", args.profile, parameters={**vars(args), "triple": source}, device=args.device)
    rep.table(table, "bench", "new: metric timings on a 640×480 RGB triple", decimals=1)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"written to {rep.dir / 'bench.csv'} (triple: {source}, {args.threads} thread(s), {args.device})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
