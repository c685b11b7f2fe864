"""Issue 14 item 2: the authors' IASSF state dict loads into our modules, every tensor mapped, and
computes the same function as their code (``../shared/reference_code/iassf``, unmodified).

Tolerances, measured on the released hazy MSRS triplet below (128×160 crop, CPU, float32):
- the haze density (their OpenCV dark channel on 8-bit features vs our torch one): the code
  re-quantises the guide image ``(im * 255).astype(uint8)`` after dividing by 255 in float64, which
  drops a level where the division rounds down: ≤ 2e-4 measured, 2e-3 allowed;
- fed the *same* density map, both networks compute the same function. This is checked in float64,
  where 36 transformer blocks of rounding stay near 1e-14 whatever the CPU: 1e-9 allowed. In float32
  the gap depends on the CPU's kernels (≤ 1e-6 on the machine that wrote this test, 8.4e-5 on another
  x86-64 machine), so a float32 bound derived on one machine fails on the next;
- end to end with each side's own density: ≤ 1e-4 measured (the density differences above, where a
  feature sits on an 8-bit boundary, pass through 36 transformer blocks); 1e-3 allowed.
"""

import copy
import warnings

import pytest
import torch

from fusionlib import io
from fusionlib.data import find_pairs, split_dir
from fusionlib.iassf.model import haze_density
from fusionlib.iassf.official import load_official, official_state_dict
from tests.conftest import reference_code


@pytest.fixture(scope="module")
def theirs():
    with reference_code("iassf"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import models.IASSF as ref  # their module, unmodified
        torch.manual_seed(0)
        dehaze, fusion = ref.iassf().eval(), ref.RestormerUNet().eval()
        yield ref, dehaze, fusion


@pytest.fixture(scope="module")
def triplet():
    folder = split_dir("msrs_hazy", "test")
    if not folder.is_dir():
        pytest.skip(f"needs the released hazy MSRS triplets at {folder} (FUSIONLIB_DATA=../shared/data)")
    s = find_pairs(folder)[0]
    ir, hazy = io.read_pair(s.paths["ir"], s.paths["vi_hazy"], as_tensor=True)
    crop = (..., slice(100, 228), slice(200, 360))
    return hazy[crop] * 2 - 1, ir[crop].expand(-1, 3, -1, -1) * 2 - 1


class AsWeights(torch.nn.Module):
    """Runs a layer in its weights' dtype (their code's ``.float()`` would feed float32 to a float64 layer)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x.to(self.inner.weight.dtype))


def checkpoint(dehaze, fusion, prefix=""):
    return {"dehaze_network_state_dict": {prefix + k: v for k, v in dehaze.state_dict().items()},
            "fusion_network_state_dict": {prefix + k: v for k, v in fusion.state_dict().items()}}


def test_every_tensor_is_mapped_and_a_broken_checkpoint_is_one_line(theirs):
    _, dehaze, fusion = theirs
    ours = official_state_dict(checkpoint(dehaze, fusion, prefix="module."))  # a DataParallel save loads too
    n_theirs = sum(1 for m in (dehaze, fusion) for k in m.state_dict() if not k.endswith("relative_positions"))
    assert len(ours) == n_theirs == len(load_official(checkpoint(dehaze, fusion)).state_dict())
    bad = checkpoint(dehaze, fusion)
    bad["fusion_network_state_dict"].pop("final_conv.bias")
    bad["dehaze_network_state_dict"]["extra.weight"] = torch.zeros(1)
    bad["dehaze_network_state_dict"]["skip0.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r"does not fit our model: missing 1 \(fusion.out.bias\); unexpected 1 "
                                         r"\(dehaze.extra.weight\); mis-shaped 1 \(dehaze.skip0.weight") as err:
        official_state_dict(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="not an IASSF release checkpoint"):
        official_state_dict({"state_dict": {}})
    with pytest.raises(FileNotFoundError, match="cat IASSF_part_a. > IASSF.pth"):
        load_official("/nonexistent/IASSF.pth")


def test_same_function_as_the_authors_code(theirs, triplet):
    ref, dehaze, fusion = theirs
    hazy, ir = triplet
    ours = load_official(checkpoint(dehaze, fusion))
    with torch.no_grad():
        mine = ours(hazy, ir)
        their_dehazed, their_ir = dehaze(hazy, ir)
        their_fused = fusion(their_dehazed, their_ir)
        features = ours.dehaze.encoder(hazy)
        density_gap = (haze_density(features) - ref.fog_intensity_to_tensor(features)[:, :1]).abs().max()
        end_to_end = [(mine[k] - v).abs().max() for k, v in (("dehazed", their_dehazed), ("fused", their_fused))]
        code_density = ref.fog_intensity_to_tensor
        ref.fog_intensity_to_tensor = lambda v: haze_density(v).expand(-1, v.shape[1], -1, -1)
        try:
            same_dehazed, same_ir = dehaze(hazy, ir)
            same_fused = fusion(same_dehazed, same_ir)
        finally:
            ref.fog_intensity_to_tensor = code_density
    assert torch.equal(mine["ir_projection"], their_ir) or (mine["ir_projection"] - their_ir).abs().max() < 1e-6
    assert density_gap < 2e-3
    assert max(end_to_end) < 1e-3
    del same_dehazed, same_fused  # the float32 run of the same-density comparison only shows it runs; the bound is float64's
    # the same function, to float64 rounding, with the same density map on both sides
    ours64, dehaze64, fusion64 = ours.double(), copy.deepcopy(dehaze).double(), copy.deepcopy(fusion).double()
    for block in [m for net in (dehaze64, fusion64) for m in net.modules() if hasattr(m, "linear_layer")]:
        block.linear_layer = AsWeights(block.linear_layer)  # their prompt block casts its input with .float()
    hazy64, ir64 = hazy.double(), ir.double()
    ref.fog_intensity_to_tensor = lambda v: haze_density(v).expand(-1, v.shape[1], -1, -1)
    try:
        with torch.no_grad():
            mine64 = ours64(hazy64, ir64)
            dehazed64, ir_proj64 = dehaze64(hazy64, ir64)
            fused64 = fusion64(dehazed64, ir_proj64)
    finally:
        ref.fog_intensity_to_tensor = code_density
    assert (mine64["dehazed"] - dehazed64).abs().max() < 1e-9 and (mine64["fused"] - fused64).abs().max() < 1e-9
