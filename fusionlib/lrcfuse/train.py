"""Training and evaluation glue for LRCFuse (``notebooks/12_lrcfuse_training_and_tables.ipynb``).

- :func:`train` fits :class:`fusionlib.lrcfuse.model.LRCFuse` on grey patches with the
  multi-level loss through :class:`fusionlib.train.Trainer` (resumable, AMP, DDP).
- colour images are fused as LRRNet's are (:func:`fusionlib.common.lrrnet.rgb_fuser`: IR with the
  visible Y, min-max in and out, the visible chroma restored), the colour policy of
  docs/lrcfuse.md#training.
- :func:`score` and :func:`cropped` (from :mod:`fusionlib.metrics.dataset`) evaluate several fusers
  on the test splits of several datasets, one row per (dataset, method).
"""

from __future__ import annotations

from pathlib import Path
import torch

from fusionlib.data.patches import PatchDataset
from fusionlib.lrcfuse.loss import MultiLevelLoss
from fusionlib.metrics.dataset import cropped, score  # shared evaluation helpers, re-exported here
from fusionlib.lrcfuse.model import LRCFuse
from fusionlib.common.lrrnet import normalise
from fusionlib.train import TrainConfig, Trainer, seed_everything

__all__ = ["train", "cropped", "score"]


def train(patches: PatchDataset, config: TrainConfig, run_dir: str | Path, vgg: torch.nn.Module,
          loss_weights: dict | None = None, model_kwargs: dict | None = None,
          device: str | torch.device | None = None) -> tuple[LRCFuse, list[dict]]:
    """Seeded LRCFuse training; returns the model (eval mode) and the per-epoch history.

    Derived in ``notebooks/12_lrcfuse_training_and_tables.ipynb`` §2.
    """
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
