"""Running LDFusion (fusionlib.ldfusion.inference): its fuser works on OpenCV's Y, as the authors' test script does."""

import torch
from torch import nn

from fusionlib.io import split_luma
from fusionlib.ldfusion.inference import fuser


class KeepY(nn.Module):
    def forward(self, ir, y):
        return y


def test_the_fuser_runs_on_opencv_y_and_puts_the_chroma_back():
    vis = torch.rand(1, 3, 12, 16) * 0.4 + 0.3
    out = fuser(KeepY())(torch.rand(1, 1, 12, 16), vis)
    torch.testing.assert_close(out, vis, atol=5e-4, rtol=0)
    seen = []

    class Record(nn.Module):
        def forward(self, ir, y):
            seen.append(y)
            return y
    fuser(Record())(torch.rand(1, 1, 12, 16), vis)
    torch.testing.assert_close(seen[0], split_luma(vis, "opencv")[0].clamp(0, 1))
