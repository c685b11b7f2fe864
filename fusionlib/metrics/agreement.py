"""How close a predicted image is to a reference one: PSNR, and for a predicted infrared image, where
it puts the heat.

These compare an output with a ground truth (a dehazed image with the clear one, a pseudo-infrared
image with the real one, two runs' outputs), which the fusion metrics of :mod:`fusionlib.metrics`
cannot: a fused image has no ground truth.

Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §4.
"""

from __future__ import annotations

import math

import torch

__all__ = ["psnr", "hot_map", "ir_agreement"]


def psnr(pred: torch.Tensor, ref: torch.Tensor) -> float:
    """PSNR in dB of ``pred`` against ``ref``, images of any equal shape on [0, 1]: ``10·log10(1 / MSE)``
    in float64, with ``pred`` clamped to [0, 1] first (what saving it as an image would keep); ``inf``
    for identical images.

    Derived in ``notebooks/00_data_and_conventions.ipynb`` §2.
    """
    if pred.shape != ref.shape:
        raise ValueError(f"psnr: shapes differ: {tuple(pred.shape)} and {tuple(ref.shape)}")
    mse = float((pred.detach().double().clamp(0, 1) - ref.detach().double()).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def hot_map(image: torch.Tensor, quantile: float = 0.9) -> torch.Tensor:
    """Where an image is hot: ``max(0, I − q)`` with q its own ``quantile``, per image of ``(B, 1, H, W)``.
    Invariant to brightness offsets and contrast scale when correlated, so a pseudo-IR is judged on
    *where* it puts warm objects, not on its grey levels.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §4.
    """
    q = image.flatten(1).quantile(quantile, dim=1).reshape(-1, 1, 1, 1)
    return (image - q).clamp_min(0)


def ir_agreement(pred: torch.Tensor, ir: torch.Tensor, quantile: float = 0.9) -> dict[str, float]:
    """How close a predicted IR image is to the real one, both ``(1, 1, H, W)`` in [0, 1]: PSNR (dB,
    :func:`psnr`), SSIM (Wang et al., 8-bit scale; :func:`fusionlib.metrics.functional.ssim`) and the
    Pearson correlation of their :func:`hot_map` s (``hot-spot r``). A prediction whose hot-spot map is
    empty (a constant, such as the mean-IR predictor) shares no hot spot with the IR: r = 0. Only an IR
    image with no hot spot of its own gives NaN, since there is nothing to find.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §4.
    """
    from fusionlib.metrics.functional import ssim
    pred, ir = pred.detach().float().clamp(0, 1).cpu(), ir.detach().float().cpu()
    a, b = hot_map(pred, quantile).flatten(), hot_map(ir, quantile).flatten()
    r = math.nan if not b.std() > 0 else float(torch.corrcoef(torch.stack([a, b]))[0, 1]) if a.std() > 0 else 0.0
    return {"PSNR (dB)": min(psnr(pred, ir), 120.0), "SSIM": float(ssim(ir[0, 0] * 255, pred[0, 0] * 255)), "hot-spot r": r}
