"""Training patches cut from paired images on a regular grid (LRCFuse: 128×128 grey patches from MSRS).

``patch_grid`` places windows every ``stride`` pixels and, when ``edge_inclusive``, adds one more
window flush with the right/bottom border so no pixel is left out. LRCFuse reports 41,703
patches from 1,444 MSRS pairs (≈ 28.9 per 640×480 image) without giving the rule; the rule used
is a parameter and goes into every run's configuration (docs/lrcfuse.md#training).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from fusionlib.data import Sample, find_pairs
from fusionlib.io import read_image

__all__ = ["patch_grid", "PatchDataset"]


def patch_grid(h: int, w: int, size: int, stride: int, edge_inclusive: bool = True) -> list[tuple[int, int]]:
    """Top-left corners of size×size windows inside an h×w image."""
    if size > h or size > w:
        return []

    def axis(n):
        starts = list(range(0, n - size + 1, stride))
        if edge_inclusive and starts[-1] != n - size:
            starts.append(n - size)
        return starts
    return [(y, x) for y in axis(h) for x in axis(w)]


class PatchDataset(torch.utils.data.Dataset):
    """Aligned IR/VIS grey patches, ``{"ir", "vis"}`` each ``(1, size, size)`` float on 0–255.

    Args:
        pairs: a split folder or samples (:func:`fusionlib.data.find_pairs`).
        size, stride, edge_inclusive: the grid (:func:`patch_grid`).
        count: keep this many patches drawn at random (seeded), as LRCFuse keeps 20,000; None = all.
        seed: the draw's seed.
    """

    def __init__(self, pairs: str | Path | Sequence[Sample], size: int = 128, stride: int = 96,
                 edge_inclusive: bool = True, count: int | None = None, seed: int = 0):
        self.samples = find_pairs(pairs) if isinstance(pairs, (str, Path)) else list(pairs)
        self.size = size
        index = []
        for i, s in enumerate(self.samples):
            h, w = read_image(s.paths["ir"], "L").shape
            index += [(i, y, x) for y, x in patch_grid(h, w, size, stride, edge_inclusive)]
        if not index:
            raise ValueError(f"no {size}×{size} patch fits in these {len(self.samples)} images")
        if count is not None:
            if count > len(index):
                raise ValueError(f"asked for {count} patches but the grid gives only {len(index)}")
            keep = np.random.default_rng(seed).choice(len(index), size=count, replace=False)
            index = [index[k] for k in sorted(keep)]
        self.index = index
        self._load = lru_cache(maxsize=64)(self._read)

    def _read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.samples[i]
        return read_image(s.paths["ir"], "L"), read_image(s.paths["vi"], "L")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict:
        i, y, x = self.index[k]
        ir, vis = self._load(i)
        crop = (slice(y, y + self.size), slice(x, x + self.size))
        return {"ir": torch.from_numpy(ir[crop].astype(np.float32))[None],
                "vis": torch.from_numpy(vis[crop].astype(np.float32))[None]}
