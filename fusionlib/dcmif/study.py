"""DCMIF's door into the study layer (:mod:`fusionlib.study.registry`): its notebooks, its checkpoints as
benchmark methods, its step timings, its checks of code and paper, its health evidence and its exercises.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from fusionlib.metrics import higher_is_better
from fusionlib.study.exercises import Exercise
from fusionlib.study.health import PaperEvidence
from fusionlib.study.ledger import by_dataset, rank_of, wide_table
from fusionlib.study.registry import CheckpointSpec, Paper, Recipe

__all__ = ["PAPER"]


def _build(**fields):
    """The network a DCMIF checkpoint loads into, with the offline template prior its checkpoints are
    trained with (notebook 22)."""
    from fusionlib.dcmif.text import make_text_prior
    from fusionlib.dcmif.inference import build_model
    from fusionlib.dcmif.train import Variant
    if fields.get("prompt") == "none":  # Models I and II: no text prior, no FiLM
        return build_model(Variant(**fields), None)
    return build_model(Variant(**fields), make_text_prior("template", prompt=fields.get("prompt", "complete"),
                                                          norm=fields.get("text_norm", "none")))


def _fuser(model, device="cpu"):
    from fusionlib.dcmif.inference import fuser
    return fuser(model, device)


def _train_seconds(crop, batch, config, folder, what):
    from fusionlib.dcmif import train as pipe
    _, info = pipe.train_dcmif(pipe.Variant(), pipe.training_set("msrs", crop), {s: config for s in ("jsrl", "vgii", "afri")})
    return {f"dcmif {stage}": s for stage, s in info["seconds"].items()}


def _visible_only() -> tuple[bool, str]:
    import inspect

    from fusionlib.dcmif.model import DCMIF
    params = list(inspect.signature(DCMIF.forward).parameters)[1:]
    return not any("ir" == p or p.startswith("ir_") for p in params), f"DCMIF.forward takes {params}: no infrared input"


def _consistency(values: pd.DataFrame, add) -> None:
    t1 = by_dataset(wide_table(values, "Table 1"))
    ranks = {(d, m): rank_of(w, "Ours", m) for d, w in t1.items() for m in w.columns}
    worst = sorted(((r, d, m) for (d, m), r in ranks.items()), reverse=True)[:5]
    add("X1", "Table 1: DCMIF's rank among the 11 rows on each dataset and metric",
        f"first on {sum(r == 1 for r in ranks.values())} of {len(ranks)} cells; worst: "
        + ", ".join(f"{d} {m} {r}/{len(t1[d])}" for r, d, m in worst), all(r <= 3 for r in ranks.values()))

    t2 = wide_table(values, "Table 2")
    det = t2.loc[[r for r in t2.index if r.endswith("/M3FD")]]
    aps = det[[c for c in det.columns if c.startswith("AP ")]].mean(axis=1)
    off = (det["mAP"] - aps).abs()
    bad = off[off > 0.0005 + 1e-9]  # three printed decimals: the mean may round either way
    ours_rank = int(det["mAP"].rank(ascending=False, method="min")["Ours/M3FD"])
    mean_rank = int(pd.concat([det["mAP"].drop("Ours/M3FD"), pd.Series({"Ours/M3FD": aps["Ours/M3FD"]})]).rank(ascending=False, method="min")["Ours/M3FD"])
    seg = t2.loc[[r for r in t2.index if r.endswith("/FMB")]]
    differing = ", ".join(f"{r.split('/')[0]} mAP {det.at[r, 'mAP']:.3f} vs mean AP {aps[r]:.3f}" for r in bad.index)
    add("X2", "Table 2: each mAP against the mean of its six class APs; DCMIF's mAP and mIoU ranks",
        f"{len(bad)} of {len(det)} rows differ by > 0.0005 ({differing}); "
        f"DCMIF's mAP {det.at['Ours/M3FD', 'mAP']:.3f} ranks {ours_rank}/{len(det)}, the mean of its APs ({aps['Ours/M3FD']:.3f}) would rank {mean_rank}; "
        f"its mIoU ranks {int(seg['mIoU'].rank(ascending=False, method='min')['Ours/FMB'])}/{len(seg)} "
        f"(best: {seg['mIoU'].idxmax().split('/')[0]} {seg['mIoU'].max():.3f})",
        len(bad) == 0)

    t7 = wide_table(values, "Table 7")
    e = t7.loc[[r for r in t7.index if r.startswith("E+")]]
    t8 = by_dataset(wide_table(values, "Table 8")).get("FLIR")
    t9 = by_dataset(wide_table(values, "Table 9")).get("FLIR")
    copied = [r for r in e.index if t8 is not None and r[2:] in t8.index and abs(t8.at[r[2:], "Qcb"] - e.at[r, "Qcb"]) < 5e-4]
    t5 = wide_table(values, "Table 5")
    add("X3", "Table 7: cost of the EGGAN pipelines against DCMIF; its Qcb column against Table 8's FLIR column; GFLOPs in Tables 5 and 7",
        f"every E+ pipeline has lower FLOPs ({e['FLOPs (G)'].min():.0f}–{e['FLOPs (G)'].max():.0f} G) and time "
        f"({e['Time (s)'].min():.3f}–{e['Time (s)'].max():.3f} s) than DCMIF ({t7.at['Ours', 'FLOPs (G)']:.3f} G, {t7.at['Ours', 'Time (s)']:.3f} s); "
        f"{len(copied)} of {len(e)} E+ Qcb values equal Table 8's FLIR Qcb; "
        f"Table 5 N=1 GFLOPs {t5.at['N=1', 'GFLOPs']:.3f} vs Table 7 {t7.at['Ours', 'FLOPs (G)']:.3f}",
        False)

    findings, consistent = [], True
    for name in ("Table 8", "Table 9"):
        for d, w in by_dataset(wide_table(values, name)).items():
            r = {m: rank_of(w, "Ours", m) for m in w.columns}
            not_first = {m: v for m, v in r.items() if v > 1}
            consistent &= not not_first
            if not_first:
                findings.append(f"{name} {d}: " + ", ".join(f"{m} {v}/{len(w)}" for m, v in not_first.items()))
    add("X4", "Tables 8–9: is DCMIF first on every metric, as the text says?", "; ".join(findings) or "first everywhere", consistent)

    t1f = by_dataset(wide_table(values, "Table 1"))["FLIR"]
    same = [m for m in t9.index if m != "Ours" and m in t1f.index and t9.at[m, "CE"] == t1f.at[m, "CE"]]
    add("X5", "Table 9 (PID-generated IR) against Table 1 (real IR): FLIR CE of the baselines",
        f"{len(same)} of {len(t9.index) - 1} baselines have the identical FLIR CE in both tables", len(same) == 0)

    best_en = t5["EN"].idxmax()
    n2_better = [m for m in t5.columns if m != "GFLOPs" and ((t5.at["N=2", m] > t5.at["N=1", m]) == higher_is_better(m))]
    add("X6", "Table 5: is N = 1 best, N = 3 worse everywhere?",
        f"best EN: {best_en} ({t5.at[best_en, 'EN']:.3f}); N=2 beats N=1 on {len(n2_better)} of 6 metrics ({', '.join(n2_better)})",
        best_en == "N=1" and len(n2_better) == 0)


def _recipe(values: pd.DataFrame) -> Recipe:
    r = values[values["table"] == "Recipe"].set_index("metric")["value"]
    pairs, crop = int(r["training pairs"]), int(r["crop side"])
    images = int(r["JSRL epochs"]) * pairs + 2 * int(r["VGII and AFRI epochs"]) * pairs
    return Recipe(images, crop, f"JSRL {int(r['JSRL epochs']):,} epochs (batch {int(r['JSRL batch size'])}) + VGII and AFRI "
                                f"{int(r['VGII and AFRI epochs'])} epochs each (batch {int(r['VGII and AFRI batch size'])}) "
                                f"of {pairs:,} pairs, {crop}² crops")


def _sherman_morrison_00() -> float:
    u = torch.ones(2, 1, dtype=torch.float64)
    return float(torch.linalg.inv(torch.eye(2, dtype=torch.float64) + u @ u.T)[0, 0])


def _one_d_fft_still_convolves() -> bool:
    """Is circular correlation still the inverse transform of conj(OTF)·FFT when the atom's OTF is a 1-D FFT?"""
    from fusionlib.dcmif.model import correlate, otf
    g = torch.Generator().manual_seed(0)
    s, d = torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64), torch.rand(1, 5, 5, generator=g, dtype=torch.float64)
    direct = correlate(s, d, "circular")[0, 0]
    via = torch.fft.ifft2(torch.conj(otf(d, (8, 8), one_d_bug=True))[0] * torch.fft.fft2(s[0, 0])).real
    return bool(torch.allclose(direct, via, atol=1e-9))


