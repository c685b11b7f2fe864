"""IASSF's control arm: the authors' trainer (``reference_code/iassf/train``, no licence) driven from outside,
beside ours (docs/control-arm.md, docs/iassf.md#the-authors-trainer-beside-ours).

Nothing of theirs is copied: :func:`authors_training` imports their ``train.py`` with the shims of
:data:`SHIMS` and nothing else; their ``Fusionloss``, their ``train()`` loop, their networks and their
loader run as published. What their ``__main__`` builds (the two AdamW optimisers, the two cosine
schedules, the GradScaler) :func:`authors_optimisers` builds with the same calls.

- :func:`authors_setting`: their ``configs/iassf/iassf.json`` (its trailing comma removed);
- :func:`authors_training`: their ``train`` module, importable on a CPU;
- :func:`to_authors`: our :class:`~fusionlib.iassf.model.IASSF` weights as their two state dicts (the inverse
  of :func:`fusionlib.iassf.official.official_state_dict`);
- :func:`authors_networks`: their two networks holding our weights;
- :func:`authors_optimisers`: their optimisers, schedules and scaler for two networks;
- :func:`authors_batch`: a batch of ours (``ir``, ``vis_hazy``, ``vis_clear`` in [0, 1]) in their format;
- :func:`twin_run`: both arms for the same epochs from the same weights, with snapshots for the learning curve.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import types
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from fusionlib.checkpoints import rename_key
from fusionlib.control import Shim, authors_code, reference_root
from fusionlib.io import atomic_write
from fusionlib.iassf.model import IASSF
from fusionlib.iassf.official import INNER_RENAMES, PARTS, RENAMES

__all__ = ["SHIMS", "authors_setting", "authors_training", "to_authors", "authors_networks", "authors_optimisers", "authors_batch", "twin_run", "as_model"]

SHIMS = [
    Shim("torch.Tensor.cuda, torch.nn.Module.cuda", "cpu",
         "no GPU here: their Sobelxy moves its kernels with .cuda() and their train() moves every batch; "
         "inside the block .cuda() returns the tensor itself (a Parameter's plain tensor, as a GPU copy is) "
         "and the module itself"),
    Shim("setproctitle, tensorboardX, pytorch_msssim", "stand-in",
         "imported at the top of train.py and not installed here; train() and Fusionloss use none of them "
         "(SummaryWriter and setproctitle serve __main__, ms_ssim nothing): empty modules with the names read"),
    Shim("configs/iassf/iassf.json", "config", "its trailing comma makes json.load fail as published: read with the comma removed"),
    Shim("AdamW ×2, CosineAnnealingLR ×2, GradScaler", "driver",
         "built under `if __name__ == '__main__'`: built here with the same calls and their setting "
         "(fusionlib.iassf.control.authors_optimisers); the scaler disables itself without CUDA"),
    Shim("os.environ['CUDA_VISIBLE_DEVICES']", "name", "their train.py sets it at import; it is restored after the block"),
    Shim("<run>/authors/data/MSRS/train/{GT,hazy,IR}", "data",
         "their TripleLoader's layout: links to the same hazy training triplets our arm reads (clear, hazy, IR; same names)"),
    Shim("for epoch in range(epochs)", "driver",
         "their __main__ loops over epochs 0…epochs, one more than asked for, at the floor rate; the twin run stops "
         "both arms after the same number of epochs, and loads and saves weights from outside (no checkpoint files of theirs)"),
    Shim("Fusionloss and L1Loss, wrapped", "driver",
         "their train() logs epoch means only: a pass-through wrapper records each call's value (their terms per step)"),
]


def authors_setting(**overrides) -> dict:
    """Their ``configs/iassf/iassf.json`` (batch 6, patch 256, AdamW 2e-4, 300 epochs), parsed after
    removing the trailing comma that ``json.load`` rejects; ``overrides`` replace keys (a shorter run).

    Derived in ``notebooks/33_iassf_control_arm.ipynb`` §1.
    """
    text = (reference_root("iassf") / "train" / "configs" / "iassf" / "iassf.json").read_text()
    setting = json.loads(re.sub(r",\s*}", "}", text))
    unknown = set(overrides) - set(setting)
    if unknown:
        raise KeyError(f"their setting has no {sorted(unknown)} (it has {sorted(setting)})")
    return {**setting, **overrides}


@contextlib.contextmanager
def authors_training():
    """Their ``train`` module (``Fusionloss``, ``train``, ``iassf``, ``RestormerUNet``, ``TripleLoader``)
    inside the block, with :data:`SHIMS`: ``.cuda()`` is the identity, three unused imports are empty
    modules, ``sys.argv`` is their program name alone (their argparse defaults).

    Derived in ``notebooks/33_iassf_control_arm.ipynb`` §1.
    """
    root = reference_root("iassf")
    stubs = {name: types.ModuleType(name) for name in ("setproctitle", "tensorboardX", "pytorch_msssim")}
    stubs["setproctitle"].setproctitle = lambda *args, **kwargs: None
    stubs["tensorboardX"].SummaryWriter = None
    stubs["pytorch_msssim"].ms_ssim = None
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    tensor_cuda, module_cuda = torch.Tensor.cuda, nn.Module.cuda
    with authors_code(root / "train", stubs=stubs, argv=["train.py"]), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm's and torch.cuda.amp's deprecation notices
        sys.path.insert(0, str(root))  # their models/ package sits beside train/
        # a Parameter's .cuda() copy is a plain tensor (their Sobel kernels are attributes, not parameters)
        torch.Tensor.cuda = lambda self, *args, **kwargs: self.data if isinstance(self, nn.Parameter) else self
        nn.Module.cuda = lambda self, *args, **kwargs: self
        try:
            import train as module
            yield module
        finally:
            torch.Tensor.cuda, nn.Module.cuda = tensor_cuda, module_cuda
            sys.path.remove(str(root))
            for name in [n for n, m in sys.modules.items() if str(root) in str(getattr(m, "__file__", "") or "")]:
                del sys.modules[name]  # their models package, imported from the folder beside train/
            if env is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = env


def to_authors(model: IASSF, dehaze: nn.Module, fusion: nn.Module) -> tuple[dict, dict]:
    """Our weights as state dicts of their ``dehaze`` (their ``iassf()``) and ``fusion`` (``RestormerUNet()``)
    networks, by the proven key map of :mod:`fusionlib.iassf.official`; their relative-position buffers
    (checked equal to ours when loading) are kept. Every key of theirs must find one of ours.

    Derived in ``notebooks/33_iassf_control_arm.ipynb`` §1.
    """
    ours = model.state_dict()
    out = []
    for part, module in zip(PARTS, (dehaze, fusion)):
        state = {}
        for key, tensor in module.state_dict().items():
            if key.endswith("attn.relative_positions"):
                state[key] = tensor.clone()
                continue
            name = rename_key(f"{part}.{key}", RENAMES, INNER_RENAMES)
            if name is None or name not in ours:
                raise KeyError(f"their {part}.{key} has no counterpart in our IASSF")
            value = ours[name].clone()
            state[key] = value.reshape(tensor.shape) if value.numel() == tensor.numel() else value
        out.append(state)
    return out[0], out[1]


def authors_networks(ref: types.ModuleType, model: IASSF) -> tuple[nn.Module, nn.Module]:
    """Their two networks (``ref``: their ``models.IASSF`` module; ``iassf()`` and ``RestormerUNet()``)
    holding ``model``'s weights (:func:`to_authors`), on the CPU in float32: move them as needed.

    Derived in ``notebooks/33_iassf_control_arm.ipynb`` §1.
    """
    dehaze, fusion = ref.iassf(), ref.RestormerUNet()
    for net, state in zip((dehaze, fusion), to_authors(model, dehaze, fusion)):
        net.load_state_dict(state)
    return dehaze, fusion


def authors_optimisers(module: types.ModuleType, dehaze: nn.Module, fusion: nn.Module, setting: dict):
    """``(optimizer_dehaze, optimizer_fusion, scheduler_dehaze, scheduler_fusion, scaler)`` as their
    ``__main__`` builds them: AdamW at ``setting['lr']`` (PyTorch's defaults otherwise: weight decay 0.01),
    CosineAnnealingLR with ``T_max = setting['epochs']`` and ``eta_min = lr·1e-2``, and their module's
    ``GradScaler()`` (which disables itself without CUDA).

    Derived in ``notebooks/33_iassf_control_arm.ipynb`` §1.
    """
    opts = [torch.optim.AdamW(net.parameters(), lr=setting["lr"]) for net in (dehaze, fusion)]
    scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=setting["epochs"], eta_min=setting["lr"] * 1e-2) for o in opts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available. Disabling"
        scaler = module.GradScaler()
    return opts[0], opts[1], scheds[0], scheds[1], scaler


def authors_batch(batch: dict) -> dict:
    """A batch of ours (``ir`` (B, 1, H, W), ``vis_hazy`` and ``vis_clear`` RGB, all in [0, 1]) as their
    TripleLoader gives it: ``vi`` (hazy), ``ir`` (grey read as three equal channels) and ``gt`` (clear),
    each ×2 − 1.

    Derived in ``notebooks/33_iassf_control_arm.ipynb`` §1.
    """
    return {"vi": batch["vis_hazy"] * 2 - 1, "ir": batch["ir"].expand(-1, 3, -1, -1) * 2 - 1, "gt": batch["vis_clear"] * 2 - 1}


class _Recorder:
    """A callable that passes through to ``fn`` and keeps each call's values (their loss modules, observed
    from outside: their ``train()`` logs only epoch means)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, *args):
        out = self.fn(*args)
        self.calls.append([float(v.detach()) for v in (out if isinstance(out, tuple) else (out,))])
        return out


