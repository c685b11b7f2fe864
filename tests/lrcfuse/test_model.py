"""fusionlib.lrcfuse.model: parameter budget, CFPM descent with analytic steps, shapes, gradients, FLOPs."""

import pytest
import torch
import torch.nn.functional as F

from fusionlib.lrcfuse import model as lrcfuse


def test_parameter_count_within_ten_percent_of_the_paper():
    n = lrcfuse.count_parameters(lrcfuse.LRCFuse())
    assert abs(n - 0.18e6) / 0.18e6 < 0.10, n
    assert lrcfuse.count_parameters(lrcfuse.LRCFuse(use_cfpm=False)) < n  # the ablation drops CFPM's weights


def test_initial_adjoints_are_exact():
    torch.manual_seed(0)
    stage = lrcfuse.CFPMStage(k=5)
    c, r = torch.randn(2, 5, 9, 11), torch.randn(2, 1, 9, 11)
    a_c = F.conv2d(c, stage.a.weight, padding=1)           # a∗C without bias
    # <a∗C, r> = <C, aᵀ∗r>
    torch.testing.assert_close((a_c * r).sum(), (c * stage.a_t(r)).sum(), rtol=1e-5, atol=1e-4)


def test_each_analytic_stage_lowers_the_objective():
    torch.manual_seed(1)
    stage = lrcfuse.CFPMStage(k=6)
    r_x, r_y = torch.randn(1, 1, 16, 16), torch.randn(1, 1, 16, 16)
    values, _ = lrcfuse.analytic_descent(stage, r_x, r_y, torch.full((1, 6), 0.05), stages=8)
    assert all(b <= a + 1e-6 for a, b in zip(values, values[1:])), values
    assert values[-1] < values[0]


def test_shapes_gradients_and_bad_input():
    torch.manual_seed(0)
    model = lrcfuse.LRCFuse(n=4, blocks=2, fc=6, cfpm_stages=2)
    ir, vis = torch.rand(2, 1, 12, 14), torch.rand(2, 1, 12, 14)
    out = model(ir, vis)
    assert out["fused"].shape == (2, 1, 12, 14) and out["C"].shape == (2, 6, 12, 14)
    out["fused"].mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match=r"\(2, 3, 12, 14\)"):
        model(ir.expand(-1, 3, -1, -1), vis)


def test_flops_scale_with_pixels():
    small = lrcfuse.LRCFuse(n=4, blocks=1, fc=4, cfpm_stages=1)
    f1, f2 = lrcfuse.flops(small, 16, 16), lrcfuse.flops(small, 32, 32)
    assert f1 > 0 and f2 == pytest.approx(4 * f1, rel=0.01)