def _unknowns_eq8() -> int:
    return 64 * 5 * 5


def _psnr_mse() -> float:
    return 10 * math.log10(1 / 0.01)


def _mse_ratio() -> float:
    return 10 ** ((27.2 - 23.2) / 10)


def _otf():
    from fusionlib.dcmif.model import otf
    return otf


def _otf_cases() -> list[tuple[str, tuple]]:
    g = torch.Generator().manual_seed(4)
    return [("one 5×5 atom, 8×8 image", (torch.rand(1, 5, 5, generator=g, dtype=torch.float64), (8, 8))),
            ("64 atoms of 3×3, a 12×16 image", (torch.rand(64, 3, 3, generator=g, dtype=torch.float64), (12, 16))),
            ("a centred delta: its OTF is 1 everywhere", (torch.zeros(1, 5, 5, dtype=torch.float64).index_put_(
                (torch.tensor([0]), torch.tensor([2]), torch.tensor([2])), torch.tensor(1.0, dtype=torch.float64)), (6, 6))),
            ("an atom as large as the image", (torch.rand(2, 7, 7, generator=g, dtype=torch.float64), (7, 7)))]


def _pad_to_multiple():
    from fusionlib.dcmif.model import pad_to_multiple
    return pad_to_multiple


def _pad_cases() -> list[tuple[str, tuple]]:
    g = torch.Generator().manual_seed(5)
    return [("21×35 to multiples of 8", (torch.rand(1, 1, 21, 35, generator=g, dtype=torch.float64), 8)),
            ("already a multiple: unchanged", (torch.rand(2, 3, 16, 24, generator=g, dtype=torch.float64), 8)),
            ("only the width short", (torch.rand(1, 1, 16, 17, generator=g, dtype=torch.float64), 8)),
            ("multiples of 4", (torch.rand(1, 2, 9, 10, generator=g, dtype=torch.float64), 4))]


