"""fusionlib.common.inputs: the networks of the four papers (and LRRNet) refuse uint8, float64 and empty batches with one clear line."""

import pytest
import torch

from fusionlib.dcmif.model import JSRL
from fusionlib.iassf.model import IASSF
from fusionlib.ldfusion.model import LDFusion
from fusionlib.common.lrrnet import LRRNet
from fusionlib.lrcfuse.model import LRCFuse


@pytest.mark.parametrize("make, args", [
    (lambda: LDFusion(), lambda t: (t(1, 1, 32, 32), t(1, 1, 32, 32))),
    (lambda: IASSF(prompt_size=8), lambda t: (t(1, 3, 32, 32), t(1, 3, 32, 32))),
    (lambda: JSRL(n_atoms=8, kernel=3), lambda t: (t(1, 1, 16, 16), t(1, 1, 16, 16))),
    (lambda: LRRNet(), lambda t: (t(1, 1, 16, 16), t(1, 1, 16, 16))),
    (lambda: LRCFuse(n=4, blocks=1, fc=4, cfpm_stages=1), lambda t: (t(1, 1, 16, 16), t(1, 1, 16, 16))),
], ids=["LDFusion", "IASSF", "JSRL", "LRRNet", "LRCFuse"])
def test_wrong_dtype_and_empty_batches(make, args):
    model = make()
    with pytest.raises(ValueError, match="got torch.uint8: scale it with fusionlib.io.to_tensor"):
        model(*args(lambda *s: torch.zeros(*s, dtype=torch.uint8)))
    with pytest.raises(ValueError, match=r"got torch.float64: cast it with .to\(torch.float32\)"):
        model(*args(lambda *s: torch.zeros(*s, dtype=torch.float64)))
    with pytest.raises(ValueError, match="empty batch"):
        model(*args(lambda *s: torch.zeros(0, *s[1:])))
