import math

import pytest
import torch

from fusionlib.metrics.agreement import hot_map, ir_agreement, psnr


def test_psnr_is_ten_log_of_the_inverse_mse_on_the_clamped_prediction():
    ref = torch.full((1, 1, 4, 4), 0.5)
    assert psnr(ref + 0.1, ref) == pytest.approx(20.0)  # MSE 0.01
    assert psnr(ref, ref) == math.inf
    assert psnr(torch.full_like(ref, 1.7), torch.ones_like(ref)) == math.inf  # what a saved image keeps: 1.7 -> 1
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(ref, ref[..., :2])


def test_hot_map_keeps_what_is_above_the_images_own_quantile():
    x = torch.arange(10.0).reshape(1, 1, 1, 10) / 9
    hot = hot_map(x, 0.8)
    assert int((hot > 0).sum()) == 2 and float(hot.max()) == pytest.approx(1 - float(x.flatten().quantile(0.8)))


def test_ir_agreement_judges_where_heat_is_not_grey_levels():
    g = torch.Generator().manual_seed(0)
    ir = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 70, 70, generator=g), 7, 1)  # smooth, 64×64
    same = ir_agreement(ir, ir)
    assert same["SSIM"] == pytest.approx(1.0, abs=1e-6) and same["hot-spot r"] == pytest.approx(1.0) and same["PSNR (dB)"] == 120
    affine = ir_agreement(0.5 * ir + 0.2, ir)  # other grey levels, same hot places
    assert affine["hot-spot r"] == pytest.approx(1.0, abs=1e-5) and affine["PSNR (dB)"] < 30
    assert ir_agreement(1 - ir, ir)["hot-spot r"] < 0.2  # the inverse puts heat where it is cold
    flat = torch.full_like(ir, float(ir.mean()))
    assert ir_agreement(flat, ir)["hot-spot r"] == 0.0  # a constant finds no hot spot
    assert math.isnan(ir_agreement(ir, flat)["hot-spot r"])  # an IR without hot spots leaves nothing to find
