"""IASSF's door into the study layer (:mod:`fusionlib.study.registry`): its notebooks, its checkpoints as
benchmark methods, its step timings, its checks of code and paper, its health evidence and its exercises.
"""

from __future__ import annotations

import math
import time

import pandas as pd
import torch

from fusionlib.metrics import higher_is_better
from fusionlib.study.exercises import Exercise
from fusionlib.study.health import PaperEvidence
from fusionlib.study.ledger import rank_of, wide_table
from fusionlib.study.registry import CheckpointSpec, Paper

__all__ = ["PAPER"]


def _build(**kwargs):
    from fusionlib.iassf.model import IASSF
    return IASSF(**kwargs)


def _fuser(model, device="cpu"):
    from fusionlib.iassf.inference import fuser
    return fuser(model, device)


def _train_seconds(crop, batch, config, folder, what):
    from fusionlib.iassf import train as pipe
    start = time.perf_counter()
    pipe.train(pipe.training_set("msrs", crop), config, folder)
    return {"iassf": time.perf_counter() - start}


def _blocks_add_parameters() -> tuple[bool, str]:
    from fusionlib.common.complexity import count_parameters
    from fusionlib.iassf.model import IASSF
    counts = {m: count_parameters(IASSF(blocks=m)) for m in (1, 3, 5, 7)}
    share = [(counts[b] - counts[a]) / 2 / counts[a] for a, b in zip((1, 3, 5), (3, 5, 7))]  # per block, of the model
    return all(s >= 0.01 for s in share), ("M = 1, 3, 5, 7: " + ", ".join(f"{c / 1e6:.3f} M" for c in counts.values())
                                           + "; each block adds " + ", ".join(f"{s * 100:.2f} %" for s in share)
                                           + " of the model (criterion for 'substantial': ≥ 1 %)")


def _consistency(values: pd.DataFrame, add) -> None:
    findings = []
    for table, data in (("Table I", "MSRS"), ("Table II", "MSRS"), ("Table III", "M3FD"), ("Table IV", "M3FD"),
                        ("Table V", "RoadScene"), ("Table VI", "RoadScene")):
        w = wide_table(values, table)
        r = {m: rank_of(w, "Ours", m) for m in w.columns}
        findings.append(f"{table} ({data}): first on {sum(v == 1 for v in r.values())}/{len(r)}"
                        + (f" ({', '.join(f'{m} {v}' for m, v in r.items() if v > 1)})" if any(v > 1 for v in r.values()) else ""))
    add("X7", "Tables I–VI: IASSF's rank on each metric", "; ".join(findings), True)

    t7i = wide_table(values, "Table VII")
    exceptions = [f"{row} {m} ({t7i.at[row, m]:.3f} vs {t7i.at['Ours', m]:.3f})" for row in t7i.index if row != "Ours"
                  for m in t7i.columns if pd.notna(t7i.at[row, m]) and ((t7i.at[row, m] > t7i.at["Ours", m]) == higher_is_better(m))
                  and t7i.at[row, m] != t7i.at["Ours", m]]
    add("X8", "Table VII: does removing any component lower every metric?",
        f"{len(exceptions)} exception(s): {', '.join(exceptions) or 'none'}", not exceptions)

    findings = []
    for table in ("Table VIII", "Table IX"):
        w = wide_table(values, table)
        winners = {m: w[m].idxmax() if higher_is_better(m) else w[m].idxmin() for m in w.columns}
        counts = pd.Series(winners).value_counts()
        findings.append(f"{table}: " + ", ".join(f"{k} best on {v}" for k, v in counts.items()))
    add("X9", "Tables VIII–IX: is there one best α and one best M?", "; ".join(findings), False)


def _scatter() -> float:
    from fusionlib.data.haze import scatter
    return float(scatter(torch.tensor(0.2, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64), 1.0))


def _recover() -> float:
    from fusionlib.data.haze import scatter
    # invert I = J·t + A(1 − t) for J; checked by scattering the result back
    j = (0.8 - 1.0) / 0.4 + 1.0
    assert math.isclose(float(scatter(torch.tensor(j, dtype=torch.float64), torch.tensor(0.4, dtype=torch.float64), 1.0)), 0.8)
    return j


def _dark_channel_value() -> float:
    from fusionlib.data.haze import dark_channel
    img = torch.full((1, 3, 3, 3), 0.7)
    img[0, 2, 1, 2] = 0.1  # blue channel of one pixel
    return float(dark_channel(img, patch=3)[0, 0, 1, 1])


def _linear_parameters() -> int:
    from fusionlib.common.complexity import count_parameters
    return count_parameters(torch.nn.Linear(256, 64))


def _conv_gflops() -> float:
    from fusionlib.common.complexity import count_flops
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to("meta")
    flops, _ = count_flops(conv, torch.zeros(1, 64, 256, 256, device="meta"))
    return flops / 1e9


