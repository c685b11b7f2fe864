"""The LRRNet / LRCFuse multi-level loss (docs/lrcfuse.md#lrrnet for LRRNet's, docs/lrcfuse.md#loss for LRCFuse's).

    L = w_pixel·MSE(F, VIS)
      + w_shallow·MSE(φ₁(F), φ₁(VIS))
      + Σ_{k=2,3} γ_k·MSE(φ_k(F), w_ir·φ_k(IR) + w_vi·φ_k(VIS))
      + w_deep·MSE(Gram(φ₄(F)), Gram(φ₄(IR)))
      + w_sobel·L1(∇F, max(∇IR, ∇VIS))                      (LRCFuse only)

φ₁…φ₄ = VGG-16 relu1_2, relu2_2, relu3_3, relu4_3 (:mod:`fusionlib.common.perceptual`). Scale
convention (LRRNet's): F is the network output min-max normalised per sample and ×255; VIS and IR
are the raw 0–255 grey images; VGG sees 0–255 without normalisation. Derived in
``notebooks/12_lrcfuse_training_and_tables.ipynb``.

Weights (:data:`LRCFUSE_WEIGHTS`, the paper's text, read as in docs/lrcfuse.md#loss: the inner weights are
the final ones) and :data:`LRRNET_WEIGHTS` (LRRNet's released code). The Sobel target is not
stated in the paper; max(∇IR, ∇VIS) is the usual choice (docs/lrcfuse.md#loss) (``sobel_target="ir"`` is the
alternative it mentions).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from fusionlib.common.perceptual import gram_matrix, sobel_gradient
from fusionlib.common.lrrnet import normalise

__all__ = ["LRCFUSE_WEIGHTS", "LRRNET_WEIGHTS", "SOURCES", "MultiLevelLoss"]

# paper text (docs/lrcfuse.md#loss, Tables 1-5): pixel 10, λ = 1.9, γ = (0.01, 0.5), w_ir = 1.0, w_vi = 0.5, deep 700, Sobel 1000
LRCFUSE_WEIGHTS = dict(pixel=10.0, shallow=1.9, middle=(0.01, 0.5), w_ir=1.0, w_vi=0.5, deep=700.0, sobel=1000.0)
# LRRNet's code (docs/lrcfuse.md#lrrnet): 10, 1.5, (0.01, 0.5), w_ir 3.0, w_vi 0.5, Gram 2000, no Sobel term
LRRNET_WEIGHTS = dict(pixel=10.0, shallow=1.5, middle=(0.01, 0.5), w_ir=3.0, w_vi=0.5, deep=2000.0, sobel=0.0)
SOURCES = ("raw", "stretched")  # what the output is compared with: the sources as they are (LRRNet's code) or stretched as it is


class MultiLevelLoss(nn.Module):
    """``forward(fused_raw, ir, vis) -> (total, {term: weighted value})``: each logged term is its
    weighted contribution, so the terms add up to the total and a log shows which ones matter.

    ``vgg`` is the frozen loss network returning four taps (:class:`fusionlib.common.perceptual.VGG16Features`,
    or what :func:`fusionlib.common.perceptual.loss_network` returns when torchvision's weights are absent).

    ``feature_scale`` c multiplies every tap's features before the terms (so the feature terms scale by c²
    and the Gram term by c⁴): how large VGG-16's features are beside a stand-in's, which nothing here
    measures (docs/lrcfuse.md#loss-network-we-have). 1 takes the stand-in's features as they come; notebook
    12 §4 moves it 2× either way.

    ``sources`` says what F is compared with. ``"raw"`` (LRRNet's code): the grey sources as they are, while F
    is min-max stretched to 0–255. On dark data (MSRS: notebook 12 §1 prints its patches' grey levels) that
    mismatch makes an all-black output with one bright pixel cheaper than any fusion
    (docs/lrcfuse.md#sources-stretched-like-the-output). ``"stretched"``: each source min-max stretched per
    sample as F is, the identity on sources that already span 0–255.

    Args (forward):
        fused_raw: network output ``(B, 1, H, W)``, any scale (normalised here as LRRNet does).
        ir, vis: grey sources ``(B, 1, H, W)`` on 0–255.

    Derived in ``notebooks/12_lrcfuse_training_and_tables.ipynb`` §1.
    """

    def __init__(self, vgg: nn.Module, weights: dict | None = None, sobel_target: str = "max", feature_scale: float = 1.0,
                 sources: str = "raw"):
        super().__init__()
        if sobel_target not in ("max", "ir"):
            raise ValueError(f"sobel_target must be 'max' or 'ir', got {sobel_target!r}")
        if sources not in SOURCES:
            raise ValueError(f"sources must be one of {SOURCES}, got {sources!r}")
        self.sources = sources
        if not feature_scale > 0:
            raise ValueError(f"feature_scale must be > 0, got {feature_scale!r}")
        self.feature_scale = float(feature_scale)
        self.vgg = vgg
        self.w = dict(LRCFUSE_WEIGHTS if weights is None else weights)
        missing = set(LRCFUSE_WEIGHTS) - set(self.w)
        if missing:
            raise ValueError(f"loss weights lack {sorted(missing)}")
        self.sobel_target = sobel_target

    def forward(self, fused_raw: torch.Tensor, ir: torch.Tensor, vis: torch.Tensor):
        w = self.w
        f = normalise(fused_raw) * 255                      # F on 0–255, as LRRNet's training
        if self.sources == "stretched":                     # the sources on F's scale
            ir, vis = normalise(ir) * 255, normalise(vis) * 255
        c = self.feature_scale
        pf, pi, pv = ([c * t for t in self.vgg(x)] if c != 1 else self.vgg(x) for x in (f, ir, vis))
        parts = {  # each term times its weight: the parts add up to the total the optimiser sees
            "pixel": w["pixel"] * F.mse_loss(f, vis),
            "shallow": w["shallow"] * F.mse_loss(pf[0], pv[0]),
            "middle": sum(g * F.mse_loss(pf[k], w["w_ir"] * pi[k] + w["w_vi"] * pv[k])
                          for g, k in zip(w["middle"], (1, 2))),
            "deep": w["deep"] * F.mse_loss(gram_matrix(pf[3]), gram_matrix(pi[3])),
        }
        if w["sobel"]:
            target = sobel_gradient(ir) if self.sobel_target == "ir" else torch.maximum(sobel_gradient(ir), sobel_gradient(vis))
            parts["sobel"] = w["sobel"] * F.l1_loss(sobel_gradient(f), target)
        total = sum(parts.values())
        return total, {k: float(v.detach()) for k, v in parts.items()}
