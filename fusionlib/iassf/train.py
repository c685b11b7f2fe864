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
from typing import Callable

import torch

from fusionlib.data import PairedDataset, split_dir
from fusionlib.iassf.hazy import hazify
from fusionlib.data.synthetic import materialize, split_or_synthetic
from fusionlib.iassf.loss import ALPHA, iassf_loss
from fusionlib.iassf.model import IASSF
from fusionlib.train import TrainConfig, Trainer, seed_everything

__all__ = ["training_set", "to_model_range", "train", "evaluation_sets", "fuser"]


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