def _extra_blocks() -> float:
    from fusionlib.common.complexity import count_parameters
    from fusionlib.iassf.model import IASSF
    with torch.device("meta"):
        return (count_parameters(IASSF(blocks=7)) - count_parameters(IASSF(blocks=5))) / 1e6


def _dark_channel():
    from fusionlib.data.haze import dark_channel
    return dark_channel


def _dark_cases() -> list[tuple[str, tuple]]:
    g = torch.Generator().manual_seed(6)
    one_blue = torch.full((1, 3, 5, 5), 0.7, dtype=torch.float64)
    one_blue[0, 2, 0, 0] = 0.1
    return [("a 16×20 image, 15×15 windows", (torch.rand(1, 3, 16, 20, generator=g, dtype=torch.float64), 15)),
            ("a batch of 2, 3×3 windows", (torch.rand(2, 3, 9, 11, generator=g, dtype=torch.float64), 3)),
            ("a dark value in a corner: windows cut at the border", (one_blue, 3)),
            ("one grey channel", (torch.rand(1, 1, 7, 7, generator=g, dtype=torch.float64), 5)),
            ("a 1×1 window: the per-pixel minimum", (torch.rand(1, 3, 4, 6, generator=g, dtype=torch.float64), 1))]


def _relative_positions():
    from fusionlib.iassf.model import relative_positions
    return relative_positions


def _relative_cases() -> list[tuple[str, tuple]]:
    return [(f"a {w}×{w} window", (w,)) for w in (1, 2, 4, 7)]


PAPER = Paper(
    key="iassf", title="IASSF — joint dehazing and fusion with prompts", chapter="IASSF",
    notebooks=("30_", "31_", "32_", "33_"), writer="32_",
    methods={"main": CheckpointSpec("IASSF", _build, _fuser, "IR + VIS (hazy VIS on the hazy set)", "both")},
    step_grid=((64, 4, "joint"), (128, 1, "joint"), (128, 2, "joint")), train_seconds=_train_seconds,
    code_checks={"iassf_blocks_add_parameters": (_blocks_add_parameters, "../fusionlib/iassf/model.py")},
    consistency=_consistency, training_artefact="iassf/training.csv", scored_artefact="iassf/table_i.csv",
    evidence={"main": PaperEvidence(images=("iassf/fused_outputs.csv", "msrs_hazy/test", "vi_clear"), log="iassf/training.csv",
                                    terms=("l_int", "l_grad", "l_dehaze"))},
    exercises=(
        Exercise("30", 1, "Hazy intensity I for J = 0.2, t = 0.5, A = 1", "number", _scatter, "I = J·t + A·(1 − t)."),
        Exercise("30", 2, "Recover J from I = 0.8, A = 1, t = 0.4", "number", _recover, "Solve I = J·t + A·(1 − t) for J."),
        Exercise("30", 3, "Dark channel (3×3 window) at the centre of a 3×3 RGB image that is 0.7 everywhere except one blue value of 0.1",
                 "number", _dark_channel_value, "The dark channel is the minimum over the window's pixels and over the colour channels."),
        Exercise("30", 4, "Implement the dark channel of img (B, C, H, W) with square windows of odd side `patch`: the minimum over "
                 "the channels, then over the window, the window cut at the border; return (B, 1, H, W)", "function", _dark_channel,
                 "A minimum filter is −max_pool2d(−x) with stride 1 and padding patch // 2; max_pool2d pads with −∞, so the border "
                 "never wins.", 1e-12, _dark_cases),
        Exercise("31", 1, "Parameters of nn.Linear(256, 64)", "integer", _linear_parameters,
                 "A weight per input–output pair, plus one bias per output."),
        Exercise("31", 2, "GFLOPs of a 3×3 convolution, 64 → 64 channels, on a 256×256 map (no bias; a multiply-add counts 2)",
                 "number", _conv_gflops, "2 · k² · C_in · C_out · H · W."),
        Exercise("31", 3, "Change one line: IASSF(blocks=7) instead of 5. Predict the extra parameters in M (two decimals)",
                 "number", _extra_blocks, "Count one fusion block's parameters in §1's table and multiply by two.", 0.05),
        Exercise("31", 4, "Implement the attention's relative positions of a w×w window: for every pair (i, j) of its w² tokens "
                 "(row-major), Δ = coords(i) − coords(j) in (row, column), mapped to sign(Δ)·log(1 + |Δ|); return (w², w², 2)",
                 "function", _relative_positions,
                 "torch.meshgrid of arange(w) twice (indexing='ij'), flattened; broadcast the difference; torch.log1p.",
                 1e-6, _relative_cases),
    ),
    assumes={"30": "00, 01", "31": "30; attention", "32": "30, 31", "33": "32; the authors' code in ../shared/reference_code"},
)
