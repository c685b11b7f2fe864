"""Timings that size the profiles: every metric on 640×480 triples (``python -m fusionlib.bench
[--profile smoke]``), and seconds per training step of each paper at the crops and batches the
``cpu``/``gpu`` profiles choose between (``python -m fusionlib.bench --steps``).

The triple is an MSRS test pair from the data root when present (a synthetic scene otherwise)
with its average fusion recoloured to RGB, the VIFB setting (colour VIS and fused, grey IR).
Torch runs on one thread (``--threads``), each item ``--repeats`` times after a warm-up; the
table keeps the fastest run: each metric on already prepared planes, then whole ``evaluate()``
calls (input conversion included), which is what the speed target is about. Written to ``reports/<profile>/metrics/bench.{csv,md}`` with provenance.

``--steps`` trains each configuration of :data:`STEP_GRID` (the papers' own training functions, on
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
from fusionlib.data.synthetic import make_scene, split_or_synthetic
from fusionlib.io import read_pair, to_array, to_tensor
from fusionlib.metrics import CONVENTIONS, METRICS, VIFB_METRICS, _metric_functions, evaluate, prepare
from fusionlib.common.baselines import average
from fusionlib.common.rgb import fuse_rgb
from fusionlib.reports import Reporter
from fusionlib.reproduce import environment


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


# (paper, crop, batch, what): the configurations the cpu/gpu profiles choose between (README "Profiles")
STEP_GRID = [
    ("lrcfuse", 64, 4, "n = 128, patches"), ("lrcfuse", 128, 4, "n = 128, patches"),
    ("dcmif", 64, 4, "three stages"), ("dcmif", 128, 4, "three stages"),
    ("iassf", 64, 4, "joint"), ("iassf", 128, 1, "joint"), ("iassf", 128, 2, "joint"),
    ("ldfusion", 128, 4, "W/O LDL (L_v only)"), ("ldfusion", 224, 4, "W/O LDL (L_v only)"),
    ("ldfusion", 128, 4, "full loss, random-init CLIP, 8 patch rounds"),
]


def _train_seconds(paper: str, crop: int, batch: int, steps: int, folder, seed: int = 0,
                   what: str = "") -> dict[str, float]:
    """Wall seconds of ``steps`` optimiser steps (per stage for DCMIF) of ``paper``'s own training glue
    (``seed`` keys DCMIF's content-addressed stage runs, so a warm-up with another seed re-uses none)."""
    from fusionlib.common.perceptual import loss_network
    from fusionlib.train import TrainConfig
    config = TrainConfig(epochs=1000, batch_size=batch, max_steps=steps, seed=seed)
    start = time.perf_counter()
    if paper == "lrcfuse":
        from fusionlib.data.patches import PatchDataset
        from fusionlib.lrcfuse import train as pipe
        patches = PatchDataset(split_or_synthetic("msrs", seed=0), crop, crop, count=16 * batch, seed=0)
        pipe.train(patches, config, folder, loss_network("lrcfuse", allow_random=True)[0], model_kwargs={"n": 128})
    elif paper == "dcmif":
        from fusionlib.dcmif import train as pipe
        _, info = pipe.train_dcmif(pipe.Variant(), pipe.training_set("msrs", crop), {s: config for s in ("jsrl", "vgii", "afri")})
        return {f"dcmif {stage}": s for stage, s in info["seconds"].items()}
    elif paper == "iassf":
        from fusionlib.iassf import train as pipe
        pipe.train(pipe.training_set("msrs", crop), config, folder)
    elif paper == "ldfusion":
        from fusionlib.ldfusion import clip as cd
        from fusionlib.ldfusion import train as pipe
        from fusionlib.ldfusion.loss import LanguageDrivenLoss
        language = what.startswith("full loss")  # else CLIP only builds the text directions
        clip, tokenizer, _ = cd.load_clip("ViT-B-32", None, allow_random=True)
        loss = LanguageDrivenLoss(clip, tokenizer, loss_network("ldfusion", allow_random=True)[0], rounds=8, language=language)
        pipe.train(pipe.training_set("msrs", crop), loss, config, folder)
    else:
        raise ValueError(f"unknown paper {paper!r}")
    return {paper: time.perf_counter() - start}


def step_seconds(grid=None, extra_steps: int = 3) -> pd.DataFrame:
    """Seconds per optimiser step for each configuration of ``grid`` (default :data:`STEP_GRID`)."""
    import tempfile
    rows = []
    for paper, crop, batch, what in grid or STEP_GRID:
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
    parser = argparse.ArgumentParser(prog="python -m fusionlib.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per item; the fastest is kept")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", action="store_true", help="time training steps of each paper instead of the metrics")
    args = parser.parse_args(argv)
    if args.steps:
        table = step_seconds()
        rep = Reporter("steps", "bench", args.profile, parameters={"grid": STEP_GRID, "threads": torch.get_num_threads()},
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
