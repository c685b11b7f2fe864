"""Pictures of what DCMIF learnt: the dictionary's atoms as one image.
"""

from __future__ import annotations

import math

import torch

__all__ = ["atom_mosaic"]


def atom_mosaic(d: torch.Tensor) -> torch.Tensor:
    """The atoms ``(C, k, k)`` as one ``(n(k+1), n(k+1))`` image for ``imshow`` (n = ⌈√C⌉), each atom
    scaled to ±1 by its own largest magnitude, NaN between atoms.

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §4.
    """
    c, k, _ = d.shape
    n = math.ceil(c ** 0.5)
    grid = torch.full((n * (k + 1), n * (k + 1)), float("nan"))
    for i, atom in enumerate(d.detach().float().cpu()):
        r, col = divmod(i, n)
        grid[r * (k + 1):r * (k + 1) + k, col * (k + 1):col * (k + 1) + k] = atom / (atom.abs().max() + 1e-12)
    return grid
