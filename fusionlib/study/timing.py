"""Timings that size the profiles: every metric on 640×480 triples (``python -m fusionlib.study.timing
[--profile smoke]``), and seconds per training step of each paper at the crops and batches the
``cpu``/``gpu`` profiles choose between (``python -m fusionlib.study.timing --steps``).

The triple is an MSRS test pair from the data root when present (a synthetic scene otherwise)
with its average fusion recoloured to RGB, the VIFB setting (colour VIS and fused, grey IR).
Torch runs on one thread (``--threads``), each item ``--repeats`` times after a warm-up; the
table keeps the fastest run: each metric on already prepared planes, then whole ``evaluate()``
calls (input conversion included), which is what the speed target is about. Written to ``reports/<profile>/metrics/bench.{csv,md}`` with provenance.

``--steps`` trains each configuration of :func:`step_grid` (the papers' own training functions, on
the sample MSRS train split or synthetic scenes, in a private cache) once to warm up, then for 1 and
for ``1 + n`` steps, and reports (t₁₊ₙ − t₁)/n, which leaves out model construction, data caching and
the first step; torch keeps its default thread count. Run it on an idle machine. Written to ``reports/<profile>/steps/steps.{csv,md}``.
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
from fusionlib.metrics import CONVENTIONS, METRICS, VIFB_METRICS, metric_functions, evaluate, prepare
from fusionlib.common.baselines import average
from fusionlib.common.rgb import fuse_rgb
from fusionlib.study import registry
from fusionlib.study.reports import Reporter
from fusionlib.study.reproduce import environment


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
    fns = metric_functions(conv, None, None)
    p = prepare(*images, conv)
    rows = [{"timed": name, "VIFB": name in VIFB_METRICS, "ms": _fastest(lambda: fns[name](p), repeats, device)}
            for name in METRICS if name != "PI"]  # PI needs Ma's model (not available offline)
    for label, names in (("evaluate(): the 13 VIFB metrics", VIFB_METRICS),
                         ("evaluate(): all metrics but PI", [m for m in METRICS if m != "PI"])):
        rows.append({"timed": label, "VIFB": names == VIFB_METRICS,
                     "ms": _fastest(lambda: evaluate(*images, names, convention), repeats, device)})
    return pd.DataFrame(rows), source


def step_grid() -> list[tuple[str, int, int, str]]:
    """``(paper, crop, batch, what)``: the configurations the cpu/gpu profiles choose between (README "Profiles"),
    each paper's from its door."""
    return [(key, *row) for key, door in registry.papers().items() for row in door.step_grid]


def _train_seconds(paper: str, crop: int, batch: int, steps: int, folder, seed: int = 0,
                   what: str = "") -> dict[str, float]:
    """Wall seconds of ``steps`` optimiser steps of ``paper``'s own training glue, through its door: one row per
    label it returns (per stage where a paper trains in stages). ``seed`` keys content-addressed stage runs, so a
    warm-up with another seed re-uses none."""
    from fusionlib.train import TrainConfig
    door = registry.paper(paper)
    if door.train_seconds is None:
        raise ValueError(f"paper {paper!r} has no train_seconds in its door")
    return door.train_seconds(crop, batch, TrainConfig(epochs=1000, batch_size=batch, max_steps=steps, seed=seed), folder, what)


def step_seconds(grid=None, extra_steps: int = 3) -> pd.DataFrame:
    """Seconds per optimiser step for each configuration of ``grid`` (default :func:`step_grid`)."""
    import tempfile
    rows = []
    for paper, crop, batch, what in grid or step_grid():
        # a private cache: fresh runs, nothing resumed from an earlier measurement
        with tempfile.TemporaryDirectory() as tmp, environment({"FUSIONLIB_CACHE": tmp}):
            _train_seconds(paper, crop, batch, 1, f"{tmp}/warm", seed=1, what=what)  # imports, data caches, first calls
            one = _train_seconds(paper, crop, batch, 1, f"{tmp}/a", what=what)
            more = _train_seconds(paper, crop, batch, 1 + extra_steps, f"{tmp}/b", what=what)
        for key in one:
            rows.append({"paper": key, "crop": crop, "batch": batch, "what": what,
                         "s/step": (more[key] - one[key]) / extra_steps})
            print(f"{key:>14} {crop:>4}² batch {batch}: {rows[-1]['s/step']:.2f} s/step", flush=True)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusionlib.study.timing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per item; the fastest is kept")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", action="store_true", help="time training steps of each paper instead of the metrics")
    args = parser.parse_args(argv)
    if args.steps:
        table = step_seconds()
        rep = Reporter("steps", "bench", args.profile, parameters={"grid": step_grid(), "threads": torch.get_num_threads()},
                       device=args.device)
        rep.table(table, "steps", "new: seconds per training step", decimals=2,
                  title=f"new: seconds per training step ({torch.get_num_threads()} threads, {args.device})")
        print(f"written to {rep.dir / 'steps.csv'}")
        return 0
    torch.set_num_threads(args.threads)
    table, source = bench(args.repeats, args.device)
    rep = Reporter("metrics", "bench", args.profile, parameters={**vars(args), "triple": source}, device=args.device)
    rep.table(table, "bench", "new: metric timings on a 640×480 RGB triple", decimals=1)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"written to {rep.dir / 'bench.csv'} (triple: {source}, {args.threads} thread(s), {args.device})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
