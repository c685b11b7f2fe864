"""IASSF's networks (fusionlib.iassf.model): the parameter counts computed from the official code
(docs/iassf.md#parameters), any input size, the haze-density estimate's range and behaviour, bad inputs."""

import pytest
import torch

from fusionlib.iassf import model as m


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return m.IASSF().eval()


def test_parameter_counts_match_the_code(net):
    d = net.dehaze
    assert m.count_parameters(d.encoder) == 6_920
    assert sum(p.numel() for n, p in d.named_parameters() if n.startswith(("prompt", "peb"))) == 7_886_655
    assert m.count_parameters(d) == 9_184_895 and m.count_parameters(net.fusion) == 2_013_681
    assert m.count_parameters(net.fusion.peb) == 30_877 and m.count_parameters(net.fusion.enc) == 15_732
    assert m.count_parameters(net) == 11_198_576
    assert m.count_parameters(net, exclude=m.PROMPT_POOLS) == 1_368_176


@pytest.mark.parametrize("size", [(5, 9), (16, 16), (37, 53), (64, 40)])
def test_any_input_size(net, size):
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        out = net(x, x.mean(1, keepdim=True).expand(-1, 3, -1, -1))
    assert {k: tuple(v.shape[-2:]) for k, v in out.items()} == dict.fromkeys(("dehazed", "ir_projection", "density", "fused"), size)
    assert torch.isfinite(out["fused"]).all()


def test_bad_inputs(net):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.zeros(1, 3, 16, 16), torch.zeros(1, 1, 16, 16))


def test_haze_density_range_and_behaviour():
    f = torch.zeros(1, 4, 64, 96)
    f[..., 48:] = 1.0                       # the right part is bright (hazy-looking), the left dark
    h = m.haze_density(f, window=16)
    assert h.shape == (1, 1, 64, 96) and h.min() >= -0.05 and h.max() <= 1.0
    assert h[..., :, :20].mean() < 0.1 and h[..., :, 76:].mean() > 0.85  # density follows the dark channel
    # the paper's A-normalisation changes the estimate when the brightest region is not white
    g = torch.full((1, 1, 64, 96), 0.5)
    g[..., ::7, ::7] = 1.0                  # isolated bright pixels: the dark channel peaks at 0.5, so A ≈ 0.5
    g[..., 0, 1] = 0.0
    assert not torch.allclose(m.haze_density(g, use_atmosphere=True), m.haze_density(g))
    assert torch.equal(m.haze_density(f * 3 + 7, window=16), h)  # per-sample min–max normalisation


def test_window_attention_bias_is_relative():
    pos = m.relative_positions(8)
    assert pos.shape == (64, 64, 2) and torch.equal(pos[0, 0], torch.zeros(2))
    assert torch.allclose(pos[0, 63], -torch.log1p(torch.tensor([7.0, 7.0])))


@pytest.mark.parametrize("blocks, params", [(1, 1_970_103), (3, 1_981_515), (5, 2_013_681), (7, 2_127_675)])
def test_fusion_blocks_m(blocks, params):
    """Table IX's M: 2L − 1 blocks over L scales; M = 5 is the code's network."""
    net = m.IASSF(blocks=blocks)
    assert m.count_parameters(net.fusion) == params
    assert net(torch.zeros(1, 3, 37, 53), torch.zeros(1, 3, 37, 53))["fused"].shape == (1, 3, 37, 53)
    with pytest.raises(ValueError, match="odd"):
        m.FusionNet(blocks=4)


def test_ablations():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.manual_seed(0)
    full = m.IASSF().eval()
    for name in m.IASSF.ABLATIONS:
        torch.manual_seed(0)
        ablated = m.IASSF(ablation=name).eval()
        with torch.no_grad():  # same weights, one switch off: a different output
            assert not torch.allclose(ablated(x, x)["fused"], full(x, x)["fused"]), name
    assert m.IASSF(ablation="w/o FB-PEB").fusion.peb is None
    with pytest.raises(ValueError, match="ablation"):
        m.IASSF(ablation="w/o everything")


def test_haze_density_grows_with_haze_and_ignores_uniform_haze():
    """Where haze is denser, H is larger; but a *uniform* haze is an affine map of the image that the
    per-sample min–max normalisation removes, so the code's HDE cannot see it (notebook 30 §2)."""
    from fusionlib.data.haze import scatter
    from fusionlib.data.synthetic import make_scene
    clear = torch.from_numpy(make_scene(1, (96, 128)).vis).permute(2, 0, 1)[None].float()
    t = torch.full_like(clear[:, :1], 0.9)
    t[..., 64:] = 0.2                                            # dense haze on the right half
    h = m.haze_density(scatter(clear, t, 0.9), quantise=False)
    assert float(h[..., :48].mean()) + 0.3 < float(h[..., 80:].mean())
    uniform = [m.haze_density(scatter(clear, torch.full_like(t, v), 0.9), quantise=False) for v in (0.9, 0.3)]
    assert torch.allclose(uniform[0], uniform[1], atol=1e-4)


def test_pgm_and_peb_shapes():
    d = m.DehazeNet(dim=8, prompt_size=16)
    f_vi, f_ir = torch.randn(2, 8, 24, 40), torch.randn(2, 8, 24, 40)
    p = d.prompt(f_vi, f_ir)                                     # Eq. 2: resized to the features
    assert p.shape == (2, 8, 24, 40) and d.prompt_pool.shape == (5, 8, 16, 16)
    assert m.PromptEmbedding(8, 2, depth=32)(f_ir, p).shape == (2, 8, 24, 40)


def test_dehaze_first_feeds_the_dehazed_image():
    from fusionlib.data.haze import dehaze_dark_channel
    from fusionlib.common.baselines import dehaze_first
    hazy = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = dehaze_first(lambda ir, vis: vis)(torch.zeros(1, 1, 32, 32), hazy)
    assert torch.equal(out, dehaze_dark_channel(hazy)[0])
