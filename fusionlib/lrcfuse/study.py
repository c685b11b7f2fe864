"""LRCFuse's door into the study layer (:mod:`fusionlib.study.registry`): its notebooks, its checkpoints (and
LRRNet retrained beside it) as benchmark methods, its step timings, its paper checks, its health evidence
and its exercises.
"""

from __future__ import annotations

import time

import pandas as pd
import torch

from fusionlib.common import lrrnet
from fusionlib.study.exercises import Exercise
from fusionlib.study.health import PaperEvidence
from fusionlib.study.registry import CheckpointSpec, Paper, Recipe

__all__ = ["PAPER"]


def _build(**kwargs):
    from fusionlib.lrcfuse.model import LRCFuse
    return LRCFuse(**kwargs)


def _train_seconds(crop, batch, config, folder, what):
    from fusionlib.common.perceptual import loss_network
    from fusionlib.data.patches import PatchDataset
    from fusionlib.data.synthetic import split_or_synthetic
    from fusionlib.lrcfuse import train as pipe
    start = time.perf_counter()
    patches = PatchDataset(split_or_synthetic("msrs", seed=0), crop, crop, count=16 * batch, seed=0)
    pipe.train(patches, config, folder, loss_network("lrcfuse", allow_random=True)[0], model_kwargs={"n": 128})
    return {"lrcfuse": time.perf_counter() - start}


def _consistency(values: pd.DataFrame, add) -> None:
    lv = values
    datasets = sorted({t for t in lv["table"] if t in ("Table 6", "Table 7", "Table 8")})
    msrs = lv[(lv["table"] == "Training") & lv["row"].str.startswith("MSRS pairs")]["value"]
    add("X13", "LRCFuse: datasets in the conclusion's MI gains; the MSRS pair count",
        f"the MI gains come from {len(datasets)} tables ({', '.join(datasets)}: TNO, RoadScene, M3FD) where the conclusion says 'two' datasets; "
        f"training on {int(msrs.iloc[0]) if len(msrs) else '?'} MSRS pairs = MSRS train (1,083) + test (361)", False)


def _recipe(values: pd.DataFrame) -> Recipe:
    crop = int(values[values["table"] == "Recipe"].set_index("metric")["value"]["crop side"])
    t = values[values["table"] == "Training"].set_index("row")["value"]
    patches, epochs = int(t["patches used: count"]), int(t["epochs: count"])
    return Recipe(patches * epochs, crop, f"{epochs} epochs of {patches:,} patches (batch {int(t['batch size: count'])}) "
                                          f"cut from {int(t['MSRS pairs: count']):,} pairs, {crop}² crops")


def _per_image(method: str) -> tuple:
    return tuple((f"lrcfuse/table{n}_{d}_per_image.csv", d, method) for n, d in ((6, "tno"), (7, "roadscene"), (8, "m3fd")))


def _soft_threshold() -> list[float]:
    return torch.nn.functional.softshrink(torch.tensor([-2.0, 0.5, 3.0]), 1.0).tolist()


def _lipschitz_diag() -> float:
    from fusionlib.lrcfuse.lista import lipschitz
    return lipschitz(torch.diag(torch.tensor([1.0, 2.0])))


def _ista_lambda_zero_zeros() -> int:
    from fusionlib.lrcfuse.lista import ista
    x = ista(torch.eye(3), torch.tensor([[1.0, 0.0, 2.0]]), lam=0.0, iters=1)
    return int((x == 0).sum())


def _dictionary_parameters() -> int:
    from fusionlib.common.complexity import count_parameters
    return count_parameters(torch.nn.Conv2d(64, 1, 5, bias=False))


def _same_conv_multiply_adds() -> int:
    from fusionlib.common.complexity import count_flops
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    flops, _ = count_flops(conv, torch.zeros(1, 1, 64, 64))
    return flops // 2  # the counter counts a multiply-add as 2 FLOPs


def _ista_step():
    from fusionlib.lrcfuse.lista import ista
    return lambda D, y, x, lam: ista(D, y, lam, 1, x0=x)


def _ista_cases() -> list[tuple[str, tuple]]:
    g = torch.Generator().manual_seed(2)
    D = torch.randn(6, 10, generator=g, dtype=torch.float64)
    y = torch.randn(4, 6, generator=g, dtype=torch.float64)
    return [("from x = 0", (D, y, torch.zeros(4, 10, dtype=torch.float64), 0.1)),
            ("from a random x", (D, y, torch.randn(4, 10, generator=g, dtype=torch.float64), 0.1)),
            ("λ = 0: a plain gradient step", (D, y, torch.randn(4, 10, generator=g, dtype=torch.float64), 0.0)),
            ("a large λ: everything thresholded away", (D, y, torch.zeros(4, 10, dtype=torch.float64), 1e3)),
            ("one sample, a square D", (torch.eye(5, dtype=torch.float64) * 2, torch.randn(1, 5, generator=g, dtype=torch.float64),
                                         torch.zeros(1, 5, dtype=torch.float64), 0.5))]


