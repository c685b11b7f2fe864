"""DCMIF's losses (fusionlib.dcmif.loss) against their formulas (Eq. 11, 15–18, 20–21)."""

import pytest
import torch

from fusionlib.dcmif.loss import fusion_loss, inference_loss, ir_weight_map, jsrl_loss
from fusionlib.common.perceptual import sobel_gradient
from fusionlib.dcmif.model import JSRL, ConvCodec


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return [torch.rand(2, 1, 16, 16, generator=g) for _ in range(4)]


def test_ir_weight_map():
    ir = torch.stack([torch.linspace(0.2, 0.7, 64).reshape(1, 8, 8), torch.full((1, 8, 8), 0.4)])
    a = ir_weight_map(ir)
    assert a[0].min() == 0 and torch.isclose(a[0].max(), torch.tensor(1.0)) and torch.equal(a[1], torch.zeros(1, 8, 8))


def test_inference_loss_is_eq_15_to_18(images):
    pir, ir, vis, _ = images
    s_pir, s_ir = torch.randn(2, 4, 16, 16), torch.randn(2, 4, 16, 16)
    loss, parts = inference_loss(pir, ir, vis, s_pir, s_ir)
    lo, hi = ir.amin((2, 3), keepdim=True), ir.amax((2, 3), keepdim=True)
    expected = ((pir - ir).abs().mean() + (s_pir - s_ir).abs().mean()
                + ((ir - lo) / (hi - lo + 1e-8) * pir - ir).abs().mean()
                + (sobel_gradient(pir) - sobel_gradient(vis)).abs().mean())
    assert torch.isclose(loss, expected) and parts.keys() == {"l_int", "l_reg", "l_grad"}
    assert inference_loss(ir, ir, vis, s_ir, s_ir)[1]["l_int"] == 0


def test_fusion_loss_is_eq_20_21(images):
    fused, ir_like, vis, _ = images
    loss, parts = fusion_loss(fused, ir_like, vis)
    expected = ((fused - torch.maximum(ir_like, vis)).abs().mean()
                + (sobel_gradient(fused) - torch.maximum(sobel_gradient(ir_like), sobel_gradient(vis))).abs().mean())
    assert torch.isclose(loss, expected)
    assert fusion_loss(torch.maximum(ir_like, vis), ir_like, vis)[1]["l_int"] == 0
    fused.requires_grad_(True)
    fusion_loss(fused, ir_like, vis)[0].backward()
    assert fused.grad is not None and fused.grad.abs().sum() > 0


def test_jsrl_loss_modes(images):
    ir, vis = images[0], images[1]
    out = JSRL(n_atoms=4, kernel=3, n_iter=1)(ir, vis)
    loss, parts = jsrl_loss(out, "paper")
    # N = 1: D_(0) = 0, so ℓ_S is ‖I_ir‖₁ + ‖I_vis‖₁ (a constant)
    assert parts["l_S"] == pytest.approx(float(ir.abs().mean() + vis.abs().mean()), rel=1e-6)
    code, code_parts = jsrl_loss(out, "code")
    assert code_parts["l_D"] == pytest.approx(parts["l_D"], rel=1e-6) and torch.isclose(loss, code + parts["l_S"])
    with pytest.raises(ValueError, match="paper"):
        jsrl_loss(out, "both")
    conv_loss, conv_parts = jsrl_loss(ConvCodec(4)(ir, vis))
    assert "recon" in conv_parts and conv_loss > 0
