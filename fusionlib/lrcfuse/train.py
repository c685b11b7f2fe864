"""Training and evaluation glue for LRCFuse (``notebooks/12_lrcfuse_training_and_tables.ipynb``).

- :func:`train` fits :class:`fusionlib.lrcfuse.model.LRCFuse` (or retrains LRRNet) on grey patches
  with the multi-level loss through :class:`fusionlib.train.Trainer` (resumable, AMP, DDP).
- colour images are fused as LRRNet's are (:func:`fusionlib.common.lrrnet.rgb_fuser`: IR with the
  visible Y, min-max in and out, the visible chroma restored), the colour policy of
  docs/lrcfuse.md#training.
- evaluation is :func:`fusionlib.metrics.dataset.score` over :func:`fusionlib.metrics.dataset.cropped` test pairs.
"""

from __future__ import annotations

from pathlib import Path
import torch

from fusionlib.data.patches import PatchDataset
from fusionlib.lrcfuse.loss import MultiLevelLoss
from fusionlib.lrcfuse.model import LRCFuse
from fusionlib.common.lrrnet import normalise
from fusionlib.lrcfuse.loss import LRCFUSE_WEIGHTS
from fusionlib.train import TrainConfig, Trainer, cached_run_dir, seed_everything
from fusionlib.train import learning_curve as _segmented

__all__ = ["train", "run_folder", "learning_curve"]


def train(patches: PatchDataset, config: TrainConfig, run_dir: str | Path, vgg: torch.nn.Module,
          loss_weights: dict | None = None, model_kwargs: dict | None = None,
          device: str | torch.device | None = None,
          model_cls: type[torch.nn.Module] = LRCFuse,
          initial: dict[str, torch.Tensor] | None = None, feature_scale: float = 1.0,
          sources: str = "raw") -> tuple[torch.nn.Module, list[dict]]:
    """Seeded training of LRCFuse (or ``model_cls``: :class:`fusionlib.common.lrrnet.LRRNet` retrains
    LRRNet, with :data:`fusionlib.lrcfuse.loss.LRRNET_WEIGHTS` as ``loss_weights``); returns the model
    (eval mode) and its log: one row per ``config.log_every`` steps when set, else per epoch. Rows
    carry each loss term's weighted contribution. ``initial``: start from these weights instead of the
    seeded initialisation (the control arm's shared start). ``feature_scale`` and ``sources``: the loss
    network's scale constant and what the output is compared with (:class:`fusionlib.lrcfuse.loss.MultiLevelLoss`).

    Derived in ``notebooks/12_lrcfuse_training_and_tables.ipynb`` §2.
    """
    seed_everything(config.seed)
    model = model_cls(**(model_kwargs or {}))
    if initial is not None:
        model.load_state_dict(initial)
    criterion = MultiLevelLoss(vgg, loss_weights, feature_scale=feature_scale, sources=sources)

    def step(net, batch):
        fused = net(normalise(batch["ir"]), normalise(batch["vis"]))["fused"]
        return criterion(fused, batch["ir"], batch["vis"])
    trainer = Trainer(model, step, patches, config, run_dir, device)
    criterion.to(trainer.device)
    history = trainer.fit()
    return model.eval(), (trainer.step_log if config.log_every else history)


def run_folder(config: TrainConfig, *, loss_network: str, data: str, patches: tuple[int, int, int],
               weights: dict | None = None, model_kwargs: dict | None = None, arch: str = "LRCFuse",
               feature_scale: float = 1.0, sources: str = "raw") -> Path:
    """The cache folder of one training run, keyed by everything that determines it: the config
    (seed and schedule included), the loss weights (``None`` = the paper's), the architecture and its
    kwargs, the loss network's label (and its scale constant where it is not 1, its sources where they are
    not raw), the data checksum and the patch grid ``(size, stride, count)``.
    Two notebook rows asking for the same run share it (e.g. Table 5's Sobel 0 and Table 12's "no
    Sobel"), and a re-run resumes or re-uses it.

    Derived in ``notebooks/12_lrcfuse_training_and_tables.ipynb`` §2.
    """
    if weights is not None and dict(weights) == LRCFUSE_WEIGHTS:
        weights = None
    scale = ({} if feature_scale == 1 else {"feature_scale": float(feature_scale)}) | ({} if sources == "raw" else {"sources": sources})
    return cached_run_dir("lrcfuse/run", 2, config=vars(config), weights=weights, model=dict(sorted((model_kwargs or {}).items())),
                          arch=arch, loss_network=loss_network, data=data, patches=list(patches), **scale)


def learning_curve(patches: PatchDataset, config: TrainConfig, run_dir: str | Path, vgg: torch.nn.Module, held: list,
                   stops, *, metrics: list[str], convention: str, device: str = "cpu", **train_kwargs):
    """The run :func:`train` makes in ``run_dir`` (same arguments, ``train_kwargs``), trained in segments that
    end at each of ``stops`` and at ``config.max_steps`` and scored after each on the held-out pairs ``held``
    (fused as the tables fuse, :func:`fusionlib.common.lrrnet.rgb_fuser`; ``metrics`` under ``convention``,
    per image): :func:`fusionlib.train.learning_curve`, so the model it returns is the uninterrupted run's.

    Returns ``(model, log, rows)``; rows carry ``step``, ``image`` and the metrics (step 0: the seeded start).

    Derived in ``notebooks/12_lrcfuse_training_and_tables.ipynb`` §2.
    """
    import dataclasses

    from fusionlib.common.lrrnet import rgb_fuser
    from fusionlib.data import checksum_samples
    from fusionlib.metrics.dataset import score

    def start():
        seed_everything(config.seed)  # the initialisation train() starts from
        model = train_kwargs.get("model_cls", LRCFuse)(**(train_kwargs.get("model_kwargs") or {}))
        if train_kwargs.get("initial") is not None:
            model.load_state_dict(train_kwargs["initial"])
        return model.eval()

    def evaluate(model):
        table = score({"model": rgb_fuser(model, device)}, [("held-out", held)], 0, metrics, convention, per_image=True)
        return [{"image": r["image"], **{m: float(r[m]) for m in metrics}} for r in table.to_dict("records")]

    def train_to(step):
        return train(patches, dataclasses.replace(config, max_steps=step), run_dir, vgg, device=device, **train_kwargs)

    key = f"{checksum_samples(held)[:16]}-{'-'.join(metrics)}-{convention}"
    return _segmented(run_dir, config.max_steps, stops, start=start, train_to=train_to, evaluate=evaluate, key=key)
