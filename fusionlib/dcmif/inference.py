"""Running a trained DCMIF: the network a checkpoint loads into (:func:`build_model`), its images of one visible
image, memoised so that every table shares one pass (:func:`images_of`), the fusers the metrics and the benchmark
call (:func:`fuser`, :func:`pseudo_ir_fuser`), and the test pairs it is scored on (:func:`test_pairs`).
"""

from __future__ import annotations

import hashlib

import torch

from fusionlib.common.rgb import fuse_rgb
from fusionlib.data import evenly_spaced, find_pairs, split_dir
from fusionlib.dcmif.model import DCMIF, RFN, RIN, DictionaryCodec, FiLM
from fusionlib.dcmif.text import TextPrior
from fusionlib.dcmif.train import Variant, build_stage1
from fusionlib.io import split_luma

__all__ = ["build_model", "images_of", "fuser", "pseudo_ir_fuser", "test_pairs"]


def build_model(variant: Variant, prior: TextPrior | None) -> DCMIF:
    """An untrained DCMIF with ``variant``'s architecture (all three stages, a zero dictionary), to load
    a trained checkpoint into (:func:`fusionlib.checkpoints.load_into`); ``prior`` must be the text prior
    it was trained with (its dimension sizes FiLM).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §3.
    """
    stage1 = build_stage1(variant)
    if variant.codec == "conv":
        codec = stage1.requires_grad_(False).eval()
    else:
        codec = DictionaryCodec(stage1, torch.zeros(stage1.n_atoms, stage1.kernel, stage1.kernel),
                                1.0 if variant.codes == "centred" else None)  # the checkpoint holds the real σ
    n = codec.n_atoms
    return DCMIF(codec, RIN(n), FiLM(prior.dim, n) if prior is not None else None, RFN(n, gate=variant.gate), prior).eval()


@torch.no_grad()
def images_of(model: DCMIF, y: torch.Tensor, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The images DCMIF makes from one visible Y ``(1, 1, H, W)``: ``pir0``, ``pir`` (clamped to
    [0, 1]) and ``fused`` (unclamped), on the CPU. Memoised by content on the model, so §4, Table 1,
    the figures and Tables 8–9 share one pass per image (a whole 480×640 image costs ≈ 50 s on 2 CPU
    cores: RIN runs twice at full resolution).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §4.
    """
    memo = model.__dict__.setdefault("_images_memo", {})  # lives and dies with the model
    key = hashlib.sha256(y.detach().contiguous().cpu().numpy().tobytes()).hexdigest()
    if key not in memo:
        out = model.to(device)(y.to(device))
        memo[key] = {"pir0": out["pir0"].clamp(0, 1).cpu() if "pir0" in out else None,
                     "pir": out["pir"].clamp(0, 1).cpu(), "fused": out["fused"].cpu()}
    return memo[key]


def fuser(model: DCMIF, device: str = "cpu"):
    """``(ir or None, vis RGB) -> fused RGB`` for :func:`fusionlib.metrics.dataset.evaluate_dataset`:
    the fused Y with the visible Cb, Cr (JPEG full-range inverse, docs/dcmif.md#afri). The IR
    argument is ignored: DCMIF sees only the visible image. Passes are shared through
    :func:`images_of`.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §5.
    """
    def fuse_y(ir: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor:
        return images_of(model, y, device)["fused"].clamp(0, 1).to(y.device)
    fuse_y.__name__ = "DCMIF"
    return fuse_rgb(fuse_y, "jpeg", device)


def pseudo_ir_fuser(model: DCMIF, fuse, device: str = "cpu"):
    """Tables 8–9 recast: generate the pseudo-IR with our VGII from the visible image, then fuse it
    with the visible image by ``fuse(ir_like, vis RGB) -> RGB`` (a classical or learned fuser).
    Pseudo-IR images come from :func:`images_of`, so several fusers share one pass per image.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §8.
    """
    @torch.no_grad()
    def run(ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        return fuse(images_of(model, split_luma(vis, "jpeg")[0], device)["pir"], vis)
    return run


def test_pairs(dataset: str, n_images: int = 0):
    """Evenly spaced ``n_images`` pairs (0 = all) of a dataset's ``test`` split, or ``[]``.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §5.
    """
    folder = split_dir(dataset, "test")
    if not folder.is_dir():
        return []
    samples = find_pairs(folder)
    return evenly_spaced(samples, n_images)
