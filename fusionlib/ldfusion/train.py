"""Training and evaluation glue for LDFusion (``notebooks/41_ldfusion_training_and_tables.ipynb``).

- :func:`training_set`: random crops with flips of a training split (the paper: 224×224 crops of
  M3FD, whose 2,940 training pairs are not in the sample data; MSRS stands in, synthetic scenes when
  absent).
- :func:`train`: :class:`fusionlib.ldfusion.model.LDFusion` with
  :class:`fusionlib.ldfusion.loss.LanguageDrivenLoss` through the shared trainer — the network
  sees the inputs plus 0.03·N(0, 1) noise (the code), the loss the clean images; the visible image
  enters as the Y of OpenCV's YCrCb (docs/ldfusion.md#colour).
- :func:`fuser`: ``(ir, vis RGB) -> fused RGB``, fused Y merged with the visible Cr, Cb (OpenCV).
"""

from __future__ import annotations

from pathlib import Path

import torch

from fusionlib.common.rgb import fuse_rgb
from fusionlib.data import PairedDataset
from fusionlib.data.synthetic import split_or_synthetic
from fusionlib.io import split_luma
from fusionlib.ldfusion.loss import LanguageDrivenLoss
from fusionlib.ldfusion.model import LDFusion
from fusionlib.train import TrainConfig, Trainer, seed_everything

__all__ = ["NOISE", "training_set", "train", "fuser"]

NOISE = 0.03  # std of the Gaussian noise the code adds to the network's inputs during training


def training_set(dataset: str, crop: int, seed: int = 0) -> PairedDataset:
    """Random ``crop``² crops with flips of ``dataset``'s ``train`` split (synthetic scenes when absent).

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §2.
    """
    return PairedDataset(split_or_synthetic(dataset, seed=seed), crop=crop, flip=True, seed=seed)


def train(data: PairedDataset, loss: LanguageDrivenLoss, config: TrainConfig, run_dir: str | Path,
          device: str = "cpu", noise: float = NOISE) -> tuple[LDFusion, list[dict]]:
    """Seeded training; returns the model (eval mode) and the per-epoch history.

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §2.
    """
    seed_everything(config.seed)
    model = LDFusion()
    generator = torch.Generator().manual_seed(config.seed)  # the input noise and the patch sampler's draws

    def step(net, batch):
        ir, vis = batch["ir"], split_luma(batch["vis"], "opencv")[0]
        noisy = [x + noise * torch.randn(x.shape, generator=generator).to(x) for x in (ir, vis)]
        return loss(net(*noisy), vis, ir, generator=generator)
    trainer = Trainer(model, step, data, config, run_dir, device, generators={"noise_and_patches": generator})
    loss.to(trainer.device)
    history = trainer.fit()
    return model.eval(), history


def fuser(model: LDFusion, device: str = "cpu"):
    """``(ir (1,1,H,W), vis RGB (1,3,H,W)) -> fused RGB`` with OpenCV's YCrCb (docs/ldfusion.md#colour).

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §3.
    """
    return fuse_rgb(model.to(device), "opencv", device)
