"""LDFusion's door into the study layer (:mod:`fusionlib.study.registry`): its notebooks, its checkpoints as
benchmark methods, its step timings, its checks of code and paper, its health evidence and its exercises.
"""

from __future__ import annotations

import re
import time

import pandas as pd
import torch

from fusionlib.study.exercises import Exercise
from fusionlib.study.health import PaperEvidence
from fusionlib.study.ledger import by_dataset, wide_table
from fusionlib.study.registry import CheckpointSpec, Paper, Released

__all__ = ["PAPER"]


def _build(**kwargs):
    from fusionlib.ldfusion.model import LDFusion
    return LDFusion(**kwargs)


def _fuser(model, device="cpu"):
    from fusionlib.ldfusion.inference import fuser
    return fuser(model, device)


def _train_seconds(crop, batch, config, folder, what):
    from fusionlib.common.perceptual import loss_network
    from fusionlib.ldfusion import clip as cd
    from fusionlib.ldfusion import train as pipe
    from fusionlib.ldfusion.loss import LanguageDrivenLoss
    start = time.perf_counter()
    language = what.startswith("full loss")  # else CLIP only builds the text directions
    clip, tokenizer, _ = cd.load_clip("ViT-B-32", None, allow_random=True)
    loss = LanguageDrivenLoss(clip, tokenizer, loss_network("ldfusion", allow_random=True)[0], rounds=8, language=language)
    pipe.train(pipe.training_set("msrs", crop), loss, config, folder)
    return {"ldfusion": time.perf_counter() - start}


def _inference_without_clip() -> tuple[bool, str]:
    import inspect

    from fusionlib.ldfusion import model as ldm
    src = inspect.getsource(ldm)
    uses = [w for w in ("clip", "open_clip", "CLIP") if re.search(rf"\b{w}\b", src)]
    return not uses, ("fusionlib/ldfusion/model.py (the inference network) never mentions CLIP: it is used by the loss "
                      "(fusionlib/ldfusion/loss.py) only" if not uses else f"the inference network mentions {uses}")


def _parameter_count() -> tuple[bool, str]:
    from fusionlib.common.complexity import count_parameters
    from fusionlib.ldfusion.model import LDFusion
    n = count_parameters(LDFusion())
    return round(n / 1e6, 2) == 5.78, f"{n:,} parameters ({n / 1e6:.3f} M; the authors' code: 5,776,977)"


def _consistency(values: pd.DataFrame, add) -> None:
    l1, l4 = wide_table(values, "Table 1"), wide_table(values, "Table 4")
    ld4 = l4.loc[[r for r in l4.index if r.startswith("LDFusion/")]]
    match = [r for r in ld4.index if (ld4.loc[r, l1.columns] - l1.loc["LDFusion"]).abs().max() < 5e-4]
    add("X10", "Table 1's LDFusion row against Table 4's three LDFusion rows and their mean",
        f"matches {len(match)} of {len(ld4)} rows; Table 1 EN {l1.at['LDFusion', 'EN']:.3f}, SD {l1.at['LDFusion', 'SD']:.3f}; "
        f"mean of Table 4 EN {ld4['EN'].mean():.3f}, SD {ld4['SD'].mean():.3f}", bool(match))

    l3 = wide_table(values, "Table 3")
    l2, l5 = wide_table(values, "Table 2"), wide_table(values, "Table 5")
    cc = {d: int(w["CC"].rank(ascending=False, method="min")["LDFusion"]) for d, w in by_dataset(l4).items()}
    same3 = all((l3.loc[f"LDFusion/{d}"] - l4.loc[f"LDFusion/{d}", l3.columns]).abs().max() < 5e-4 for d in ("TNO", "RoadScene"))
    same25 = (abs(l2.at["LDFusion/All", "mAP@0.5"] - l5.at["LDFusion", "mAP@0.5"]) < 5e-4
              and abs(l2.at["LDFusion/All", "mAP@0.5:0.95"] - l5.at["LDFusion", "mAP@0.5:0.95"]) < 5e-4)
    first = {d: sum(int(w[m].rank(ascending=False, method="min")["LDFusion"]) == 1 for m in w.columns) for d, w in by_dataset(l4).items()}
    add("X11", "Table 4: LDFusion's CC rank; Table 3 vs Table 4; Table 2 vs Table 5",
        f"CC rank per set: {', '.join(f'{d} {r}' for d, r in cc.items())}; first on {', '.join(f'{d} {v}/5' for d, v in first.items())}; "
        f"Table 3's LDFusion rows equal Table 4's: {same3}; Table 2's 'All' equals Table 5: {same25}",
        same3 and same25 and all(v >= 4 for v in first.values()))  # "almost all" metrics: all but one per set

    methods4 = sorted({r.rpartition("/")[0] for r in l4.index} - {"LDFusion"})
    add("X12", "§4.1 says 11 compared methods: how many does Table 4 list?",
        f"{len(methods4)} ({', '.join(methods4)}); the α/λ swap between §4.1 and Eqs. 10/16 is a text inconsistency no table value bears on",
        len(methods4) == 11)


