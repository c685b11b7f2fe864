"""Running IASSF (fusionlib.iassf.inference): the fuser's ranges, and which hazy sets it is scored on."""

import torch
from torch import nn

from fusionlib.iassf.inference import evaluation_sets, fuser


class Probe(nn.Module):
    """Records what IASSF would see and answers with a fixed fused image in its [−1, 1] range."""

    def __init__(self, value):
        super().__init__()
        self.value, self.seen = value, []

    def forward(self, hazy, ir):
        self.seen.append((hazy, ir))
        return {"fused": torch.full_like(hazy, self.value)}


def test_the_fuser_feeds_minus_one_to_one_and_clamps_back_to_zero_one():
    probe = Probe(2.0)
    ir, hazy = torch.rand(1, 1, 8, 12), torch.rand(1, 3, 8, 12)
    out = fuser(probe)(ir, hazy)
    seen_hazy, seen_ir = probe.seen[0]
    torch.testing.assert_close(seen_hazy, hazy * 2 - 1)
    torch.testing.assert_close(seen_ir, (ir * 2 - 1).expand(-1, 3, -1, -1))
    assert out.shape == (1, 3, 8, 12) and torch.equal(out, torch.ones_like(out))  # 2 is clamped to 1, then mapped to 1
    assert float(fuser(Probe(0.0))(ir, hazy).mean()) == 0.5


def test_evaluation_sets_fall_back_to_a_synthetic_hazy_set(isolated):
    sets = evaluation_sets(["msrs", "m3fd"], seed=1)
    assert [name for name, _ in sets] == ["synthetic_hazy"] and (sets[0][1] / "vi_hazy").is_dir()