PAPER = Paper(
    key="dcmif", title="DCMIF — dictionary-guided fusion with the infrared image missing", chapter="DCMIF",
    notebooks=("20_", "21_", "22_", "23_"), writer="22_",
    methods={"main": CheckpointSpec("DCMIF", _build, _fuser, "VIS only (hazy VIS on the hazy set)", "both", clear_input_control=True)},
    step_grid=((64, 4, "three stages"), (128, 4, "three stages")), train_seconds=_train_seconds,
    code_checks={"dcmif_visible_only": (_visible_only, "../fusionlib/dcmif/model.py")},
    consistency=_consistency, training_artefact="dcmif/training_log.csv", scored_artefact="dcmif/table1.csv", recipe=_recipe,
    evidence={"main": PaperEvidence(images=("dcmif/fixed_outputs.csv", "msrs/test", "vi"), log="dcmif/training_log.csv",
                                    terms=("l_S", "l_D", "l_int", "l_reg", "l_grad"), group="stage")},
    required_health=("H2", "H4", "H5"),  # a pseudo-IR with contrast (H4) and heat where the IR has it (H5)
    exercises=(
        Exercise("20", 1, "The (0, 0) entry of (I + u uᵀ)⁻¹ for u = [1, 1]ᵀ (Sherman–Morrison)", "number", _sherman_morrison_00,
                 "(I + u uᵀ)⁻¹ = I − u uᵀ / (1 + uᵀu)."),
        Exercise("20", 2, "Change one line: build the atom's transfer function with a 1-D FFT along the width (the official code). "
                 "Is circular correlation still conj(OTF)·FFT in the 2-D Fourier domain? (True/False)", "bool", _one_d_fft_still_convolves,
                 "The convolution theorem for 2-D circular convolution needs the 2-D transform of both operands."),
        Exercise("20", 3, "How many unknowns does Eq. 8's dictionary step solve for with 64 atoms of 5×5 (one channel)?", "integer",
                 _unknowns_eq8, "One unknown per atom pixel: C·k²."),
        Exercise("20", 4, "Implement the transfer function of atoms d (C, k, k) for H×W images: zero-pad each atom to H×W, roll it "
                 "so that its centre sits at the origin, take the 2-D FFT; return (C, H, W) complex", "function", _otf,
                 "torch.roll by −(k // 2) on both axes after padding; torch.fft.fft2 over the last two axes. A centred delta must "
                 "give 1 everywhere.", 1e-9, _otf_cases),
        Exercise("21", 1, "PSNR (dB) of a reconstruction whose MSE is 0.01 on images in [0, 1]", "number", _psnr_mse,
                 "PSNR = 10·log10(MAX² / MSE) with MAX = 1."),
        Exercise("21", 2, "JSRL reconstructs IR at 27.2 dB and the frozen dictionary at 23.2 dB: by what factor is the second MSE larger?",
                 "number", _mse_ratio, "A PSNR difference of Δ dB is an MSE ratio of 10^(Δ/10)."),
        Exercise("21", 3, "Implement the padding JSRL's FFTs need: pad the bottom and right of x (B, C, H, W) circularly up to a "
                 "multiple of m; return (padded x, (H, W))", "function", _pad_to_multiple,
                 "(−H) % m rows at the bottom, (−W) % m columns at the right: torch.nn.functional.pad(x, (0, pw, 0, ph), "
                 "mode='circular'); nothing when both are 0.", 1e-12, _pad_cases),
    ),
    assumes={"20": "00, 01; the FFT and convolution", "21": "20", "22": "20, 21", "23": "22; the authors' code in ../shared/reference_code"},
)
