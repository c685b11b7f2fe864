"""Training and evaluation glue for IASSF (``notebooks/32_iassf_training_and_tables.ipynb``).

- :func:`training_set`: hazy triplets synthesised from a clear training split
  (:func:`fusionlib.iassf.hazy.hazify`, the recipe fitted to IASSF's released images), random crops
  with horizontal and vertical flips (the paper) and rot90 (the code).
- :func:`train`: both networks jointly with the shared :class:`fusionlib.train.Trainer` — one AdamW
  over both (the code's two AdamW optimisers have identical settings, which is the same update),
  cosine decay to ``lr_min``, loss Eq. 6–9 (:func:`fusionlib.iassf.loss.iassf_loss`).
- :func:`evaluation_sets`: the released hazy MSRS test triplets, and RoadScene/M3FD test pairs hazed
  with the same recipe (IASSF did not release its hazy versions).
- :func:`fuser`: ``(ir, hazy RGB) -> fused RGB`` for IASSF; the "dehaze, then fuse" baselines are
  :func:`fusionlib.common.baselines.dehaze_first` (dark-channel prior + any fusion method), scored by
  :func:`fusionlib.metrics.dataset.score` against the clear image.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fusionlib.data import PairedDataset
from fusionlib.iassf.hazy import hazify
from fusionlib.data.synthetic import split_or_synthetic
from fusionlib.iassf.loss import ALPHA, iassf_loss
from fusionlib.iassf.model import IASSF
from fusionlib.train import TrainConfig, Trainer, cached_run_dir, seed_everything

__all__ = ["training_set", "to_model_range", "run_folder", "train"]


def training_set(dataset: str, crop: int, seed: int = 0, *, crop_seed: int | None = None) -> PairedDataset:
    """Hazy triplets from ``dataset``'s clear ``train`` split (synthetic scenes when absent), as
    random ``crop``² crops with flips and rot90 (as the code); items have ``ir``, ``vis_hazy``, ``vis_clear``.
    ``seed`` draws the haze and, unless ``crop_seed`` is given, the crops, flips and turns.

    Derived in ``notebooks/32_iassf_training_and_tables.ipynb`` §1.
    """
    return PairedDataset(hazify(split_or_synthetic(dataset, seed=seed), seed=seed), crop=crop, flip=True, rot90=True,
                         seed=seed if crop_seed is None else crop_seed)


def to_model_range(batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(hazy, IR replicated to 3 channels, clear) in [−1, 1], the code's convention.

    Derived in ``notebooks/32_iassf_training_and_tables.ipynb`` §1.
    """
    ir = batch["ir"].expand(-1, 3, -1, -1)
    return batch["vis_hazy"] * 2 - 1, ir * 2 - 1, batch["vis_clear"] * 2 - 1


def run_folder(tag: str, config: TrainConfig, *, alpha: float, data: str, crop: int, model_kwargs: dict | None = None) -> Path:
    """The cache folder of one training run, keyed by everything that determines it: the config (seed and
    schedule included), the dehazing weight ``alpha``, the model's kwargs, the data checksum and the crop. A
    re-run with the same settings resumes or re-uses it; ``tag`` names the row it trains (``main``, a sweep).

    Derived in ``notebooks/32_iassf_training_and_tables.ipynb`` §1.
    """
    return cached_run_dir(f"iassf/{tag}", 1, config=vars(config), alpha=alpha, model=dict(model_kwargs or {}), data=data, crop=crop)


def train(data: PairedDataset, config: TrainConfig, run_dir: str | Path, device: str = "cpu", *,
          alpha: float = ALPHA, model: IASSF | None = None, **model_kwargs) -> tuple[IASSF, list[dict]]:
    """Seeded joint training of both networks (Eq. 9 with weight ``alpha``); ``model_kwargs`` go to
    :class:`IASSF` (``blocks``, ``ablation``, ``use_atmosphere``), or ``model`` is trained from its weights
    (in its dtype: the control arm's float64 steps). Returns the model (eval) and its log: one row per
    ``config.log_every`` steps when set (:attr:`~fusionlib.train.Trainer.step_log`), else per epoch.

    Derived in ``notebooks/32_iassf_training_and_tables.ipynb`` §1.
    """
    seed_everything(config.seed)
    if model is None:
        model = IASSF(**model_kwargs)
    elif model_kwargs:
        raise ValueError(f"train() takes a model or its keyword arguments, not both (got {sorted(model_kwargs)})")

    def step(net, batch):
        hazy, ir, clear = to_model_range(batch)
        out = net(hazy, ir)
        return iassf_loss(out["fused"], out["dehazed"], ir, clear, alpha)
    trainer = Trainer(model, step, data, config, run_dir, device)
    history = trainer.fit()
    return model.eval(), (trainer.step_log if config.log_every else history)
