"""A small reusable trainer for every paper: seeded, resumable, AMP on CUDA, DDP through ``torchrun``.

    trainer = Trainer(model, loss_fn, dataset, TrainConfig(epochs=2, batch_size=8, lr=1e-4), run_dir)
    history = trainer.fit()          # resumes from <run_dir>/last.pt when it exists

- ``loss_fn(model, batch) -> (loss, {name: float})`` computes the objective on one batch.
- Determinism: the data order of epoch e comes from a generator seeded with ``seed + e`` (and
  ``DistributedSampler(seed=seed)`` under DDP), and every random number generator a step may use
  is saved with the checkpoint and restored on resume: torch (CPU and CUDA), numpy's and python's
  global ones, the ``generators`` given to the trainer (e.g. a loss's patch sampler) and the state of
  a ``loss_fn`` or ``dataset`` that has ``rng_state()`` / ``set_rng_state(state)``. So training 2
  epochs equals training 1, stopping and resuming 1, bit for bit — also when ``max_steps`` cut the
  first run inside an epoch: the resume continues that epoch at the next batch (the tests check it
  for every paper's loop on the CPU).
- Checkpoints (``last.pt`` after every epoch and when ``max_steps`` stops a run, atomically) hold
  the model, optimiser, scheduler, epoch, step, position in an unfinished epoch, history, random
  states and the resolved config (house style 17).
- ``history`` has one row per epoch (the means of its steps); with ``log_every = k`` the trainer also
  keeps :attr:`Trainer.step_log`, one row per k steps, for loss curves of runs shorter than an epoch.
- AMP: ``amp=True`` runs the forward pass under bfloat16 autocast on CUDA (no loss scaling needed);
  on the CPU it is ignored. Multi-GPU: launch with ``torchrun --nproc_per_node=N script.py``; the
  trainer detects ``WORLD_SIZE`` and wraps the model in ``DistributedDataParallel``; only rank 0
  writes checkpoints and shows the progress bar.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm.auto import tqdm

from fusionlib.checkpoints import key_mismatch
from fusionlib.io import atomic_write

__all__ = ["TrainConfig", "Trainer", "seed_everything", "cached_run_dir", "run_summary", "PastFirstStop", "learning_curve", "last_doubling"]

LossFn = Callable[[torch.nn.Module, dict], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class TrainConfig:
    epochs: int = 1
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    seed: int = 0
    amp: bool = False             # bfloat16 autocast on CUDA
    grad_clip: float | None = None
    num_workers: int = 0
    max_steps: int | None = None  # stop early (smoke profiles)
    lr_milestones: tuple[int, ...] = ()  # epochs after which the LR is multiplied by lr_gamma (MultiStepLR)
    lr_gamma: float = 0.5
    lr_schedule: str = "multistep"  # or "cosine": lr → lr_min over the epochs (CosineAnnealingLR, per epoch)
    lr_min: float = 0.0
    optimizer: str = "adam"  # or "adamw" (decoupled weight decay)
    warmup_epochs: int = 0  # linear per-step LR warm-up over the first epochs (LDFusion: 1)
    log_every: int = 0  # also log the mean of every log_every steps (Trainer.step_log): a real loss curve

    def scaled(self, fraction: float) -> "TrainConfig":
        """The same schedule shortened to ``fraction`` of its epochs and step limit (each rounded up,
        at least 1): how the notebooks train ablation variants on a stated share of the main budget.
        Milestones are kept (epochs past the end simply never come)."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if fraction == 1:
            return dataclasses.replace(self)
        scale = lambda n: max(1, math.ceil(n * fraction))  # noqa: E731
        return dataclasses.replace(self, epochs=scale(self.epochs),
                                   max_steps=scale(self.max_steps) if self.max_steps else self.max_steps)


def run_summary(run_dir: str | Path) -> dict:
    """``{"steps", "epochs", "wall_seconds"}`` of the run in ``run_dir`` (from its ``last.pt``): what a
    checkpoint manifest row records. ``wall_seconds`` is NaN for runs saved before it was recorded."""
    ckpt = torch.load(Path(run_dir) / "last.pt", map_location="cpu", weights_only=True)
    return {"steps": int(ckpt["step"]), "epochs": int(ckpt["epoch"]) + (1 if ckpt.get("epoch_batches") else 0),
            "wall_seconds": float(ckpt.get("wall_seconds", math.nan))}


