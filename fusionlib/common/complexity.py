"""Model complexity: parameter and FLOP counts (the papers' complexity tables and our parity checks
with the authors' code; notebooks 11, 21, 22, 31, 32, 41)."""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

__all__ = ["count_parameters", "count_flops"]


def count_parameters(module: nn.Module | None, *, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> int:
    """Number of parameters of ``module`` (0 for ``None``): only those whose name starts with one of
    ``include`` (all when empty), leaving out those whose name ends with one of ``exclude`` (e.g.
    IASSF's ``"prompt_pool"``)."""
    if module is None:
        return 0
    return sum(p.numel() for n, p in module.named_parameters()
               if (not include or n.startswith(include)) and not n.endswith(exclude))


def count_flops(fn: Callable[..., Any], *args: Any) -> tuple[int, Any]:
    """FLOPs of one call ``fn(*args)`` without gradients, and its output, counted by
    ``torch.utils.flop_counter`` (a multiply-add counts 2; convolutions, matrix products and attention
    are counted, FFTs and element-wise operations are not). Works on the ``meta`` device, where only
    shapes are computed."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = fn(*args)
    return counter.get_total_flops(), out