def _cosine() -> float:
    return float(torch.nn.functional.cosine_similarity(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]))[0])


def _directional() -> float:
    return 1 - float(torch.nn.functional.cosine_similarity(torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 1.0]]))[0])


def _four_level_entropy() -> float:
    from fusionlib.ldfusion.clip import entropy
    levels = torch.tensor([0.0, 0.25, 0.5, 0.75]).repeat(16).view(1, 1, 8, 8)
    return float(entropy(levels)[0])


def _directional_loss():
    from fusionlib.ldfusion.clip import directional_loss
    return directional_loss


def _directional_cases() -> list[tuple[str, tuple]]:
    g = torch.Generator().manual_seed(7)
    e, e_vis, e_ir, dt_vis, dt_ir = (torch.randn(4, 8, generator=g, dtype=torch.float64) for _ in range(5))
    return [("a batch of 4 in 8 dimensions", (e, e_vis, e_ir, dt_vis, dt_ir)),
            ("image moves along the text moves: loss 0", (e[:1], e[:1] - dt_vis[:1], e[:1] - 3 * dt_ir[:1], dt_vis[:1], dt_ir[:1])),
            ("text directions of any length", (e, e_vis, e_ir, 5 * dt_vis, 0.1 * dt_ir)),
            ("one sample", (e[:1], e_vis[:1], e_ir[:1], dt_vis[:1], dt_ir[:1]))]


PAPER = Paper(
    key="ldfusion", title="LDFusion — a CLIP language-driven fusion loss", chapter="LDFusion",
    notebooks=("40_", "41_", "42_"), writer="41_",
    methods={"wo_ldl": CheckpointSpec("LDFusion", _build, _fuser, "IR + VIS", label="LDFusion W/O LDL")},
    step_grid=((128, 4, "W/O LDL (L_v only)"), (224, 4, "W/O LDL (L_v only)"), (128, 4, "full loss, random-init CLIP, 8 patch rounds")),
    train_seconds=_train_seconds,
    code_checks={"ldfusion_inference_without_clip": (_inference_without_clip, "../fusionlib/ldfusion/model.py"),
                 "ldfusion_parameter_count": (_parameter_count, "../fusionlib/ldfusion/model.py")},
    consistency=_consistency, training_artefact="ldfusion/training.csv", scored_artefact="ldfusion/table1.csv",
    notebook_artefacts={"42_": "ldfusion/twin_run_log.csv"},
    released_outputs=(Released("LDFusion (authors' outputs)", "ldfusion_demo/authors", "LDFusion demos",
                               weights="the authors' CLIP-trained model",
                               note="the two fused images the LDFusion authors published (data/README.md)"),),
    evidence={"wo_ldl": PaperEvidence(sd_tables=(("ldfusion/table1_per_image.csv", None, "W/O LDL"),),  # not its control partner
                                      log="ldfusion/training.csv", terms=("l_v",), weights=(("l_v", 10.0),))},
    notebook_evidence={"42_": PaperEvidence(measures=("ldfusion/twin_run_per_image.csv", "arm", "ours"))},
    exercises=(
        Exercise("40", 1, "The cosine similarity of [1, 0] and [1, 1]", "number", _cosine, "cos θ = a·b / (‖a‖‖b‖)."),
        Exercise("40", 2, "The directional loss 1 − cos(Δ_image, Δ_text) for Δ_image = [1, 1], Δ_text = [0, 1]", "number", _directional,
                 "Compute the cosine of the two directions first."),
        Exercise("40", 3, "Entropy (bits) of a patch with four grey levels, equally frequent (Eq. 17's filter)", "number",
                 _four_level_entropy, "Four equiprobable levels: −4 · ¼ · log2 ¼."),
        Exercise("40", 4, "Implement the directional loss (Eq. 3) per sample: ½(1 − cos(e − e_vis, Δt_vis)) + ½(1 − cos(e − e_ir, "
                 "Δt_ir)) for embeddings (B, D); return (B,)", "function", _directional_loss,
                 "Normalise each direction to unit length before the dot product (torch.nn.functional.normalize), or use "
                 "torch.nn.functional.cosine_similarity along the last axis.", 1e-9, _directional_cases),
    ),
    assumes={"40": "00, 01; embeddings and cosines", "41": "40", "42": "41; the authors' code in ../shared/reference_code"},
)
