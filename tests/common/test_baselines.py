"""fusionlib.common.baselines: shapes, identities, known behaviour, bad input."""

import pytest
import torch

from fusionlib.data import haze, synthetic
from fusionlib.common import baselines as bl
from fusionlib.common.rgb import fuse_rgb


@pytest.fixture
def pair():
    s = synthetic.make_scene(4, (72, 88))
    ir = torch.from_numpy(s.ir)[None, None]
    y = torch.from_numpy(s.vis).permute(2, 0, 1)[None].mean(1, keepdim=True)
    return ir, y


@pytest.mark.parametrize("name", list(bl.BASELINES))
def test_fusing_an_image_with_itself_returns_it(name, pair):
    ir, _ = pair
    torch.testing.assert_close(bl.BASELINES[name](ir, ir), ir, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(bl.BASELINES))
def test_shapes_ranges_and_odd_sizes(name, pair):
    ir, y = pair
    for h, w in ((72, 88), (67, 81)):
        out = bl.BASELINES[name](ir[..., :h, :w], y[..., :h, :w])
        assert out.shape == (1, 1, h, w) and out.min() >= 0 and out.max() <= 1


def test_average_and_max(pair):
    ir, y = pair
    torch.testing.assert_close(bl.average(ir, y), (ir + y) / 2)
    torch.testing.assert_close(bl.max_abs(ir, y), torch.maximum(ir, y))


def test_detail_fusers_keep_more_gradient_than_average(pair):
    ir, y = pair

    def grad(x):
        return (x.diff(dim=-1).abs().mean() + x.diff(dim=-2).abs().mean()).item()
    for fuser in (bl.laplacian_pyramid, bl.gff):
        assert grad(fuser(ir, y)) > grad(bl.average(ir, y))


def test_gff_follows_the_salient_source(pair):
    ir, _ = pair
    flat = torch.full_like(ir, 0.5)
    out = bl.gff(ir, flat)
    # where IR carries all the detail, the fused detail is IR's
    assert torch.corrcoef(torch.stack([out.flatten(), ir.flatten()]))[0, 1] > 0.95


def test_rgb_wrapper_and_dehaze_first(pair):
    ir, _ = pair
    s = synthetic.make_scene(4, (72, 88))
    vis = torch.from_numpy(s.vis).permute(2, 0, 1)[None]
    out = fuse_rgb(bl.gff)(ir, vis)
    assert out.shape == (1, 3, 72, 88)
    # the wrapper fuses Y only: with an identity Y fuser the visible image comes back
    torch.testing.assert_close(fuse_rgb(lambda i, y: y)(ir, vis), vis.clamp(0, 1), atol=2e-6, rtol=0)
    assert fuse_rgb(bl.average).__name__ == "average_rgb"
    hazy = haze.synthesize_haze(vis, seed=0, A=0.9, t_mean=0.4, spread=0.2).hazy
    two_stage = bl.dehaze_first(fuse_rgb(bl.average))(ir, hazy)
    assert two_stage.shape == (1, 3, 72, 88)
    clear = fuse_rgb(bl.average)(ir, vis)
    assert (two_stage - clear).abs().mean() < (fuse_rgb(bl.average)(ir, hazy) - clear).abs().mean()


def test_bad_input(pair):
    ir, y = pair
    with pytest.raises(ValueError, match=r"\(1, 3, 72, 88\)"):
        bl.gff(ir, y.expand(1, 3, -1, -1))
    with pytest.raises(ValueError, match="differ"):
        bl.average(ir, y[..., :70, :])


def test_laplacian_pyramid_minimum_size():
    """Issue 12 item 6: under 4 px kornia failed deep inside with a padding error."""
    with pytest.raises(ValueError, match="at least 4×4 pixels, got \\(3, 9\\)"):
        bl.laplacian_pyramid(torch.rand(1, 1, 3, 9), torch.rand(1, 1, 3, 9))
    assert bl.laplacian_pyramid(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4)).shape == (1, 1, 4, 4)
