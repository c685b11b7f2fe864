"""Training and evaluation glue for LRCFuse (``notebooks/12_lrcfuse_training_and_tables.ipynb``).

- :func:`train` fits :class:`fusionlib.models.lrcfuse.LRCFuse` on grey patches with the
  multi-level loss through :class:`fusionlib.train.Trainer` (resumable, AMP, DDP).
- :func:`rgb_fuser` turns a grey fusion network into an ``(ir, vis RGB) -> fused RGB`` function: it
  fuses IR with the visible Y (LRRNet's normalisation: min-max in, min-max out) and restores the
  visible chroma (JPEG convention), the colour policy the spec recommends (§2.4).
- :func:`score` evaluates several fusers on the test splits of several datasets with
  :func:`fusionlib.metrics.dataset.evaluate_dataset`, one row per (dataset, method).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from fusionlib.data import Sample, find_pairs, split_dir
from fusionlib.data.patches import PatchDataset
from fusionlib.io import merge_luma, read_image, split_luma, write_image
from fusionlib.losses.lrcfuse import MultiLevelLoss
from fusionlib.losses.perceptual import VGG16Features
from fusionlib.metrics.dataset import evaluate_dataset
from fusionlib.models.lrcfuse import LRCFuse
from fusionlib.models.lrrnet import normalise
from fusionlib.paths import cache_root
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


def cropped(samples: list[Sample], size: int, tag: str) -> list[Sample]:
    """Centre ``size``×``size`` crops of the pairs, written once under ``<cache>/crops/<tag>/<size>/``
    (quick CPU profiles evaluate on crops; 0 keeps the samples as they are)."""
    if not size:
        return samples
    out = []
    for s in samples:
        paths = {}
        for modality, path in s.paths.items():
            target = cache_root() / "crops" / tag / str(size) / modality / (Path(path).stem + ".png")
            if not target.is_file():
                img = read_image(path)
                top, left = max(0, (img.shape[0] - size) // 2), max(0, (img.shape[1] - size) // 2)
                write_image(target, img[top:top + size, left:left + size])
            paths[modality] = target
        out.append(Sample(Path(s.name).stem + ".png", paths))
    return out


def score(fusers: dict[str, Callable], datasets: list[str | tuple[str, Path]], n_images: int, metrics: list[str],
          convention: str = "lrrnet", split: str = "test", crop: int = 0) -> pd.DataFrame:
    """Mean of each metric per (dataset, method) on ``n_images`` evenly spaced pairs (0 = all),
    optionally on centre crops (:func:`cropped`). A dataset is a name under the data root (its
    ``split`` folder; skipped when absent) or a ``(name, folder)`` pair."""
    rows = []
    for dataset in datasets:
        dataset, folder = dataset if isinstance(dataset, tuple) else (dataset, split_dir(dataset, split))
        if not Path(folder).is_dir():
            continue
        samples = find_pairs(folder)
        if n_images:
            samples = samples[:: max(1, len(samples) // n_images)][:n_images]
        samples = cropped(samples, crop, f"{dataset}_{split}")
        for name, fuser in fusers.items():
            _, summary = evaluate_dataset(samples, fuser, metrics, convention, progress=False)
            rows.append({"dataset": dataset, "method": name, "images": len(samples), **summary["mean"].to_dict()})
    return pd.DataFrame(rows)
