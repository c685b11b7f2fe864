"""LDFusion's total loss (paper Eq. 10, 13, 16; docs/ldfusion.md#language-driven-loss): the language-driven loss in CLIP space
plus VGG-19 feature fidelity. Derived in ``notebooks/40_ldfusion_clip_space.ipynb``; trained in 41.

    L = w_g·L_g + w_p·L_p + w_Φ·Φ + w_v·L_v

- L_g: the directional loss (:func:`fusionlib.ldfusion.clip.directional_loss`) of the
  whole fused image; L_p: its mean over ``rounds`` × B random patches (shared parameters, masked by
  the entropy filter, source vectors from the whole images);
- Φ: the direction regulariser; L_v: Σ_l MSE(ψ_l(F), max(ψ_l(VIS), ψ_l(IR))) over VGG-19's relu2_1,
  relu3_1, relu4_2 on 0–1 input (:class:`fusionlib.common.perceptual.VGG19Features`).
- Weights: the code's (2, 10, 6·½, 10) by default (what the released weights were trained with);
  the paper's (L_d = L_g + L_p, λ = 0.5, α = 1) with ``weights=PAPER_WEIGHTS``. ``language=False``
  keeps L_v only (Table 1's "W/O LDL"); ``texts`` changes the prompts (Tables 1 and 3).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from fusionlib.ldfusion.clip import (
    TEXTS,
    clip_preprocess,
    direction_regulariser,
    directional_loss,
    patch_mask,
    sample_patches,
    text_directions,
)
from fusionlib.common.perceptual import VGG19Features

__all__ = ["CODE_WEIGHTS", "PAPER_WEIGHTS", "LanguageDrivenLoss"]

CODE_WEIGHTS = {"global": 2.0, "patch": 10.0, "phi": 3.0, "vgg": 10.0}  # the code: 6 × (½Φ)
PAPER_WEIGHTS = {"global": 1.0, "patch": 1.0, "phi": 0.5, "vgg": 1.0}   # λ = 0.5, α = 1


class LanguageDrivenLoss(nn.Module):
    """``loss(fused, vis, ir) -> (total, parts)`` on grey ``(B, 1, H, W)`` in [0, 1].

    Args:
        clip_model, tokenizer: from :func:`fusionlib.ldfusion.clip.load_clip` (frozen); ``None`` with
            ``language=False`` (L_v alone needs no CLIP).
        vgg: the frozen feature network, a list of taps per call (:class:`VGG19Features`, or what
            :func:`fusionlib.common.perceptual.loss_network` returns when torchvision's weights are absent).
        weights: :data:`CODE_WEIGHTS` or :data:`PAPER_WEIGHTS` (or your own).
        texts: ``{"vis", "ir", "fused"}`` prompts (default :data:`TEXTS`).
        rounds: patch rounds per step (the code: 32); sigma: the entropy threshold in bits (6).
        language: ``False`` drops the language-driven terms (L_g, L_p, Φ).

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §2.
    """

    def __init__(self, clip_model, tokenizer, vgg: VGG19Features, weights: dict | None = None,
                 texts: dict | None = None, rounds: int = 32, sigma: float = 6.0, language: bool = True):
        super().__init__()
        self.clip, self.vgg = clip_model, vgg
        self.weights = dict(weights or CODE_WEIGHTS)
        self.texts = dict(texts or TEXTS)
        self.rounds, self.sigma, self.language = rounds, sigma, language
        if clip_model is None:  # L_v only needs no CLIP at all
            if language:
                raise ValueError("the language-driven terms need a CLIP model (clip_model=None only with language=False)")
            self.register_buffer("dt_vis", None)
            self.register_buffer("dt_ir", None)
            return
        device = next(clip_model.parameters()).device
        dt_vis, dt_ir = text_directions(clip_model, tokenizer, device, self.texts)
        self.register_buffer("dt_vis", dt_vis)  # ΔT_vis
        self.register_buffer("dt_ir", dt_ir)    # ΔT_ir

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.clip.encode_image(clip_preprocess(x)).float(), dim=-1)

    def feature_fidelity(self, fused: torch.Tensor, vis: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
        """L_v (Eq. 13): MSE to the element-wise max of the sources' post-ReLU VGG-19 features."""
        with torch.no_grad():
            targets = [torch.maximum(a, b) for a, b in zip(self.vgg(vis), self.vgg(ir))]
        return sum(F.mse_loss(f, t) for f, t in zip(self.vgg(fused), targets))

    def forward(self, fused: torch.Tensor, vis: torch.Tensor, ir: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        l_v = self.feature_fidelity(fused, vis, ir)
        # "lit": the share of output pixels above 0; the output clamp passes no gradient where it is 0,
        # so a network whose output went black (lit = 0) can no longer learn (docs/ldfusion.md#training)
        parts = {"l_v": float(l_v.detach()), "lit": float((fused.detach() > 0).float().mean())}
        total = self.weights["vgg"] * l_v
        if not self.language:
            return total, parts
        with torch.no_grad():
            e_vis, e_ir = self.embed(vis), self.embed(ir)
        e_f = self.embed(fused)
        l_g = directional_loss(e_f, e_vis, e_ir, self.dt_vis, self.dt_ir).mean()
        p_vis, p_ir, p_f = sample_patches([vis, ir, fused], self.rounds, generator=generator)
        mask = patch_mask(p_vis, p_ir, self.sigma)
        l_p = (mask * directional_loss(self.embed(p_f), e_vis.repeat(self.rounds, 1), e_ir.repeat(self.rounds, 1),
                                       self.dt_vis, self.dt_ir)).mean()  # masked patches still count in the mean
        phi = direction_regulariser(e_f, e_vis, e_ir).mean()
        total = total + self.weights["global"] * l_g + self.weights["patch"] * l_p + self.weights["phi"] * phi
        parts.update({"l_g": float(l_g.detach()), "l_p": float(l_p.detach()), "phi": float(phi.detach()),
                      "valid_patches": float(mask.mean())})
        return total, parts
