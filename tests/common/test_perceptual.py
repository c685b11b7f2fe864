"""fusionlib.common.perceptual: taps, weight loading (torchvision and LRRNet layouts), Gram, Sobel."""

from collections import OrderedDict

import pytest
import torch

from fusionlib.common import perceptual as P


def tv_state(model: P.VGG16Features) -> OrderedDict:
    """The model's weights under torchvision's vgg16 key names (features.N.*), plus a classifier key."""
    state = OrderedDict()
    for k, i in enumerate(P._TV_INDEX):
        state[f"features.{i}.weight"] = model.convs[k].weight.clone()
        state[f"features.{i}.bias"] = model.convs[k].bias.clone()
    state["classifier.0.weight"] = torch.zeros(4, 4)
    return state


def test_taps_shapes_frozen_and_grey_replicated():
    torch.manual_seed(0)
    vgg = P.load_vgg16("random")
    assert vgg.pretrained is False and not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    x = torch.rand(2, 1, 32, 40) * 255
    taps = vgg(x)
    assert [t.shape[1:] for t in taps] == [(64, 32, 40), (128, 16, 20), (256, 8, 10), (512, 4, 5)]
    torch.testing.assert_close(taps[3], vgg(x.repeat(1, 3, 1, 1))[3])
    assert all((t >= 0).all() for t in taps)  # post-ReLU taps


def test_loading_torchvision_and_lrrnet_layouts(tmp_path):
    torch.manual_seed(1)
    source = P.VGG16Features()
    x = torch.rand(1, 1, 16, 16) * 255
    torch.save(tv_state(source), tmp_path / "tv.pth")
    loaded = P.load_vgg16(path=tmp_path / "tv.pth")
    assert loaded.pretrained is True
    torch.testing.assert_close(loaded(x)[2], source(x)[2])
    lrr = OrderedDict((f"t{i}", v) for i, v in enumerate(tv_state(source).values()))  # first 20 = convs
    torch.save(lrr, tmp_path / "lrr.pth")
    torch.testing.assert_close(P.load_vgg16(path=tmp_path / "lrr.pth")(x)[1], source(x)[1])


def test_missing_and_wrong_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth.*weights='random'"):
        P.load_vgg16()
    torch.save({"features.0.weight": torch.zeros(64, 1, 3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"conv 3→64"):
        P.load_vgg16(path=tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="imagenet"):
        P.load_vgg16("places365")


def test_gram_by_hand():
    phi = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / (2 * 1 * 2)
    torch.testing.assert_close(P.gram_matrix(phi), expected)


def test_sobel_gradient_of_a_ramp():
    ramp = torch.arange(6.0).repeat(5, 1)[None, None]  # slope 1 along x
    g = P.sobel_gradient(ramp)
    # interior: |Gx| = (1+2+1)·2 = 8, Gy = 0
    torch.testing.assert_close(g[0, 0, 1:-1, 1:-1], torch.full((3, 4), 8.0))
    two = P.sobel_gradient(torch.cat([ramp, torch.zeros_like(ramp)], 1))  # channels stay separate
    assert two.shape == (1, 2, 5, 6) and two[0, 1].abs().sum() == 0
    torch.testing.assert_close(two[:, :1], g)
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)  # |·| is smooth off zero (a.s.)
    assert torch.autograd.gradcheck(P.sobel_gradient, (x,))


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(1, 2, 8, 8\)"):
        P.VGG16Features()(torch.zeros(1, 2, 8, 8))


def test_vgg19_taps_for_ldfusion(tmp_path, monkeypatch):
    """LDFusion compares relu2_1, relu3_1, relu4_2 (torchvision indices 5, 10, 21 are their convs)."""
    torch.manual_seed(2)
    vgg = P.load_vgg19("random")
    taps = vgg(torch.rand(1, 1, 32, 40))
    assert [t.shape[1:] for t in taps] == [(128, 16, 20), (256, 8, 10), (512, 4, 5)] and all((t >= 0).all() for t in taps)
    state = OrderedDict()
    for k, i in enumerate((0, 2, 5, 7, 10, 12, 14, 16, 19, 21)):   # torchvision vgg19 conv indices up to conv4_2
        state[f"features.{i}.weight"], state[f"features.{i}.bias"] = vgg.convs[k].weight.clone(), vgg.convs[k].bias.clone()
    torch.save(state, tmp_path / "vgg19.pth")
    loaded = P.load_vgg19(path=tmp_path / "vgg19.pth")
    x = torch.rand(1, 1, 16, 16)
    assert loaded.pretrained and torch.equal(loaded(x)[2], vgg(x)[2])
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="vgg19-dcbb9e9d.pth"):
        P.load_vgg19()
