"""DCMIF's cost: parameters, FLOPs per stage and latency (Tables 5 and 7), counted on the model itself.
"""

from __future__ import annotations

import math
import time

import torch

from fusionlib.common.complexity import count_flops, count_parameters
from fusionlib.dcmif.model import DCMIF, DictionaryCodec

__all__ = ["complexity", "flop_breakdown"]


@torch.no_grad()
def complexity(model: DCMIF, size: tuple[int, int] = (256, 256), repeats: int = 3, device: str = "cpu") -> dict[str, float]:
    """Table 7's columns for ``model`` on one ``(1, 1, H, W)`` VIS Y: learnable parameters of all
    three stages (M; stage 1's dictionary solver and TailNet have none), FLOPs (G; counted by
    ``torch.utils.flop_counter``: convolutions, matrix products and attention — not the CSB's FFTs or
    the text prior) and the median wall time per image (s, text prior included; NaN when ``repeats``
    is 0, for a FLOP count alone).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §7.
    """
    model = model.to(device).eval()
    codec = model.codec.jsrl if isinstance(model.codec, DictionaryCodec) else model.codec
    params = sum(count_parameters(m) for m in (codec, model.rin, model.film, model.rfn))
    x = torch.rand(1, 1, *size, generator=torch.Generator().manual_seed(0)).to(device)
    flops, _ = count_flops(model, x)
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return {"Param (M)": params / 1e6, "FLOPs (G)": flops / 1e9,
            "Time (s)": sorted(times)[len(times) // 2] if times else math.nan}


@torch.no_grad()
def flop_breakdown(model: DCMIF, size: tuple[int, int] = (256, 256), *, ren_only: bool = False) -> dict[str, float]:
    """GFLOPs of each block on one ``(1, 1, H, W)`` VIS Y, counted by ``torch.utils.flop_counter``
    (convolutions, matrix products, attention; not FFTs): REN, one RIN pass, the RFN and TailNet
    (``ren_only``: REN alone, what the paper's Table 5 reports).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §7.
    """
    def count(fn, *args):
        flops, out = count_flops(fn, *args)
        return flops / 1e9, out
    x = torch.rand(1, 1, *size, generator=torch.Generator().manual_seed(0)).to(next(model.rin.parameters()).device)
    ren, s_vis = count(model.codec.encode, x, "vis")
    if ren_only:
        return {"REN": ren}
    rin, s_pir = count(model.rin, s_vis)
    out = {"REN": ren, "RIN (one pass)": rin}
    if model.rfn is not None:
        out["RFN"], _ = count(model.rfn, s_vis, s_pir)
    out["TailNet"], _ = count(model.codec.decode, s_pir)
    return out
