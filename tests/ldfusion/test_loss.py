"""LDFusion's language-driven loss (fusionlib.ldfusion.loss): its terms and weights."""

import pytest
import torch

from tests.ldfusion.test_clip import TinyClip


def test_language_driven_loss_terms_and_weights():
    from fusionlib.ldfusion.loss import CODE_WEIGHTS, PAPER_WEIGHTS, LanguageDrivenLoss
    from fusionlib.common.perceptual import load_vgg19
    torch.manual_seed(0)
    clip, vgg = TinyClip(), load_vgg19("random")
    g = torch.Generator().manual_seed(0)
    vis, ir = torch.rand(2, 1, 48, 48, generator=g), torch.rand(2, 1, 48, 48, generator=g)
    fused = ((vis + ir) / 2).requires_grad_(True)
    loss = LanguageDrivenLoss(clip, lambda texts: torch.arange(len(texts)), vgg, rounds=2)
    total, parts = loss(fused, vis, ir, generator=torch.Generator().manual_seed(1))
    assert set(parts) == {"l_v", "lit", "l_g", "l_p", "phi", "valid_patches"} and parts["valid_patches"] == 1.0  # noise: > 6 bits
    assert parts["lit"] == pytest.approx(float((fused > 0).float().mean()))
    w = CODE_WEIGHTS
    assert total.item() == pytest.approx(w["vgg"] * parts["l_v"] + w["global"] * parts["l_g"] + w["patch"] * parts["l_p"]
                                         + w["phi"] * parts["phi"], rel=1e-5)
    total.backward()
    assert fused.grad.abs().sum() > 0
    only_v, p2 = LanguageDrivenLoss(clip, lambda texts: torch.arange(len(texts)), vgg, language=False)(fused, vis, ir)
    assert set(p2) == {"l_v", "lit"} and only_v.item() == pytest.approx(10 * p2["l_v"], rel=1e-5)
    _, dark = LanguageDrivenLoss(clip, lambda texts: torch.arange(len(texts)), vgg, language=False)(fused * 0, vis, ir)
    assert dark["lit"] == 0.0  # a black output: the clamp passes no gradient
    assert PAPER_WEIGHTS == {"global": 1.0, "patch": 1.0, "phi": 0.5, "vgg": 1.0}
