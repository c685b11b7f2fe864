"""fusionlib.lrcfuse.lista: ISTA descent, LISTA = ISTA at its analytic weights, the LLRR connection."""

import pytest
import torch

from fusionlib.lrcfuse import lista
from fusionlib.common import lrrnet


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    D = torch.randn(20, 40, generator=g, dtype=torch.float64) / 20 ** 0.5
    x_true = torch.randn(8, 40, generator=g, dtype=torch.float64) * (torch.rand(8, 40, generator=g) < 0.1)
    return D, x_true @ D.T, 0.05


def test_soft_threshold_is_the_l1_prox():
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    grid = torch.linspace(-4, 4, 80001, dtype=torch.float64)
    brute = grid[((grid[None] - x[:, None]).square() / 2 + 0.7 * grid.abs()[None]).argmin(1)]
    torch.testing.assert_close(lrrnet.soft_threshold(x, 0.7), brute, atol=2e-4, rtol=0)


def test_ista_decreases_the_lasso_objective(problem):
    D, y, lam = problem
    xs = lista.ista(D, y, lam, 50, return_all=True)
    values = [lista.lasso_objective(D, y, x, lam).sum().item() for x in xs]
    assert all(b <= a + 1e-12 for a, b in zip(values, values[1:]))


def test_lista_at_analytic_weights_equals_ista(problem):
    D, y, lam = problem
    for k in (1, 3, 7):
        torch.testing.assert_close(lista.LISTA.from_dictionary(D, lam, k)(y), lista.ista(D, y, lam, k))


def test_llrr_block_is_an_ista_step_for_pointwise_operators():
    """With 1×1 'convolutions' the LLRR update is ISTA's: λ_z = 1, W_d = D, W_dt = Dᵀ/L."""
    g = torch.Generator().manual_seed(2)
    D = torch.randn(1, 6, generator=g, dtype=torch.float64)        # one pixel channel, 6 atoms
    block, theta, lam_z = lista.llrr_block_as_ista(D, 0.1)
    y = torch.randn(5, 1, generator=g, dtype=torch.float64)
    z = torch.randn(5, 6, generator=g, dtype=torch.float64)
    out = block(y.view(5, 1, 1, 1), z.view(5, 6, 1, 1), theta, lam_z)
    torch.testing.assert_close(out.view(5, 6), lista.ista(D, y, 0.1, 1, x0=z))
    assert isinstance(block, lrrnet.LLRRBlock)