def cached_run_dir(name: str, version: int = 1, **parts) -> Path:
    """``<cache>/<name>-<hash>``: a run folder keyed by everything that determines the run (``parts``,
    JSON-serialisable or stringified), so a later notebook or re-run resumes or re-uses it; bump
    ``version`` when a code change invalidates earlier runs."""
    import hashlib
    import json

    from fusionlib.paths import cache_root
    key = hashlib.sha256(json.dumps({"version": version, **parts}, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return cache_root() / f"{name}-{key}"


class PastFirstStop(ValueError):
    """A run folder already trained past a learning curve's first stop, without that curve saved.

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §3.
    """


def learning_curve(run_dir: str | Path, end: int | None, stops, *, start: Callable[[], torch.nn.Module],
                   train_to: Callable[[int], tuple[torch.nn.Module, list]], evaluate: Callable[[torch.nn.Module], list[dict]],
                   key: str) -> tuple[torch.nn.Module, list, list[dict]]:
    """A learning curve (level 3) of the run in ``run_dir``: trained in segments that end at each of ``stops``
    (and at ``end``, the run's step budget), the model scored after each by ``evaluate(model) -> rows``; step 0
    scores ``start()``, the seeded start. ``train_to(k) -> (model, log)`` trains (resuming) the run to step k; a
    resumed run continues exactly, so the final model is the one an uninterrupted run trains in the same folder.

    Returns ``(model, log, rows)``, each row with its ``step``. The rows are kept in ``run_dir`` as
    ``curve-<key>-<stops>.json`` (``key``: what ``evaluate`` sees, e.g. a digest of its images), so a finished
    curve is read back, not retrained; a run already past its first stop without them cannot give its early
    points and raises :class:`PastFirstStop`.

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §3.
    """
    import json

    if not end:
        raise ValueError("a learning curve needs a step budget: config.max_steps is not set")
    stops = sorted({*[k for k in stops if 0 < k < end], end})
    run_dir = Path(run_dir)
    saved = run_dir / f"curve-{key}-{'-'.join(map(str, stops))}.json"
    done = run_summary(run_dir)["steps"] if (run_dir / "last.pt").is_file() else 0
    if saved.is_file() and done == end:
        model, log = train_to(end)
        return model, log, json.loads(saved.read_text())
    if done > stops[0]:
        raise PastFirstStop(f"{run_dir} is already trained to step {done}, past the curve's first stop {stops[0]}: "
                            "its earlier points cannot be measured any more; give a fresh run folder")
    rows = [{"step": 0, **row} for row in evaluate(start())]
    model, log = None, []
    for stop in stops:
        model, log = train_to(stop)
        rows += [{"step": stop, **row} for row in evaluate(model)]
    atomic_write(saved, json.dumps(rows))
    return model, log, rows


def last_doubling(rows, end: int, measure: str, *, rng=None, resamples: int = 2000) -> dict | None:
    """Is a learning curve still moving at the end? The mean per-image change of ``measure`` from the last
    evaluation step at or below ``end / 2`` to ``end`` (rows of :func:`learning_curve`: ``step``,
    ``image``, the measure), with a bootstrap 95 % interval over the images (``rng``: a numpy Generator,
    default seeded with 0); ``None`` without such a step.

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §4.
    """
    import pandas as pd
    rows = pd.DataFrame(rows)
    half = max((k for k in rows["step"].unique() if 0 < k <= end / 2), default=None)
    if half is None:
        return None
    at = lambda k: rows[rows["step"] == k].set_index("image")[measure]
    diff = (at(end) - at(half)).dropna().to_numpy()
    rng = rng if rng is not None else np.random.default_rng(0)
    boot = [rng.choice(diff, len(diff)).mean() for _ in range(resamples)]
    return {"from": int(half), "to": int(end), "images": len(diff), "change": float(diff.mean()),
            "low": float(np.percentile(boot, 2.5)), "high": float(np.percentile(boot, 97.5))}


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Train ``model`` on ``dataset`` with Adam(W) and ``loss_fn``; see the module docstring."""

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn, dataset: Dataset, config: TrainConfig,
                 run_dir: str | Path, device: str | torch.device | None = None,
                 optimizer: torch.optim.Optimizer | None = None,
                 generators: dict[str, torch.Generator] | None = None):
        self.config = config
        self.generators = dict(generators or {})
        self.run_dir = Path(run_dir)
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if device is None:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.distributed and not dist.is_initialized():  # NCCL for GPU training, gloo on the CPU
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.rank = dist.get_rank() if self.distributed else 0
        self.model = model.to(self.device)
        self.net = (torch.nn.parallel.DistributedDataParallel(self.model, device_ids=[self.device.index]
                    if self.device.type == "cuda" else None) if self.distributed else self.model)
        self.loss_fn = loss_fn
        self.dataset = dataset
        if optimizer is None:
            if config.optimizer not in ("adam", "adamw"):
                raise ValueError(f"optimizer must be 'adam' or 'adamw', got {config.optimizer!r}")
            cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
            optimizer = cls(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.optimizer = optimizer
        if config.lr_schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, max(1, config.epochs), config.lr_min)
        elif config.lr_schedule == "multistep":
            self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.lr_milestones), config.lr_gamma)
        else:
            raise ValueError(f"lr_schedule must be 'multistep' or 'cosine', got {config.lr_schedule!r}")
        self.epoch, self.step, self.history = 0, 0, []
        # An epoch cut by max_steps: batches done in it and their summed logs (resumed from there).
        self.epoch_batches, self._epoch_sums = 0, {}
        # config.log_every: one row per log_every steps, and the sums of the steps since the last row
        self.step_log: list[dict] = []
        self._window: dict[str, float] = {}
        self.wall_seconds = 0.0  # training time of this run, summed over its resumes (saved in checkpoints)
        self._fingerprint: dict | None = None  # data_fingerprint(), computed once

    # ------------------------------------------------------------------ random states
    def _rng_owners(self) -> dict:
        return {name: obj for name, obj in (("loss_fn", self.loss_fn), ("dataset", self.dataset))
                if callable(getattr(obj, "rng_state", None)) and callable(getattr(obj, "set_rng_state", None))}

    def rng_state(self) -> dict:
        """Every random state a training step may draw from, in a form ``torch.load(weights_only=True)`` reads."""
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        return {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
                "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                          "has_gauss": has_gauss, "gauss": gauss},
                "python": random.getstate(),
                "generators": {k: g.get_state() for k, g in self.generators.items()},
                "owned": {k: obj.rng_state() for k, obj in self._rng_owners().items()}}

    def set_rng_state(self, state: dict, path: Path) -> None:
        """Restore :meth:`rng_state`; a generator the checkpoint lacks (or has extra) is a one-line error."""
        names = (set(self.generators), set(self._rng_owners()))
        saved = (set(state["generators"]), set(state["owned"]))
        if names != saved:
            raise ValueError(f"checkpoint {path} saved the random states of {sorted(saved[0] | saved[1])}, this "
                             f"trainer has {sorted(names[0] | names[1])}: it was written by another training loop")
        torch.set_rng_state(state["torch"].cpu())
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
        n = state["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
        random.setstate(state["python"])
        for k, g in self.generators.items():
            g.set_state(state["generators"][k].cpu())
        for k, obj in self._rng_owners().items():
            obj.set_rng_state(state["owned"][k])

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "step": self.step, "history": self.history,
                "epoch_batches": self.epoch_batches, "epoch_sums": self._epoch_sums, "rng": self.rng_state(),
                "step_log": self.step_log, "step_window": self._window, "wall_seconds": self.wall_seconds,
                "config": dataclasses.asdict(self.config), "data": self.data_fingerprint()}

    def data_fingerprint(self) -> dict:
        """What the run trains on, saved with every checkpoint and compared on resume: the item count
        and, for a dataset of files (``samples``, as :class:`fusionlib.data.PairedDataset`), the sha256
        of their contents (:func:`fusionlib.data.checksum_samples`); a ``fingerprint()`` method of the
        dataset takes precedence."""
        if self._fingerprint is None:
            ds = self.dataset
            if callable(getattr(ds, "fingerprint", None)):
                checksum = str(ds.fingerprint())
            elif all(hasattr(x, "paths") for x in getattr(ds, "samples", None) or [None]):
                from fusionlib.data import checksum_samples
                checksum = checksum_samples(ds.samples)
            else:
                checksum = ""
            self._fingerprint = {"items": len(ds), "checksum": checksum}
        return self._fingerprint

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint atomically (rank 0 only); default ``<run_dir>/last.pt``."""
        path = Path(path or self.run_dir / "last.pt")
        if self.rank == 0:
            state = self.state()
            atomic_write(path, lambda f: torch.save(state, f))
        return path

    _RESUMABLE = ("epochs", "max_steps", "num_workers", "log_every")  # may change between a run and its resume

    def _check_config(self, path: Path, saved) -> None:
        if not isinstance(saved, dict):
            return  # written before configs were stored
        now = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self.config).items()}
        was = {k: list(v) if isinstance(v, tuple) else v for k, v in saved.items()}
        differ = sorted(k for k in set(now) | set(was) if k not in self._RESUMABLE and now.get(k) != was.get(k))
        if differ:
            raise ValueError(f"{path} was started with another configuration ("
                             + ", ".join(f"{k}: {was.get(k)!r} -> {now.get(k)!r}" for k in differ)
                             + "); use another run folder, or fit(allow_config_change=True)")

    def load(self, path: str | Path, *, allow_config_change: bool = True) -> None:
        """Restore model, optimiser, epoch, step and history from a checkpoint of this trainer.

        Raises:
            ValueError: one line naming the file and the problem — unreadable (empty, truncated,
                not a torch file), not a checkpoint of a Trainer, non-finite weights, weights of
                another model (the differing keys), or — with ``allow_config_change=False``, as
                :meth:`fit` resumes — a configuration other than the one the run started with.
        """
        try:
            ckpt = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as e:  # noqa: BLE001 - EOFError, RuntimeError, UnpicklingError, ... become one line
            detail = str(e).splitlines()[0] if str(e) else "no detail"
            raise ValueError(f"checkpoint {path} cannot be read ({type(e).__name__}: {detail}); delete it to start "
                             "the run afresh") from None
        missing = [k for k in ("model", "optimizer", "epoch", "step", "history") if not isinstance(ckpt, dict) or k not in ckpt]
        if missing:
            raise ValueError(f"checkpoint {path} is not a fusionlib Trainer checkpoint (no {', '.join(missing)})")
        broken = [k for k, v in ckpt["model"].items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
        if broken:
            raise ValueError(f"checkpoint {path} has non-finite weights in {broken[:3]}; delete it to start the run afresh")
        problems = key_mismatch(self.model.state_dict(), ckpt["model"])
        if problems:
            raise ValueError(f"checkpoint {path} holds another model's weights ({problems})")
        if not allow_config_change:
            self._check_config(Path(path), ckpt.get("config"))
            was, now = ckpt.get("data"), self.data_fingerprint()
            if isinstance(was, dict) and was != now:
                raise ValueError(f"{path} was trained on other data ({was['items']} items, sha256 {str(was['checksum'])[:12] or '-'}…; "
                                 f"now {now['items']} items, sha256 {str(now['checksum'])[:12] or '-'}…); use another run "
                                 "folder, or fit(allow_config_change=True)")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if "scheduler" in ckpt:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.epoch, self.step, self.history = ckpt["epoch"], ckpt["step"], list(ckpt["history"])
        self.epoch_batches, self._epoch_sums = ckpt.get("epoch_batches", 0), dict(ckpt.get("epoch_sums", {}))
        self.step_log, self._window = list(ckpt.get("step_log", [])), dict(ckpt.get("step_window", {}))
        self.wall_seconds = float(ckpt.get("wall_seconds", math.nan))  # nan: written before it was recorded
        if "rng" in ckpt:
            self.set_rng_state(ckpt["rng"], Path(path))

    # ------------------------------------------------------------------ training
    def _loader(self, epoch: int, skip: int = 0) -> tuple[DataLoader, int]:
        """The loader of ``epoch`` without its first ``skip`` batches, and the epoch's full length in batches.

        The DataLoader gets its own seeded generator, so creating one draws nothing from the global
        torch RNG (a resume inside an epoch creates one more than an uninterrupted run)."""
        cfg = self.config
        if self.distributed:
            sampler = DistributedSampler(self.dataset, shuffle=True, seed=cfg.seed)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(self.dataset, generator=torch.Generator().manual_seed(cfg.seed + epoch))
        order = list(sampler)
        length = len(order) // cfg.batch_size
        loader = DataLoader(self.dataset, batch_size=cfg.batch_size, sampler=order[skip * cfg.batch_size:],
                            num_workers=cfg.num_workers, drop_last=True,
                            generator=torch.Generator().manual_seed(cfg.seed + epoch))
        return loader, length

    def _log_step(self, logs: dict[str, float]) -> None:
        """Add one step's logs to the window; every ``log_every`` steps append their mean to :attr:`step_log`."""
        self._window["_n"] = self._window.get("_n", 0) + 1
        for k, v in logs.items():
            self._window[k] = self._window.get(k, 0.0) + v
        if self.step % self.config.log_every == 0:
            n = self._window.pop("_n")
            self.step_log.append({"step": self.step, "epoch": self.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
                                  **{k: v / n for k, v in self._window.items()}})
            self._window = {}

    def _to_device(self, batch):
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def fit(self, resume: bool = True, *, allow_config_change: bool = False) -> list[dict]:
        """Train until ``config.epochs`` (or ``max_steps``); returns the per-epoch history.

        A run stopped by ``max_steps`` inside an epoch resumes at that epoch's next batch.

        Rules, each a one-line ``ValueError``: a resume whose configuration differs from the one the
        run was started with (other than ``epochs``, ``max_steps``, ``num_workers``) is refused unless
        ``allow_config_change=True``, and so is a resume on other data (:meth:`data_fingerprint`); a run
        folder already longer than asked for is refused (use another folder); a batch larger than the
        dataset (an epoch of 0 steps) is refused. A non-finite loss stops training with a
        ``FloatingPointError`` before its step, so no NaN weights are trained on or saved. Stale
        temporaries of a save killed half-way are removed first.
        """
        cfg = self.config
        last = self.run_dir / "last.pt"
        if self.rank == 0 and self.run_dir.is_dir():
            for stale in self.run_dir.glob(".*.tmp"):  # left by a kill during atomic_write
                stale.unlink(missing_ok=True)
        if resume and last.is_file():
            self.load(last, allow_config_change=allow_config_change)
            if self.epoch > cfg.epochs or (cfg.max_steps is not None and self.step > cfg.max_steps):
                raise ValueError(f"{last} already holds {self.epoch} epochs / {self.step} steps, more than the "
                                 f"{cfg.epochs} epochs / {cfg.max_steps} steps asked for; use another run folder")
        if len(self.dataset) < cfg.batch_size:
            raise ValueError(f"batch size {cfg.batch_size} is larger than the dataset ({len(self.dataset)} items): "
                             "every epoch would train 0 steps (batches drop the remainder)")
        use_amp = cfg.amp and self.device.type == "cuda"
        self.net.train()
        started, wall_before = time.perf_counter(), self.wall_seconds
        while self.epoch < cfg.epochs and (cfg.max_steps is None or self.step < cfg.max_steps):
            sums, n = self._epoch_sums, self.epoch_batches  # zero unless resuming inside an epoch
            if n and self.history:  # resuming inside an epoch: its provisional row is rewritten when it ends
                self.history.pop()
            if hasattr(self.dataset, "set_epoch"):  # new random crops each epoch (PairedDataset)
                self.dataset.set_epoch(self.epoch)
            loader, length = self._loader(self.epoch, skip=n)
            bar = tqdm(loader, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", leave=False, initial=n, total=length,
                       disable=self.rank != 0 or os.environ.get("TQDM_DISABLE") == "1")
            for i, batch in enumerate(bar, start=n):
                if self.epoch < cfg.warmup_epochs:  # linear warm-up, per step, towards the scheduled LR
                    done = (self.epoch * length + i + 1) / (cfg.warmup_epochs * length)
                    for group in self.optimizer.param_groups:
                        group["lr"] = group["initial_lr"] * done
                batch = self._to_device(batch)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                    loss, logs = self.loss_fn(self.net, batch)
                if not torch.isfinite(loss.detach()).all():  # stop before the step: the weights and last.pt stay finite
                    raise FloatingPointError(
                        f"non-finite loss ({float(loss.detach())}) at step {self.step + 1} (epoch {self.epoch + 1}, batch {i + 1}); "
                        f"nothing was saved from this step ({last} holds the last good state): lower the learning rate "
                        "or set grad_clip, then fit() resumes from it")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.step += 1
                n += 1
                logs = {"loss": float(loss.detach()), **{k: float(v) for k, v in logs.items()}}
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                if cfg.log_every:
                    self._log_step(logs)
                bar.set_postfix(loss=f"{logs['loss']:.4g}")
                if cfg.max_steps is not None and self.step >= cfg.max_steps and n < length:
                    break
            row = {"epoch": self.epoch + 1, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
                   **{k: v / max(n, 1) for k, v in sums.items()}}
            self.wall_seconds = wall_before + time.perf_counter() - started
            if n < length:  # cut by max_steps: a provisional row; the epoch stays open for a resume
                self.epoch_batches, self._epoch_sums = n, sums
                self.history.append(row)
                self.save()
                break
            self.epoch += 1
            self.epoch_batches, self._epoch_sums = 0, {}
            self.history.append(row)
            self.scheduler.step()
            self.save()
        return self.history
