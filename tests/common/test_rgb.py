"""The one RGB-by-Y wrapper (fusionlib.common.rgb): fuse on Y, put the visible chroma back."""

import pytest
import torch

from fusionlib.common.rgb import fuse_rgb
from fusionlib.io import split_luma


@pytest.mark.parametrize("convention", ["jpeg", "opencv"])
def test_the_fused_y_replaces_the_visible_y_and_the_chroma_stays(convention):
    g = torch.Generator().manual_seed(0)
    # colours and IR near mid-grey: the fused Y with the visible chroma stays inside the RGB cube (merge_luma clamps to it)
    vis, ir = torch.rand(1, 3, 16, 20, generator=g) * 0.4 + 0.3, torch.rand(1, 1, 16, 20, generator=g) * 0.2 + 0.4
    # Y in, Y out: the image back, to the round trip of the conversion matrices (an eighth of a grey level)
    torch.testing.assert_close(fuse_rgb(lambda i, y: y, convention)(ir, vis), vis, atol=5e-4, rtol=0)
    seen = []
    out = fuse_rgb(lambda i, y: seen.append(i) or (0.5 * y + 0.5 * i), convention)(ir, vis)
    assert seen[0] is ir and out.shape == vis.shape
    y_out, chroma_out = split_luma(out, convention)
    y_in, chroma_in = split_luma(vis, convention)
    torch.testing.assert_close(y_out, 0.5 * y_in + 0.5 * ir, atol=5e-4, rtol=0)
    torch.testing.assert_close(chroma_out, chroma_in, atol=5e-4, rtol=0)


def test_a_visible_only_method_gets_no_infrared_and_a_name():
    fused = fuse_rgb(lambda i, y: y if i is None else None)(None, torch.rand(1, 3, 8, 8))
    assert fused.shape == (1, 3, 8, 8)

    def mine(i, y):
        return y
    assert fuse_rgb(mine).__name__ == "mine_rgb"


def test_a_classical_fuser_pickles_for_worker_processes():
    import pickle

    from fusionlib.common import baselines as bl
    vis, ir = torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 8)
    fuser = fuse_rgb(bl.average)
    again = pickle.loads(pickle.dumps(fuser))
    assert again.__name__ == "average_rgb" and torch.equal(again(ir, vis), fuser(ir, vis))