def _their_layout(folder: Path, samples) -> Path:
    """``<folder>/MSRS/train/{GT,hazy,IR}/<name>``, links to our hazy training triplets: the layout their
    TripleLoader reads (``--data_dir <folder> --dataset MSRS``)."""
    import shutil
    shutil.rmtree(folder, ignore_errors=True)
    for theirs, ours in (("GT", "vi_clear"), ("hazy", "vi_hazy"), ("IR", "ir")):
        (folder / "MSRS" / "train" / theirs).mkdir(parents=True)
        for s in samples:
            os.symlink(Path(s.paths[ours]).resolve(), folder / "MSRS" / "train" / theirs / Path(s.paths[ours]).name)
    return folder / "MSRS"


def twin_run(dataset: str, crop: int, batch_size: int, epochs: int, run_root: str | Path | None = None, *, seed: int = 0,
             snapshots: tuple[int, ...] = (), log_every: int = 5, n_pairs: int = 0, sampling_seed: int | None = None,
             device: str = "cpu", arms: tuple[str, ...] = ("ours", "authors")) -> dict:
    """The twin run (control-arm level 2): our trainer and the authors' ``train()`` loop, ``epochs`` epochs
    each, from the same initial weights (ours, seeded, moved into their two networks by the proven key map),
    on the same hazy training triplets (:func:`fusionlib.iassf.train.training_set` of ``dataset``, linked into
    their folder layout), crop, batch and seed; each arm samples its own crops, flips and turns (theirs:
    their TripleLoader and a shuffling DataLoader; ours: :class:`~fusionlib.data.PairedDataset`). Both
    train the authors' setting: AdamW 2e-4 with weight decay 0.01, the cosine schedule to 2e-6 over
    ``epochs`` epochs stepped per epoch, L = L_int + L_grad + 2·L1(dehazed, clear). Their ``__main__`` would
    loop one epoch more (0…epochs) at the floor rate; both arms stop after ``epochs`` (the driver shim).

    ``snapshots``: epochs after which both arms' weights are kept (the learning curve). ``n_pairs``: train on
    this many evenly spaced triplets only (0: all; the smoke run's short epochs). Runs are kept in
    ``run_root`` (default: a cache folder keyed by every argument; ``ours/``: our trainer's resumable
    folder and ``epoch_<k>.pt``; ``authors/``: ``epoch_<k>.pt`` in our layout and their per-step log), so a
    second call reads them. ``arms``: train only these now. ``sampling_seed``: our arm draws its crops, flips,
    turns and batch order from this seed instead of ``seed`` (same weights, same hazy data): with ``arms=("ours",)``,
    a second run of ours whose distance from the first is the noise floor the two arms are read against. Returns ``{"ours": model, "authors": model,
    "log": DataFrame (arm, step, epoch, loss, l_int, l_grad, l_dehaze), "snapshots": {arm: {epoch: path}},
    "steps_per_epoch": n}`` (both arms drop an epoch's last incomplete batch).

    Derived in ``notebooks/33_iassf_control_arm.ipynb`` §2.
    """
    import json as _json
    import random

    import numpy as np
    import pandas as pd

    from fusionlib.data import evenly_spaced
    from fusionlib.iassf.official import official_state_dict
    from fusionlib.iassf.train import train, training_set
    from fusionlib.train import TrainConfig, cached_run_dir, seed_everything

    resampled = {} if sampling_seed is None else {"sampling_seed": sampling_seed}
    if resampled and "authors" in arms:
        raise ValueError("sampling_seed re-draws our arm only: call with arms=('ours',)")
    run_root = Path(run_root or cached_run_dir("iassf/twin", 1, dataset=dataset, crop=crop, batch=batch_size, epochs=epochs,
                                               seed=seed, snapshots=sorted(snapshots), log_every=log_every, n_pairs=n_pairs,
                                               **resampled))
    data = training_set(dataset, crop, seed, crop_seed=sampling_seed)
    if n_pairs:
        data.samples = evenly_spaced(data.samples, n_pairs)
    seed_everything(seed)
    initial = IASSF().state_dict()
    stops = sorted({*[k for k in snapshots if k < epochs], epochs})
    steps_per_epoch = len(data) // batch_size
    out = {"ours": None, "authors": None, "snapshots": {"ours": {}, "authors": {}}, "steps_per_epoch": steps_per_epoch}
    logs = []
    if "ours" in arms:  # in segments ending at each snapshot: a resumed run continues exactly
        for stop in stops:
            path = run_root / "ours" / f"epoch_{stop}.pt"
            out["snapshots"]["ours"][stop] = path
            if stop < epochs and path.is_file():  # an earlier segment, already trained
                continue
            config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=2e-4, seed=seed if sampling_seed is None else sampling_seed,
                                 max_steps=stop * steps_per_epoch, optimizer="adamw", weight_decay=0.01, lr_schedule="cosine",
                                 lr_min=2e-6, log_every=log_every)
            model = IASSF()
            model.load_state_dict(initial)
            model, log = train(data, config, run_root / "ours", device, model=model)
            if not path.is_file():
                torch.save(model.state_dict(), path)
        out["ours"] = model
        logs.append(pd.DataFrame(log).assign(arm="ours"))
    if "authors" in arms:
        folder = run_root / "authors"
        final = folder / "log.json"
        if not final.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            with authors_training() as module:
                import models.IASSF as ref
                root = _their_layout(folder / "data", data.samples)
                setting = authors_setting(batch_size=batch_size, patch_size=crop, epochs=epochs)
                random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
                loader = torch.utils.data.DataLoader(
                    module.TripleLoader(str(root), "train", "train", setting["patch_size"], setting["edge_decay"], setting["only_h_flip"]),
                    batch_size=setting["batch_size"], shuffle=True, num_workers=0, drop_last=True)
                dehaze, fusion = (net.to(device) for net in authors_networks(ref, as_model(initial)))
                opt_d, opt_f, sched_d, sched_f, scaler = authors_optimisers(module, dehaze, fusion, setting)
                criterion, fusion_loss = _Recorder(nn.L1Loss()), _Recorder(module.Fusionloss())
                for epoch in range(epochs):  # their __main__'s loop, stopped after `epochs` epochs as ours
                    module.train(loader, dehaze, fusion, criterion, fusion_loss, opt_d, opt_f, scaler, epoch, setting)
                    sched_d.step(), sched_f.step()
                    if epoch + 1 in stops:
                        state = official_state_dict({PARTS[0]: dehaze.state_dict(), PARTS[1]: fusion.state_dict()})
                        torch.save(state, folder / f"epoch_{epoch + 1}.pt")
            rows = []
            for i, ((l_dehaze,), (l_int, l_grad)) in enumerate(zip(criterion.calls, fusion_loss.calls), start=1):
                rows.append({"step": i, "epoch": (i - 1) // len(loader) + 1, "l_int": l_int, "l_grad": l_grad, "l_dehaze": l_dehaze,
                             "loss": l_int + l_grad + 2 * l_dehaze})
            window = pd.DataFrame(rows)
            window = window.groupby((window["step"] - 1) // log_every).agg(
                {"step": "max", "epoch": "max", "l_int": "mean", "l_grad": "mean", "l_dehaze": "mean", "loss": "mean"})
            atomic_write(final, _json.dumps(window.to_dict("records")))
        logs.append(pd.DataFrame(_json.loads(final.read_text())).assign(arm="authors"))
        out["snapshots"]["authors"] = {k: folder / f"epoch_{k}.pt" for k in stops}
        out["authors"] = as_model(torch.load(folder / f"epoch_{epochs}.pt", map_location="cpu", weights_only=True))
    out["log"] = pd.concat(logs, ignore_index=True) if logs else pd.DataFrame()
    return out


def as_model(state: dict) -> IASSF:
    """An :class:`IASSF` (eval) holding ``state`` (our keys): a twin-run snapshot as a model.

    Derived in ``notebooks/33_iassf_control_arm.ipynb`` §3.
    """
    model = IASSF()
    model.load_state_dict(state)
    return model.eval()
