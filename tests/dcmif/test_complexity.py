"""DCMIF's cost counted on the model (fusionlib.dcmif.complexity) against the paper's Table 5."""

import pytest
import torch

from fusionlib.dcmif.complexity import flop_breakdown
from fusionlib.dcmif.model import DCMIF, JSRL, RIN, DictionaryCodec


@pytest.mark.parametrize("n_iter, paper", [(1, 63.023), (2, 120.795)])
def test_ren_flops_match_the_papers_table_5(n_iter, paper):
    """Table 5's GFLOPs (papers/dcmif.txt lines 414–415) are REN's at 256×256: HeadNet + N CoeNets."""
    model = DCMIF(DictionaryCodec(JSRL(n_iter=n_iter), torch.zeros(64, 5, 5)), RIN())
    assert flop_breakdown(model, (256, 256), ren_only=True)["REN"] == pytest.approx(paper, rel=1e-3)
