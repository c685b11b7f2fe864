"""Training and evaluation glue for LRCFuse (``notebooks/12_lrcfuse_training_and_tables.ipynb``).

- :func:`train` fits :class:`fusionlib.lrcfuse.model.LRCFuse` on grey patches with the
  multi-level loss through :class:`fusionlib.train.Trainer` (resumable, AMP, DDP).
- :func:`rgb_fuser` turns a grey fusion network into an ``(ir, vis RGB) -> fused RGB`` function: it
  fuses IR with the visible Y (LRRNet's normalisation: min-max in, min-max out) and restores the
  visible chroma (JPEG convention), the colour policy the spec recommends (§2.4).
- :func:`score` and :func:`cropped` (from :mod:`fusionlib.metrics.dataset`) evaluate several fusers
  on the test splits of several datasets, one row per (dataset, method).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from fusionlib.data.patches import PatchDataset
from fusionlib.io import merge_luma, split_luma
from fusionlib.lrcfuse.loss import MultiLevelLoss
from fusionlib.common.perceptual import VGG16Features
from fusionlib.metrics.dataset import cropped, score  # shared evaluation helpers, re-exported here
from fusionlib.lrcfuse.model import LRCFuse
from fusionlib.common.lrrnet import normalise
from fusionlib.train import TrainConfig, Trainer, seed_everything

__all__ = ["train", "rgb_fuser", "cropped", "score"]


def train(patches: PatchDataset, config: TrainConfig, run_dir: str | Path, vgg: VGG16Features,
          loss_weights: dict | None = None, model_kwargs: dict | None = None,
          device: str | torch.device | None = None) -> tuple[LRCFuse, list[dict]]:
    """Seeded LRCFuse training; returns the model (eval mode) and the per-epoch history."""
    seed_everything(config.seed)
    model = LRCFuse(**(model_kwargs or {}))
    criterion = MultiLevelLoss(vgg, loss_weights)

    def step(net, batch):
        fused = net(normalise(batch["ir"]), normalise(batch["vis"]))["fused"]
        return criterion(fused, batch["ir"], batch["vis"])
    trainer = Trainer(model, step, patches, config, run_dir, device)
    criterion.to(trainer.device)
    history = trainer.fit()
    return model.eval(), history


def rgb_fuser(net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable:
    """``net(ir01, y01) -> fused`` (grey, any scale) as ``(ir (1,1,H,W), vis (1,3,H,W)) -> RGB (1,3,H,W)``."""
    @torch.no_grad()
    def run(ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        y, chroma = split_luma(vis, "jpeg")
        fused = normalise(net(normalise(ir), normalise(y)))  # min-max out, as LRRNet's test script
        return merge_luma(fused.clamp(0, 1), chroma, "jpeg")
    return run
