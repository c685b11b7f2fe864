"""DCMIF's three training objectives (paper Eq. 11, 15–18, 20–21; docs/dcmif.md#losses), derived in
``notebooks/21_dcmif_jsrl_unfolding.ipynb`` (JSRL) and ``22_dcmif_vgii_afri_and_tables.ipynb``.

All terms are mean-reduced L1 with weight 1, as the code. Images ``(B, 1, H, W)`` in [0, 1]; ∇ is
the Sobel magnitude |G_x ∗ x| + |G_y ∗ x| (:func:`fusionlib.common.perceptual.sobel_gradient`).
"""

from __future__ import annotations

from typing import Literal

import torch

from fusionlib.common.perceptual import sobel_gradient
from fusionlib.dcmif.model import correlate

__all__ = ["jsrl_loss", "ir_weight_map", "inference_loss", "fusion_loss"]


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean()


def _f(x) -> float:
    return float(x.detach()) if torch.is_tensor(x) else float(x)


def jsrl_loss(out: dict, mode: Literal["paper", "code"] = "paper") -> tuple[torch.Tensor, dict[str, float]]:
    """Stage-1 reconstruction loss on the output of :class:`fusionlib.dcmif.model.JSRL`.

    ``paper`` (Eq. 11): Σ_n ℓ_S + ℓ_D with ℓ_S = ‖D_(n−1) ∗ S_(n) − I‖₁ and ℓ_D = ‖D_(n) ∗ S_(n) − I‖₁
    over both modalities (ℓ_S of n = 1 is the constant ‖I‖₁ since D_(0) = 0; it is kept so the value
    matches the formula, and has no gradient). ``code``: ℓ_D of the last IV-DLB only.
    Any other output (e.g. :class:`~fusionlib.dcmif.model.ConvCodec`'s) gives its plain
    reconstruction loss.

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §3.
    """
    if "steps" not in out:
        rec = _l1(out["recon_ir"], out["ir"]) + _l1(out["recon_vis"], out["vis"])
        return rec, {"recon": _f(rec)}
    ir, vis = out["ir"], out["vis"]
    if mode == "code":
        s_ir, s_vis, _, d = out["steps"][-1]
        loss = _l1(correlate(s_ir, d), ir) + _l1(correlate(s_vis, d), vis)
        return loss, {"l_D": _f(loss)}
    if mode != "paper":
        raise ValueError(f"jsrl loss mode must be 'paper' or 'code', got {mode!r}")
    l_s = l_d = 0.0
    for s_ir, s_vis, d_prev, d in out["steps"]:
        l_s = l_s + _l1(correlate(s_ir, d_prev), ir) + _l1(correlate(s_vis, d_prev), vis)
        l_d = l_d + _l1(correlate(s_ir, d), ir) + _l1(correlate(s_vis, d), vis)
    return l_s + l_d, {"l_S": _f(l_s), "l_D": _f(l_d)}


def ir_weight_map(ir: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Eq. 17's A_ir: each IR image min–max normalised over its own H×W.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §2.
    """
    lo = ir.amin((-2, -1), keepdim=True)
    hi = ir.amax((-2, -1), keepdim=True)
    return (ir - lo) / (hi - lo + eps)


def inference_loss(pir: torch.Tensor, ir: torch.Tensor, vis: torch.Tensor, s_pir: torch.Tensor,
                   s_ir: torch.Tensor, *, coefficient_term: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
    """ℓ_inf = ℓ_int + ℓ_reg + ℓ_grad (Eq. 15–18) for the pseudo-IR ``pir`` = I_pir.

    ℓ_int = ‖I_pir − I_ir‖₁ + ‖S_pir⁽¹⁾ − S_ir‖₁ (Eq. 16), ℓ_reg = ‖A_ir ⊙ I_pir − I_ir‖₁ (Eq. 17),
    ℓ_grad = ‖∇I_pir − ∇I_vis‖₁ (Eq. 18). ``s_ir`` are the coefficients of the real IR from the frozen
    IR branch. ``coefficient_term=False`` drops ‖S_pir⁽¹⁾ − S_ir‖₁ (a candidate of notebook 23 §2; the
    paper and the code keep it).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §2.
    """
    l_int = _l1(pir, ir) + (_l1(s_pir, s_ir) if coefficient_term else 0.0)
    l_reg = _l1(ir_weight_map(ir) * pir, ir)
    l_grad = _l1(sobel_gradient(pir), sobel_gradient(vis))
    return l_int + l_reg + l_grad, {"l_int": _f(l_int), "l_reg": _f(l_reg), "l_grad": _f(l_grad)}


def fusion_loss(fused: torch.Tensor, ir_like: torch.Tensor, vis: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """ℓ_f = ‖I_f − max(I_ir*, I_vis)‖₁ + ‖∇I_f − max(∇I_ir*, ∇I_vis)‖₁ (Eq. 20–21).

    ``ir_like`` is the pseudo-IR I_pir in the paper and the real IR in the official code (docs/dcmif.md#losses);
    :mod:`fusionlib.dcmif.train` chooses (``afri_target``).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §2.
    """
    l_int = _l1(fused, torch.maximum(ir_like, vis))
    l_grad = _l1(sobel_gradient(fused), torch.maximum(sobel_gradient(ir_like), sobel_gradient(vis)))
    return l_int + l_grad, {"l_int": _f(l_int), "l_grad": _f(l_grad)}
