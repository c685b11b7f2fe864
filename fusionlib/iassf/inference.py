"""Running a trained IASSF: the hazy test sets it is scored on (:func:`evaluation_sets`) and its fuser for the metrics
and the benchmark (:func:`fuser`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from fusionlib.data import split_dir
from fusionlib.data.synthetic import materialize
from fusionlib.iassf.hazy import hazify
from fusionlib.iassf.model import IASSF

__all__ = ["evaluation_sets", "fuser"]


def evaluation_sets(datasets: list[str], seed: int = 0) -> list[tuple[str, Path]]:
    """``(name, folder)`` of hazy test triplets, named ``<dataset>_hazy``: the released ``msrs_hazy``
    for MSRS, the clear ``test`` split hazed by :func:`hazify` for the others; datasets absent here
    are skipped, and a synthetic hazy set stands in when none is present.

    Derived in ``notebooks/32_iassf_training_and_tables.ipynb`` §2.
    """
    out = []
    for name in datasets:
        if name == "msrs" and split_dir("msrs_hazy", "test").is_dir():
            out.append(("msrs_hazy", split_dir("msrs_hazy", "test")))
        elif name != "msrs" and split_dir(name, "test").is_dir():
            out.append((f"{name}_hazy", hazify(split_dir(name, "test"), seed=seed)))
    return out or [("synthetic_hazy", materialize(n=4, seed=seed, hazy=True))]


def fuser(model: IASSF, device: str = "cpu") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(ir (1,1,H,W), hazy RGB (1,3,H,W)) -> fused RGB`` in [0, 1] (clamped from [−1, 1], as the code's test).

    Derived in ``notebooks/32_iassf_training_and_tables.ipynb`` §2.
    """
    @torch.no_grad()
    def run(ir: torch.Tensor, hazy: torch.Tensor) -> torch.Tensor:
        out = model(hazy.to(device) * 2 - 1, ir.to(device).expand(-1, 3, -1, -1) * 2 - 1)["fused"]
        return ((out.clamp(-1, 1) + 1) / 2).cpu()
    return run
