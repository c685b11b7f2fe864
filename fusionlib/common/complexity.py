"""Model complexity: parameter counts (the papers' tables and our parity checks with the authors' code)."""

from __future__ import annotations

import torch.nn as nn

__all__ = ["count_parameters"]


def count_parameters(module: nn.Module | None, *, exclude: tuple[str, ...] = ()) -> int:
    """Number of parameters of ``module`` (0 for ``None``), leaving out those whose name ends with
    one of ``exclude`` (e.g. IASSF's ``"prompt_pool"``)."""
    if module is None:
        return 0
    return sum(p.numel() for n, p in module.named_parameters() if not n.endswith(exclude))
