"""LDFusion's network (fusionlib.ldfusion.model): parameter counts equal those computed from the official code (docs/ldfusion.md#network, computed
from the official code), AdaIN statistics, the decoder's crop to any input size, bad inputs."""

import pytest
import torch

from fusionlib.ldfusion import model as m


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return m.LDFusion()


def test_parameter_counts(net):
    assert m.count_parameters(net.encoder.content["vis"]) == 763_392
    assert m.count_parameters(net.encoder.style["ir"]) == 107_976
    assert m.count_parameters(net.encoder) == 1_742_736
    assert m.count_parameters(net.decoder.mlp) == 596_480 and m.count_parameters(net.decoder) == 4_034_241
    assert m.count_parameters(net) == 5_776_977  # docs/ldfusion.md#network: 5.777 M
    assert sum(2 * a.dim for a in net.decoder.adain) == 2048


@pytest.mark.parametrize("size", [(16, 16), (37, 53), (64, 48)])
def test_output_cropped_to_any_size(net, size):
    x = torch.rand(2, 1, *size, generator=torch.Generator().manual_seed(1))
    out = net(x, x.flip(-1))
    assert out.shape == (2, 1, *size) and 0 <= float(out.detach().min()) and float(out.detach().max()) <= 1
    out.mean().backward()
    assert net.encoder.content["ir"][0][1].weight.grad is not None


def test_adain_uses_instance_statistics_and_the_assigned_parameters():
    adain = m.AdaIN(3)
    x = torch.randn(2, 3, 8, 8) * 5 + 2
    adain.weight, adain.bias = torch.full((2, 3), 2.0), torch.full((2, 3), -1.0)
    y = adain(x)
    assert torch.allclose(y.mean((2, 3)), torch.full((2, 3), -1.0), atol=1e-5)
    assert torch.allclose(y.std((2, 3), unbiased=False), torch.full((2, 3), 2.0), atol=1e-3)
    with pytest.raises(RuntimeError, match="unset"):
        m.AdaIN(3)(x)


def test_decoder_assigns_beta_then_gamma_in_module_order(net):
    style = torch.randn(1, 16)
    net.decoder.assign(style)
    params = net.decoder.mlp(style)
    first, second = net.decoder.adain[0], net.decoder.adain[1]
    assert torch.equal(first.bias, params[:, :256]) and torch.equal(first.weight, params[:, 256:512])
    assert torch.equal(second.bias, params[:, 512:768])


def test_bad_inputs(net):
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        net(torch.zeros(1, 1, 32, 32), torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="at least 16"):
        net(torch.zeros(1, 1, 8, 32), torch.zeros(1, 1, 8, 32))
