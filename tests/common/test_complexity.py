"""Parameter and FLOP counts (fusionlib.common.complexity) against the formulas."""

import torch
from torch import nn

from fusionlib.common.complexity import count_flops, count_parameters


def test_count_parameters_with_include_and_exclude():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(8, 4))  # 3·8·9 + 8 and 8·4 + 4
    assert count_parameters(net) == 224 + 36 and count_parameters(None) == 0
    assert count_parameters(net, include=("0.",)) == 224 and count_parameters(net, exclude=("bias",)) == 216 + 32


def test_count_flops_is_two_per_multiply_add_and_runs_on_meta():
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False).to("meta")
    flops, out = count_flops(conv, torch.zeros(2, 4, 10, 12, device="meta"))
    assert flops == 2 * 9 * 4 * 6 * 10 * 12 * 2 and out.shape == (2, 6, 10, 12) and out.device.type == "meta"
