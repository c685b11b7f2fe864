"""IASSF's loss (fusionlib.iassf.loss) is its formula."""

import pytest
import torch


def test_loss_is_its_formula():
    from fusionlib.iassf.loss import iassf_loss
    from fusionlib.common.perceptual import sobel_gradient
    g = torch.Generator().manual_seed(0)
    fused, dehazed, ir, clear = (torch.rand(2, 3, 16, 16, generator=g) * 2 - 1 for _ in range(4))
    loss, parts = iassf_loss(fused, dehazed, ir, clear)
    expected = ((fused - torch.maximum(ir, clear)).abs().mean()
                + (sobel_gradient(fused) - torch.maximum(sobel_gradient(ir), sobel_gradient(clear))).abs().mean()
                + 2 * (dehazed - clear).abs().mean())
    assert torch.isclose(loss, expected) and parts.keys() == {"l_int", "l_grad", "l_dehaze"}
    assert iassf_loss(fused, clear, ir, clear)[1]["l_dehaze"] == 0
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        iassf_loss(fused[:, :1], dehazed[:, :1], ir[:, :1], clear[:, :1])
