"""Training and evaluation glue for LDFusion (``notebooks/41_ldfusion_training_and_tables.ipynb``).

- :func:`training_set`: random crops with flips of a training split (the paper: 224×224 crops of
  M3FD, whose 2,940 training pairs are not in the sample data; MSRS stands in, synthetic scenes when
  absent).
- :func:`patch_validity`: the share of random patches that pass Eq. 17's entropy filter at a
  training set's crop (the code trains on 224² M3FD crops; on MSRS and at small crops few do);
- :func:`train`: :class:`fusionlib.ldfusion.model.LDFusion` with
  :class:`fusionlib.ldfusion.loss.LanguageDrivenLoss` through the shared trainer — the network
  sees the inputs plus 0.03·N(0, 1) noise (the code), the loss the clean images; the visible image
  enters as the Y of OpenCV's YCrCb (docs/ldfusion.md#colour); with the language terms on, it
  refuses a training set on which no patch passes the filter (L_p would be identically 0);
- :func:`fuser`: ``(ir, vis RGB) -> fused RGB``, fused Y merged with the visible Cr, Cb (OpenCV).
"""

from __future__ import annotations

from pathlib import Path

import torch

from fusionlib.data import PairedDataset
from fusionlib.data.synthetic import split_or_synthetic
from fusionlib.io import split_luma
from fusionlib.ldfusion.clip import patch_mask, sample_patches
from fusionlib.ldfusion.loss import LanguageDrivenLoss
from fusionlib.ldfusion.model import LDFusion
from fusionlib.train import TrainConfig, Trainer, cached_run_dir, seed_everything

__all__ = ["NOISE", "training_set", "patch_validity", "run_folder", "train"]

NOISE = 0.03  # std of the Gaussian noise the code adds to the network's inputs during training


def training_set(dataset: str, crop: int, seed: int = 0, repeat: int = 1) -> PairedDataset:
    """Random ``crop``² crops with flips of ``dataset``'s ``train`` split (synthetic scenes when absent),
    each pair listed ``repeat`` times per epoch (the code: 10, so its one-epoch warm-up is 10 passes long);
    pairs smaller than the crop are reflected first, as the code's loader does.

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §2.
    """
    return PairedDataset(split_or_synthetic(dataset, seed=seed), crop=crop, flip=True, seed=seed, repeat=repeat,
                        pad=True)


def patch_validity(data: PairedDataset, rounds: int = 8, sigma: float = 6.0, batches: int = 16,
                   batch_size: int = 4, seed: int = 0) -> float:
    """Share of the patches :func:`~fusionlib.ldfusion.clip.sample_patches` draws from ``batches``
    batches of ``data`` that pass :func:`~fusionlib.ldfusion.clip.patch_mask` (both sources above
    ``sigma`` bits), the visible image as OpenCV Y as in training. No network, no CLIP: cheap.

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §2.
    """
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    generator = torch.Generator().manual_seed(seed)
    masks = []
    for k, batch in enumerate(loader):
        if k == batches:
            break
        p_vis, p_ir = sample_patches([split_luma(batch["vis"], "opencv")[0], batch["ir"]], rounds, generator=generator)
        masks.append(patch_mask(p_vis, p_ir, sigma))
    return float(torch.cat(masks).mean())


def run_folder(tag: str, config: TrainConfig, *, weights: dict | None, texts, language: bool, clip: str, vgg: str, data: str,
               rounds: int) -> Path:
    """The cache folder of one training run, keyed by everything that determines it: the config (seed and
    schedule included), the loss weights and texts, whether the language terms are on (and then which CLIP,
    ``"<model>:<pretrained>"``), the VGG's label, the data checksum and the patch rounds. A re-run with the same
    settings resumes or re-uses it; ``tag`` names the row it trains (``main``, an ablation).

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §2.
    """
    return cached_run_dir(f"ldfusion/{tag}", 2, config=vars(config), weights=weights, texts=texts, language=language,
                          clip=clip if language else None, vgg=vgg, data=data, rounds=rounds)


def train(data: PairedDataset, loss: LanguageDrivenLoss, config: TrainConfig, run_dir: str | Path,
          device: str = "cpu", noise: float = NOISE, model: LDFusion | None = None,
          allow_config_change: bool = False) -> tuple[LDFusion, list[dict]]:
    """Seeded training from the code's initialisation; returns the model (eval mode) and the loss
    history: one row per ``config.log_every`` steps when set (:attr:`~fusionlib.train.Trainer.step_log`),
    else per epoch. Each row has ``lit``, the share of output pixels above 0 (the rest pass no gradient).
    ``model``: start from these weights instead of the code's initialisation (the control arm's float64 check);
    ``allow_config_change``: resume ``run_dir`` under a longer step limit (a run trained in segments).

    With the language terms on, a training set whose crops let no patch through the entropy filter
    (:func:`patch_validity` = 0) raises ``ValueError``: the patch loss would silently be 0.

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §2.
    """
    if loss.language and loss.weights["patch"] and patch_validity(data, loss.rounds, loss.sigma, seed=config.seed) == 0:
        raise ValueError(f"no random patch of {'×'.join(map(str, data.crop or ()))} crops of {data.folder} passes the entropy filter "
                         f"(σ = {loss.sigma:g} bits on both sources), so L_p would be 0 at every step; train on larger "
                         "crops (the paper: 224²; ≥ 128² for MSRS), lower sigma, or set the patch weight to 0")
    seed_everything(config.seed)
    model = LDFusion() if model is None else model
    generator = torch.Generator().manual_seed(config.seed)  # the input noise and the patch sampler's draws

    def step(net, batch):
        ir, vis = batch["ir"], split_luma(batch["vis"], "opencv")[0]
        noisy = [x + noise * torch.randn(x.shape, generator=generator).to(x) for x in (ir, vis)]
        return loss(net(*noisy), vis, ir, generator=generator)
    trainer = Trainer(model, step, data, config, run_dir, device, generators={"noise_and_patches": generator})
    loss.to(trainer.device)
    history = trainer.fit(allow_config_change=allow_config_change)
    return model.eval(), (trainer.step_log if config.log_every else history)
