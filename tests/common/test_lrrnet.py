"""fusionlib.common.lrrnet: the exact LRRNet, its LLRR block, and the authors' checkpoint."""

import cv2
import pytest
import torch
import torch.nn.functional as F

from fusionlib.common import lrrnet
from fusionlib.paths import data_root, weights_root


def test_parameter_count_matches_the_released_checkpoint():
    # 49,204 = the element count of the authors' state dict (docs/lrcfuse.md#lrrnet)
    assert sum(p.numel() for p in lrrnet.LRRNet().parameters()) == 49_204


def test_soft_threshold():
    r = torch.linspace(-2, 2, 9).view(1, 1, 3, 3).repeat(1, 2, 1, 1)
    theta = torch.tensor([[0.5, 0.0]])
    out = lrrnet.soft_threshold(r, theta)
    torch.testing.assert_close(out[:, 1], r[:, 1])                                # θ = 0: identity
    assert (out[:, 0][r[:, 0].abs() <= 0.5] == 0).all()                           # dead zone
    big = r[:, 0].abs() > 0.5
    torch.testing.assert_close(out[:, 0][big], r[:, 0][big] - 0.5 * r[:, 0][big].sign())  # shrinkage
    torch.testing.assert_close(lrrnet.soft_threshold(-r, theta), -out)            # odd


def test_llrr_block_equals_its_formula():
    torch.manual_seed(0)
    block = lrrnet.LLRRBlock(n2=6)
    x, z = torch.rand(2, 1, 7, 9), torch.randn(2, 6, 7, 9)
    theta, lam_z = torch.rand(1, 6), torch.tensor([[0.3]])

    def conv(t, layer):  # reflection pad 1, then the layer's 3×3 convolution
        return F.conv2d(F.pad(t, (1, 1, 1, 1), mode="reflect"), layer.conv2d.weight, layer.conv2d.bias)
    r = lam_z * z + conv(x - conv(z, block.conv_Wdz), block.conv_Wdtz)
    expected = torch.sign(r) * torch.clamp(r.abs() - theta.view(1, -1, 1, 1), min=0)
    torch.testing.assert_close(block(x, z, theta, lam_z), expected)


def test_shapes_and_gradient_flow():
    torch.manual_seed(0)
    model = lrrnet.LRRNet(n=4, blocks=2)
    ir, vis = torch.rand(2, 1, 12, 10), torch.rand(2, 1, 12, 10)
    out = model(ir, vis)
    assert out["fused"].shape == (2, 1, 12, 10) and out["ir_low"].shape == (2, 4, 12, 10)
    out["fused"].mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bad_input():
    model = lrrnet.LRRNet(n=2, blocks=1)
    with pytest.raises(ValueError, match=r"\(1, 3, 8, 8\)"):
        model(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ"):
        model(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9))


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="imagefusion-LRRNet"):
        lrrnet.load_official(tmp_path / "none.model")
    state = lrrnet.LRRNet().state_dict()
    state.pop("decoder.conv_ReL.conv2d.bias")
    state["get_ls1.lamj"] = torch.zeros(1, 64)
    torch.save(state, tmp_path / "bad.model")
    with pytest.raises(ValueError, match=r"missing \['decoder.conv_ReL.conv2d.bias'\].*get_ls1.lamj \(1, 64\) vs \(1, 256\)"):
        lrrnet.load_official(tmp_path / "bad.model")


@pytest.fixture
def official():
    path = weights_root() / lrrnet.OFFICIAL_CHECKPOINT
    if not path.is_file():
        pytest.skip(f"needs the authors' checkpoint at {path} (FUSIONLIB_WEIGHTS=../shared/weights)")
    return lrrnet.load_official(path)


def test_official_checkpoint_runs_with_the_official_normalisation(official):
    folder = data_root() / "tno" / "test"
    if not (folder / "ir" / "01.png").is_file():
        pytest.skip("needs the TNO sample pair 01 (FUSIONLIB_DATA=../shared/data)")
    ir = torch.from_numpy(cv2.imread(str(folder / "ir" / "01.png"), cv2.IMREAD_GRAYSCALE))[None, None, 200:264, 300:380]
    vis = torch.from_numpy(cv2.imread(str(folder / "vi" / "01.png"), cv2.IMREAD_GRAYSCALE))[None, None, 200:264, 300:380]
    out = lrrnet.fuse_official(official, ir, vis)
    assert out.dtype == torch.uint8 and out.shape == (1, 1, 64, 80)
    # min-max to [0, 255) then truncation: the extremes are exactly 0 and 254
    assert out.min().item() == 0 and out.max().item() == 254
    # a fusion: correlated with both sources
    f = out.float().flatten()
    for src in (ir, vis):
        assert torch.corrcoef(torch.stack([f, src.float().flatten()]))[0, 1] > 0.3
