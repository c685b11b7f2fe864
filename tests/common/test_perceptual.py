"""fusionlib.common.perceptual: taps, weight loading (torchvision and LRRNet layouts), Gram, Sobel."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

from fusionlib.common import perceptual as P
from fusionlib.common.perceptual import NORMALISED_TAPS, NormalisedVGG19, load_vgg19_normalised, loss_network
from fusionlib.paths import weights_root


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


# ------------------------------------------------------------------ the real normalised VGG-19

NORMALISED = weights_root() / "vgg19_normalised" / "vgg_normalised_conv3_1.pth"
needs_normalised = pytest.mark.skipif(not NORMALISED.is_file(),
                                      reason=f"{NORMALISED} absent (set FUSIONLIB_WEIGHTS=../shared/weights)")


@needs_normalised
def test_normalised_vgg19_first_layer_by_hand():
    """relu1_1 at a few pixels of a known image, computed by hand from the file's tensors: the 1×1 conv
    (RGB [0, 1] → Caffe BGR 0–255 minus the means), reflection padding, conv1_1, ReLU."""
    state = torch.load(NORMALISED, weights_only=True)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 6, 7, generator=g, dtype=torch.float64)
    net = load_vgg19_normalised(("relu1_1",)).double()
    assert net.pretrained
    got = net(x)[0][0]
    layer0 = (state["0.weight"].double()[:, :, 0, 0] @ x[0].reshape(3, -1) + state["0.bias"].double()[:, None]).reshape(3, 6, 7)
    caffe = x[0].flip(0) * 255 - torch.tensor([103.939, 116.779, 123.680], dtype=torch.float64)[:, None, None]
    torch.testing.assert_close(layer0, caffe, rtol=0, atol=1e-4)  # the folded preprocessing (means stored as float32)
    w, b = state["2.weight"].double(), state["2.bias"].double()
    padded = np.pad(layer0.numpy(), ((0, 0), (1, 1), (1, 1)), mode="reflect")
    for (i, j) in [(0, 0), (2, 3), (5, 6), (0, 6)]:
        for c in (0, 17, 63):
            value = max(0.0, float((w[c].numpy() * padded[:, i:i + 3, j:j + 3]).sum() + b[c]))
            assert abs(float(got[c, i, j]) - value) < 1e-9 * max(1.0, abs(value)), (i, j, c)


@needs_normalised
def test_normalised_vgg19_taps_shapes_and_grey():
    net = load_vgg19_normalised(tuple(NORMALISED_TAPS))
    x = torch.rand(2, 3, 33, 35)
    shapes = [tuple(f.shape) for f in net(x)]
    assert shapes == [(2, 64, 33, 35), (2, 64, 33, 35), (2, 128, 17, 18), (2, 128, 17, 18), (2, 256, 9, 9)]
    grey = torch.rand(1, 1, 16, 16)
    scaled = load_vgg19_normalised(("relu2_2",), input_scale=255.0)
    torch.testing.assert_close(scaled(grey * 255)[0], net(grey.expand(-1, 3, -1, -1))[3])
    assert not any(p.requires_grad for p in net.parameters()) and not net.train().training


def test_normalised_vgg19_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONLIB_WEIGHTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="normalised VGG-19 weights not found .*FUSIONLIB_WEIGHTS"):
        load_vgg19_normalised()
    with pytest.raises(ValueError, match="taps must be among"):
        NormalisedVGG19(("relu4_2",))
    bad = tmp_path / "bad.pth"
    torch.save({"0.weight": torch.zeros(3, 3, 1, 1)}, bad)
    with pytest.raises(ValueError, match="not the normalised VGG-19"):
        load_vgg19_normalised(path=bad)


@needs_normalised
def test_loss_network_policies(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # no torchvision weights cached
    net, label = loss_network("lrcfuse", "auto")
    assert isinstance(net, NormalisedVGG19) and net.taps == ("relu1_2", "relu2_2", "relu3_1", "relu3_1")
    assert "stand-in for relu4_3" in label and net.pretrained
    assert (net.convention, net.input_scale) == ("imagenet", 255.0) and "without normalisation" not in label
    net, label = loss_network("lrrnet", "normalised", convention="unnormalised")  # as the authors feed VGG-16
    assert (net.convention, net.input_scale) == ("unnormalised", 1.0) and "as the authors' code feeds VGG-16" in label
    net, label = loss_network("ldfusion")
    assert net.taps == ("relu2_1", "relu3_1") and "relu4_2 unavailable" in label
    net, label = loss_network("ldfusion", "random")
    assert not net.pretrained and "random-init" in label
    with pytest.raises(FileNotFoundError):
        loss_network("lrcfuse", "imagenet")
    with pytest.raises(ValueError, match="policy"):
        loss_network("lrcfuse", "best")
    net, label = loss_network("ldfusion", "normalised", convention="unnormalised")
    assert net.convention == "unnormalised" and "without normalisation" in label
    net, label = loss_network("lrcfuse", "random", convention="unnormalised")  # no convention to apply
    assert not net.pretrained and "random-init" in label
    net, label = loss_network("lrcfuse", "auto", convention="unnormalised")  # falls back to the stand-in, fed the authors' way
    assert net.convention == "unnormalised" and "as the authors' code feeds VGG-16" in label


def test_loss_network_auto_without_any_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv("FUSIONLIB_WEIGHTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no pretrained loss network for lrcfuse: ImageNet VGG-16 is not cached"):
        loss_network("lrcfuse")
    net, label = loss_network("lrcfuse", allow_random=True)
    assert isinstance(net, P.VGG16Features) and not net.pretrained and "random-init VGG-16" in label


def test_vgg_path_of_the_wrong_type():
    with pytest.raises(TypeError, match="load_vgg19: path must be a file path .str or Path., got list"):
        P.load_vgg19(path=["vgg19.pth"])


@needs_normalised
def test_the_unnormalised_convention_is_what_ldfusions_code_feeds_vgg19():
    """LDFusion's trainer feeds 0–1 grey to an ImageNet VGG-19 without normalisation: the network sees the
    image m + s·x. For our Caffe-trained network that image, after its own preprocessing, is 255·s·x in
    BGR with no mean: relu1_1 of the "unnormalised" network on x equals relu1_1 of the ImageNet convention
    on m + s·x, up to Caffe's means against ImageNet's (≤ 0.5 grey levels of 255: under 1 % here)."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, 12, 12, generator=g, dtype=torch.float64)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(P.IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    theirs = load_vgg19_normalised(("relu1_1",), convention="unnormalised").double()(x)[0]
    seen = load_vgg19_normalised(("relu1_1",)).double()(mean + std * x.expand(-1, 3, -1, -1))[0]
    assert float((theirs - seen).abs().max()) < 1e-2 * float(seen.abs().max())
    plain = load_vgg19_normalised(("relu1_1",)).double()(x)[0]  # what our loss network saw before: another image
    assert float((plain - seen).abs().max()) > float(seen.abs().max())
    black = load_vgg19_normalised(("relu1_1",), convention="unnormalised").double()(torch.zeros(1, 1, 8, 8, dtype=torch.float64))[0]
    assert torch.equal(black, black[:, :, :1, :1].expand_as(black))  # no mean subtracted: black is a flat input
    with pytest.raises(ValueError, match="convention must be one of"):
        NormalisedVGG19(convention="caffe")


@needs_normalised
def test_the_lrrnet_stand_in_sees_what_their_vgg16_sees():
    """LRRNet's trainer feeds 0–255 grey X to an ImageNet VGG-16 without normalisation: the network sees the
    image m + s·X. The stand-in ``loss_network("lrrnet", "normalised", convention="unnormalised")`` builds (at
    input scale 1) takes X and sees that same image: relu1_1 equals the ImageNet convention's on m + s·X, up to
    Caffe's means against ImageNet's, which are small beside 255·s·X."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 1, 12, 12, generator=g, dtype=torch.float64) * 255
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(P.IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    net, _ = loss_network("lrrnet", "normalised", convention="unnormalised")
    first = NormalisedVGG19(("relu1_1",), input_scale=net.input_scale, convention=net.convention)
    first.load_state_dict(net.state_dict())
    seen = NormalisedVGG19(("relu1_1",))
    seen.load_state_dict(net.state_dict())
    theirs, image = first.double()(x)[0], seen.double()(mean + std * x.expand(-1, 3, -1, -1))[0]
    assert float((theirs - image).abs().max()) < 1e-3 * float(image.abs().max())
