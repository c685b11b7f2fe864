"""LRRNet's control arm: the authors' LRRNet trainer (``reference_code/lrrnet/train``:
``training_fusion_lrr.py``, ``net_lista.py``, ``utils.py``, ``args.py``; no licence) driven from outside,
beside ours (docs/control-arm.md, docs/lrcfuse.md#the-authors-trainer-beside-ours). LRCFuse's own code is
not public; LRRNet's is its base: the LLRR blocks and the multi-level VGG loss.

Nothing of theirs is copied: :func:`authors_lrrnet` imports their modules with the shims of
:data:`SHIMS` and nothing else, and :func:`authors_lrrnet_run` calls their ``main()`` itself, so their
loader, loss, optimiser and loop run as published.

- :func:`authors_lrrnet`: their modules for the length of a block;
- :func:`authors_lrrnet_run`: their ``main()`` on a folder of pairs in their layout, from given
  weights, with a given loss network behind their ``Vgg16``; returns their final weights and the loss
  lines their loop prints;
- :func:`grey_crops`: the pairs both arms read: 8-bit grey centre crops, so that their OpenCV reader
  and ours see the same bytes;
- :func:`their_layout`: a folder of pairs as their loader expects it (``lwir/``, ``visible/``);
- :func:`twin_run`: LRRNet retrained by their ``main()`` and by our trainer on the same patches (level 2);
- :data:`OPTIMISER`: their Adam's settings, the one thing their loop does not read from ``args``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
import types
from pathlib import Path

import torch
import torch.nn as nn

from fusionlib.control import Shim, authors_code, reference_root, tensor_digest

__all__ = ["SHIMS", "OPTIMISER", "authors_lrrnet", "their_rate", "grey_crops", "their_layout", "authors_lrrnet_run", "parse_losses",
           "twin_run"]

# training_fusion_lrr.py, train(): `Adam(model.parameters(), args.lr, weight_decay=0.9)`; lr from args.py (1e-5)
OPTIMISER = {"name": "adam", "weight_decay": 0.9, "where": "training_fusion_lrr.py, train(), line 75"}

SHIMS = [
    Shim("visdom.Visdom", "stand-in", "their loop plots to a Visdom server; the stand-in accepts and keeps the calls "
         "(the loss values are read from the lines their loop prints)"),
    Shim("seaborn", "name", "imported by their utils.py and never used; not installed here"),
    Shim("LRR_NET.cuda (after each epoch's checkpoint)", "cpu",
         "no GPU here: their loop moves the model back to CUDA after every save whatever args.cuda says; on the CPU "
         "that call is the identity"),
    Shim("Vgg16 / utils.init_vgg16 (`model/vgg/vgg16.pth`)", "stand-in",
         "the ImageNet VGG-16 cannot be had offline: their `Vgg16()` returns the loss network our arm uses (four "
         "taps, fed what their loop feeds: 0–255 grey) and init_vgg16 leaves it as it is"),
    Shim("args (args.py: path_ir, n, epochs, batch_size, Height, Width, cuda, resume_model, save paths)", "config",
         "their options as a user would set them: a folder in their layout (lwir/, visible/), the filters per part "
         "of the shared initial weights, the run's epochs, batch and image size, cuda = 0, resume_model = the "
         "shared initial weights, save paths in a temporary folder (removed after the run)"),
    Shim("os.environ['CUDA_VISIBLE_DEVICES'] (set at import)", "cpu",
         "put back after the block"),
]


class _Visdom:
    """Accepts their ``viz.line`` calls and keeps them."""

    def __init__(self, *args, **kwargs):
        self.calls = []

    def line(self, *args, **kwargs):
        self.calls.append((args, kwargs))


@contextlib.contextmanager
def authors_lrrnet():
    """Their ``training_fusion_lrr``, ``net_lista``, ``utils`` and ``args`` modules, imported with :data:`SHIMS`
    for the length of the block. Yields a namespace of them plus ``root`` (the folder).

    Derived in ``notebooks/13_lrrnet_control_arm.ipynb`` §1.
    """
    root = reference_root("lrrnet") / "train"
    visdom, seaborn = types.ModuleType("visdom"), types.ModuleType("seaborn")
    visdom.Visdom = _Visdom
    saved_env = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        with authors_code(root, {"visdom": visdom, "seaborn": seaborn}):
            import importlib
            mods = {name: importlib.import_module(name) for name in ("training_fusion_lrr", "net_lista", "utils", "args")}
            mods["net_lista"].LRR_NET.cuda = lambda self, *args, **kwargs: self
            yield types.SimpleNamespace(root=root, **mods)
    finally:
        if saved_env is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved_env


def their_rate() -> float:
    """Their Adam's learning rate, ``args.Args.lr`` of their ``args.py`` (1e-5).

    Derived in ``notebooks/13_lrrnet_control_arm.ipynb`` §2.
    """
    with authors_lrrnet() as a:
        return float(a.args.Args.lr)


def grey_crops(samples, size: int, folder: str | Path) -> list[tuple[Path, Path]]:
    """Each sample's centre ``size``² crop, IR and visible as 8-bit single-channel PNGs under
    ``folder/ir`` and ``folder/vi`` (the visible image through our BT.601 grey, :func:`fusionlib.io.read_image`
    mode ``L``): files that their ``cv2.imread(..., IMREAD_GRAYSCALE)`` and ``cv2.resize`` to ``size``² and
    our :class:`fusionlib.data.patches.PatchDataset` read identically. Returns the ``(ir, vi)`` paths.

    Derived in ``notebooks/13_lrrnet_control_arm.ipynb`` §2.
    """
    from fusionlib.io import read_image, write_image
    folder, pairs = Path(folder), []
    for k, s in enumerate(samples):
        ir, vi = read_image(s.paths["ir"], "L"), read_image(s.paths["vi"], "L")
        h, w = ir.shape
        if min(h, w) < size:
            raise ValueError(f"{s.name} is {h}×{w}: smaller than the {size}² crop")
        top, left = (h - size) // 2, (w - size) // 2
        paths = (folder / "ir" / f"{k:05d}.png", folder / "vi" / f"{k:05d}.png")
        for path, image in zip(paths, (ir, vi)):
            write_image(path, image[top:top + size, left:left + size].copy())
        pairs.append(paths)
    return pairs


def their_layout(pairs: list[tuple[str | Path, str | Path]], folder: str | Path) -> Path:
    """``folder/lwir/<k>.png`` and ``folder/visible/<k>.png`` for each ``(ir, vis)`` pair (links, or copies
    where links cannot be made); returns ``folder/lwir``, their ``args.path_ir``. Their loader reads the
    visible image at the IR path with ``lwir`` replaced by ``visible``.

    Derived in ``notebooks/13_lrrnet_control_arm.ipynb`` §2.
    """
    folder = Path(folder)
    for sub in ("lwir", "visible"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for k, (ir, vis) in enumerate(pairs):
        for src, sub in ((ir, "lwir"), (vis, "visible")):
            dst = folder / sub / f"{k:05d}{Path(src).suffix}"
            try:
                dst.symlink_to(Path(src).resolve())
            except OSError:
                shutil.copyfile(src, dst)
    return folder / "lwir"


_LINE = re.compile(r"pixel vi loss: (?P<pixel>\S+)\s+fea vi loss: (?P<shallow>\S+)\s+fea ir loss: (?P<middle>\S+)"
                   r"\s+gram ir loss: (?P<deep>\S+)\s+total loss: (?P<loss>\S+)")


def parse_losses(printed: str) -> list[dict[str, float]]:
    """The loss lines their loop prints every 10 steps (each the mean of the 10 steps' weighted terms):
    ``[{"step", "pixel", "shallow", "middle", "deep", "loss"}]`` in our term names.

    Derived in ``notebooks/13_lrrnet_control_arm.ipynb`` §2.
    """
    rows = []
    for k, m in enumerate(_LINE.finditer(printed), 1):
        rows.append({"step": 10 * k, **{name: float(v) for name, v in m.groupdict().items()}})
    return rows


def authors_lrrnet_run(path_ir: str | Path, initial: dict[str, torch.Tensor], vgg: nn.Module, *, epochs: int,
                       batch_size: int, size: int, num_block: int = 4) -> dict:
    """Their ``main()`` on the pairs under ``path_ir`` (:func:`their_layout`) from the weights ``initial``
    (our :class:`fusionlib.common.lrrnet.LRRNet` state dict: the same keys), with ``vgg`` behind their
    ``Vgg16``: ``epochs`` × (pairs // ``batch_size``) steps on images resized to ``size``². Their
    ``main()`` chooses the loss weights (w_ir 3, λ2 1.5, λ3 2000) and ``num_block`` (4); ``num_block`` here
    only checks that ``initial`` has that many blocks. The filters per part (their ``args.n``) are read
    from ``initial``.

    Returns ``{"final": their final weights, "losses": :func:`parse_losses` of what they printed,
    "printed": the text}``.

    Derived in ``notebooks/13_lrrnet_control_arm.ipynb`` §2.
    """
    blocks = {k.split(".")[1] for k in initial if k.startswith("get_ls1.lrrblock")}
    if len(blocks) != num_block:
        raise ValueError(f"the initial weights have {len(blocks)} LLRR blocks; their main() trains {num_block}")
    n = initial["get_ls1.lamj"].shape[1] // 2  # filters per part: their args.n
    with authors_lrrnet() as a, tempfile.TemporaryDirectory() as work:
        work = Path(work)
        torch.save(initial, work / "initial.model")
        args = a.args.Args
        saved = dict(vars(args))
        settings = {"path_ir": str(path_ir), "n": n, "epochs": epochs, "batch_size": batch_size, "Height": size, "Width": size,
                    "cuda": 0, "resume_model": str(work / "initial.model"), "save_fusion_model": str(work / "model"),
                    "save_loss_dir": str(work / "model" / "loss")}
        train_module = a.training_fusion_lrr
        saved_vgg, saved_init = train_module.Vgg16, a.utils.init_vgg16
        try:
            for k, v in settings.items():
                setattr(args, k, v)
            train_module.Vgg16 = lambda: vgg
            a.utils.init_vgg16 = lambda net, path: None
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                train_module.main()
        finally:
            for k in settings:
                if k in saved:
                    setattr(args, k, saved[k])
                else:
                    delattr(args, k)
            train_module.Vgg16, a.utils.init_vgg16 = saved_vgg, saved_init
        final = next((work / "model").glob("final_lrr_net_*.model"))
        state = torch.load(final, map_location="cpu", weights_only=True)
    return {"final": state, "losses": parse_losses(printed.getvalue()), "printed": printed.getvalue()}


def twin_run(patches, vgg: nn.Module, initial: dict[str, torch.Tensor], *, steps: int, batch: int, seed: int = 0,
             vgg_label: str = "", run_root: str | Path | None = None, device: str = "cpu") -> dict:
    """The twin run (level 2): LRRNet retrained by their ``main()`` (:func:`authors_lrrnet_run`) and by our
    trainer with their optimiser (:data:`OPTIMISER`) and loss weights, from the same ``initial`` weights,
    on the same ``steps × batch`` patches of ``patches`` (a :class:`fusionlib.data.patches.PatchDataset`,
    written as grey PNG files that both arms read; one epoch), with ``vgg`` behind their ``Vgg16``.
    Each shuffles with its own generator (theirs: Python's ``random``, seeded with ``seed``; ours: the
    trainer's).

    Runs are kept in ``run_root`` (default: a cache folder keyed by the patches, the start, the sizes and
    ``vgg_label``): ``ours/`` our resumable trainer, ``authors.pt`` their final weights and printed losses.
    Returns ``{"log": DataFrame (arm, step, pixel, shallow, middle, deep, loss: means over each 10 steps),
    "models": {"ours": LRRNet, "authors": LRRNet} (eval mode)}``.

    Derived in ``notebooks/13_lrrnet_control_arm.ipynb`` §3.
    """
    import json
    import random

    import pandas as pd

    from fusionlib.common.lrrnet import LRRNet
    from fusionlib.data.patches import PatchDataset
    from fusionlib.io import write_image
    from fusionlib.lrcfuse.loss import LRRNET_WEIGHTS
    from fusionlib.lrcfuse.train import train
    from fusionlib.train import TrainConfig, cached_run_dir

    count = steps * batch
    if len(patches) < count:
        raise ValueError(f"the twin run needs {count} patches ({steps} steps × batch {batch}); the dataset has {len(patches)}")
    n = initial["get_ls1.lamj"].shape[1] // 2
    run_root = Path(run_root or cached_run_dir(
        "lrcfuse/twin", 2, patches=[p.name for p in patches.samples], index=[list(i) for i in patches.index[:count]],
        size=patches.size, initial=tensor_digest(initial), steps=steps, batch=batch,
        seed=seed, vgg=vgg_label))
    files = run_root / "patches"
    if not (files / "done").is_file():
        for k in range(count):
            item = patches[k]
            for key, sub in (("ir", "ir"), ("vis", "vi")):
                write_image(files / sub / f"{k:05d}.png", item[key][0].round().clamp(0, 255).to(torch.uint8).numpy())
        (files / "done").write_text(str(count))
    config = TrainConfig(epochs=1, batch_size=batch, lr=their_rate(), weight_decay=OPTIMISER["weight_decay"], seed=seed,
                         log_every=10)
    ours, log = train(PatchDataset(files, patches.size, patches.size), config, run_root / "ours", vgg,
                      loss_weights=LRRNET_WEIGHTS, model_kwargs={"n": n}, model_cls=LRRNet, initial=initial, device=device)
    saved = run_root / "authors.pt"
    if not saved.is_file():
        pairs = [(files / "ir" / f"{k:05d}.png", files / "vi" / f"{k:05d}.png") for k in range(count)]
        with tempfile.TemporaryDirectory() as work:
            random.seed(seed)
            theirs = authors_lrrnet_run(their_layout(pairs, work), initial, vgg, epochs=1, batch_size=batch, size=patches.size)
        torch.save({"final": theirs["final"], "losses": json.dumps(theirs["losses"])}, run_root / ".authors.tmp")
        (run_root / ".authors.tmp").rename(saved)
    theirs = torch.load(saved, map_location="cpu", weights_only=True)
    authors = LRRNet(n=n)
    authors.load_state_dict(theirs["final"])
    columns = ["arm", "step", "pixel", "shallow", "middle", "deep", "loss"]
    logs = pd.concat([pd.DataFrame(log).assign(arm="ours").reindex(columns=columns),
                      pd.DataFrame(json.loads(theirs["losses"])).assign(arm="authors").reindex(columns=columns)], ignore_index=True)
    return {"log": logs, "models": {"ours": ours.eval(), "authors": authors.eval()}}