def _cfpm_objective():
    from fusionlib.lrcfuse.model import cfpm_objective
    return cfpm_objective


def _cfpm_cases() -> list[tuple[str, tuple]]:
    from fusionlib.lrcfuse.model import CFPMStage
    with torch.random.fork_rng():  # seeded weights that leave the caller's random state alone
        torch.manual_seed(3)
        stage = CFPMStage(4).double()
    g = torch.Generator().manual_seed(3)
    c, r_x, r_y = (torch.randn(2, k, 8, 8, generator=g, dtype=torch.float64) for k in (4, 1, 1))
    lam = torch.tensor([[0.1, 0.2, 0.0, 1.0]], dtype=torch.float64)
    return [("a batch of 2, 8×8, four atoms", (stage, c, r_x, r_y, lam)),
            ("C = 0: only the fit of the biases", (stage, torch.zeros_like(c), r_x, r_y, lam)),
            ("λ = 0: no sparsity term", (stage, c, r_x, r_y, torch.zeros_like(lam))),
            ("one sample, 5×7", (stage, c[:1, :, :5, :7], r_x[:1, :, :5, :7], r_y[:1, :, :5, :7], lam))]


PAPER = Paper(
    key="lrcfuse", title="LRCFuse — low-rank representation + convolutional sparse coding", chapter="LRCFuse",
    notebooks=("10_", "11_", "12_", "13_"), writer="12_",
    methods={"main": CheckpointSpec("LRCFuse", _build, lrrnet.rgb_fuser, "IR + VIS", dehaze_first=True),
             "lrrnet-retrained": CheckpointSpec("LRRNet", lrrnet.LRRNet, lrrnet.rgb_fuser, "IR + VIS", dehaze_first=True)},
    step_grid=((64, 4, "n = 128, patches"), (128, 4, "n = 128, patches")), train_seconds=_train_seconds,
    consistency=_consistency, training_artefact="lrcfuse/fig17_loss.csv", scored_artefact="lrcfuse/table6_tno.csv",
    recipe=_recipe, recipe_notes={"lrrnet-retrained": "LRCFuse's (LRRNet's own is not transcribed): "},
    evidence={"main": PaperEvidence(sd_tables=_per_image(r"LRCFuse \(ours\)"), log="lrcfuse/fig17_loss.csv",
                                    terms=("pixel", "shallow", "middle", "deep", "sobel")),
              "lrrnet-retrained": PaperEvidence(sd_tables=_per_image(r"LRRNet \(retrained.*"))},
    exercises=(
        Exercise("10", 1, "The soft threshold S_θ(x) of x = [−2, 0.5, 3] with θ = 1", "vector", _soft_threshold,
                 "S_θ(x) = sign(x)·max(|x| − θ, 0): shrink towards zero, and anything within θ of zero becomes zero."),
        Exercise("10", 2, "The Lipschitz constant L of ∇½‖y − Dx‖² for D = diag(1, 2)", "number", _lipschitz_diag,
                 "L is the largest eigenvalue of DᵀD, i.e. the squared largest singular value of D."),
        Exercise("10", 3, "Change one line: ISTA with λ = 0, D = I, y = [1, 0, 2], one step from x = 0. How many entries of x are zero?",
                 "integer", _ista_lambda_zero_zeros, "With λ = 0 the threshold vanishes: one gradient step with step 1/L on D = I lands on y."),
        Exercise("11", 1, "Learnable parameters of a convolutional dictionary of 64 atoms of 5×5 for a one-channel image (no bias)",
                 "integer", _dictionary_parameters, "One k×k kernel per atom, one input channel per atom."),
        Exercise("10", 4, "Implement one ISTA step x ← S_{λ/L}(x + Dᵀ(y − Dx)/L) for a batch: D (m, n), y (B, m), x (B, n), λ; "
                 "return the new x (B, n)", "function", _ista_step,
                 "Rows are samples, so Dx is x @ D.T; L is the squared largest singular value of D (torch.linalg.matrix_norm(D, 2)).",
                 1e-9, _ista_cases),
        Exercise("11", 2, "Multiply-adds of a 'same'-padded 3×3 convolution of a 64×64 map (1 channel in, 1 out)", "integer",
                 _same_conv_multiply_adds, "Every output pixel costs one multiply-add per kernel tap; 'same' keeps 64×64 outputs."),
        Exercise("11", 3, "Implement the CFPM objective ½‖a∗C − R_x‖² + ½‖b∗C − R_y‖² + Σ_c λ_c‖C_c‖₁ per sample: stage (its "
                 "convolutions stage.a, stage.b, biases included), C (B, K, H, W), R_x, R_y (B, 1, H, W), λ (1, K); return (B,)",
                 "function", _cfpm_objective,
                 "stage.a(C) is a∗C; sum the squares and the weighted |C| over every axis but the batch.", 1e-9, _cfpm_cases),
    ),
    assumes={"10": "00, 01; least squares and the SVD", "11": "10; convolution", "12": "10, 11", "13": "12; the authors' code in ../shared/reference_code"},
)
