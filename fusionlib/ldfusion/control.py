"""LDFusion's control arm: the authors' trainer (``reference_code/ldfusion/train/src``, Apache-2.0) driven
from outside, beside ours (docs/control-arm.md, docs/ldfusion.md#the-authors-trainer-beside-ours).

Nothing of theirs is copied: :func:`authors_trainer` imports their ``trainer.py`` with the shims of
:data:`SHIMS` and nothing else; their loss functions, schedule, model and data logic run as published.

- :func:`authors_vgg`: our loss network behind their ``VGG`` class (torchvision's ``vgg19().features``
  layout, so their ``get_features`` reads the same taps);
- :func:`clip_module`: a ``clip`` package (``load``, ``tokenize``) that returns a given open_clip model;
- :func:`to_authors`: our :class:`~fusionlib.ldfusion.model.LDFusion` weights as their ``Encoder`` /
  ``Decoder`` state dicts (the inverse of :func:`fusionlib.ldfusion.official.official_state_dict`);
- :func:`authors_trainer`: their ``trainer`` module and a constructed ``Trainer`` on a data folder
  in their layout, with our weights, ready for their ``train()``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import types
from pathlib import Path

import torch
import torch.nn as nn

from fusionlib.common.perceptual import NormalisedVGG19
from fusionlib.control import Shim, authors_code, reference_root
from fusionlib.ldfusion.model import LDFusion
from fusionlib.ldfusion.official import our_key

__all__ = ["SHIMS", "CANDIDATES", "authors_vgg", "clip_module", "to_authors", "authors_trainer", "tiny_clip", "authors_run",
           "twin_run", "collapse_candidates"]

SHIMS = [
    Shim("clip (their `import clip`, `clip.load(\"ViT-B/32\")`, `clip.tokenize`)", "stand-in",
         "OpenAI's CLIP package and weights cannot be downloaded here: `load` returns the same open_clip model "
         "(random-init where the profile allows it) that our arm uses, `tokenize` open_clip's tokenizer"),
    Shim("vgg.models.vgg19(pretrained=True).features", "stand-in",
         "torchvision's ImageNet VGG-19 cannot be downloaded here: their VGG class gets our real normalised VGG-19 "
         "(fusionlib.ldfusion.control.authors_vgg) in torchvision's layout, fed their 0–1 input as that network "
         "would see it; conv4_2 is not in the weights we have, so its tap is 0 and their loss_4 is exactly 0"),
    Shim("GLOBAL_RANK = 1, MUL_GPU = False (module names)", "name",
         "their script assigns both under `if __name__ == '__main__'`; rank 1 (a non-zero DDP rank) also skips "
         "their progress-bar text, whose first warm-up iteration reads `s` before assigning it (UnboundLocalError), "
         "and their per-epoch save (we save their Enc/Dec from outside)"),
    Shim("./YOUR_DATA_DIR/vi, ./YOUR_DATA_DIR/ir", "data",
         "their TrainData lists this folder relative to the working directory: a temporary folder holds links to "
         "the same training pairs our arm reads (visible RGB, IR grey, same names)"),
    Shim("args.train_batch, args.num_workers, args.epochs, args.seed", "config",
         "their command-line options, set as a user would (`--train_batch 4 --num_workers 0 ...`): batch and length "
         "as our run, no worker processes on 2 cores"),
    Shim("trainer.train_dataloader = DataLoader(TrainData(..., im_h=crop, im_w=crop))", "driver",
         "their Trainer builds TrainData at its default 224² crop whatever --crop_height says; for a run at "
         "another crop the loader is rebuilt from their own TrainData and DataLoader arguments"),
    Shim("CPU", "cpu", "no GPU here: their code picks the CPU itself when torch.cuda.is_available() is False"),
]


class _Zero(nn.Module):
    """conv4_2's place: a zero map (the weights we have stop at conv3_1), so their loss_4 is MSE(0, max(0, 0)) = 0."""

    def forward(self, x):
        return torch.zeros_like(x)


def authors_vgg(stand_in: NormalisedVGG19) -> nn.Sequential:
    """``stand_in`` (the real normalised VGG-19) as torchvision's ``vgg19().features``: modules named
    ``'0'`` … ``'21'`` whose outputs at ``'5'``, ``'10'``, ``'21'`` are what their ``get_features``
    calls conv2_1, conv3_1, conv4_2, each followed by an in-place ReLU as in torchvision. Their input,
    0–1 grey replicated without normalisation, enters as the ``"unnormalised"`` convention describes.

    Derived in ``notebooks/42_ldfusion_control_arm.ipynb`` §1.
    """
    b = stand_in.body
    relu = lambda: nn.ReLU(inplace=True)  # noqa: E731 - torchvision's; it makes their taps post-ReLU
    layers = [nn.Sequential(stand_in.unnormalised, b[1], b[2]), relu(),
              nn.Sequential(b[4], b[5]), relu(), b[7],
              nn.Sequential(b[8], b[9]), relu(), nn.Sequential(b[11], b[12]), relu(), b[14],
              nn.Sequential(b[15], b[16]), relu()]
    layers += [nn.Identity() for _ in range(12, 21)] + [_Zero()]
    seq = nn.Sequential(*layers)
    seq.requires_grad_(False)
    return seq.eval()


def clip_module(model, tokenizer) -> types.ModuleType:
    """A stand-in ``clip`` package: ``load(name, ...) -> (model, None)`` and ``tokenize(texts)``.

    Derived in ``notebooks/42_ldfusion_control_arm.ipynb`` §1.
    """
    module = types.ModuleType("clip")
    module.load = lambda name, *args, **kwargs: (model, None)
    module.tokenize = tokenizer
    return module


def to_authors(model: LDFusion, encoder: nn.Module, decoder: nn.Module) -> tuple[dict, dict]:
    """Our weights as state dicts of their ``encoder`` and ``decoder`` (the modules give the keys), by the
    proven key map of :mod:`fusionlib.ldfusion.official`; every key of theirs must find one of ours.

    Derived in ``notebooks/42_ldfusion_control_arm.ipynb`` §1.
    """
    ours = model.state_dict()
    out = []
    for part, module in (("enc", encoder), ("dec", decoder)):
        state = {}
        for key in module.state_dict():
            name = our_key(f"{part}.{key}")
            if name is None or name not in ours:
                raise KeyError(f"their {part}.{key} has no counterpart in our LDFusion")
            state[key] = ours[name].clone()
        out.append(state)
    return out[0], out[1]


@contextlib.contextmanager
def authors_trainer(pairs: list[tuple[Path, Path]], workdir: str | Path, clip_model, tokenizer, stand_in: NormalisedVGG19,
                    *, batch: int, epochs: int = 1, seed: int = 0, crop: int = 224):
    """Their ``trainer`` module and a ``Trainer`` built as their ``__main__`` builds it, with :data:`SHIMS`:
    ``pairs`` (visible, IR) linked into ``<workdir>/YOUR_DATA_DIR``, ``clip_model`` behind ``clip.load``,
    ``stand_in`` behind their ``VGG``, their options ``--train_batch batch --num_workers 0 --epochs epochs
    --seed seed``. Yields ``(module, trainer)``; the working directory is ``workdir`` inside the block.

    Derived in ``notebooks/42_ldfusion_control_arm.ipynb`` §1.
    """
    root = reference_root("ldfusion") / "train" / "src"
    workdir = Path(workdir)
    data = workdir / "YOUR_DATA_DIR"
    shutil.rmtree(data, ignore_errors=True)
    for modality in ("vi", "ir"):
        (data / modality).mkdir(parents=True)
    for vis, ir in pairs:
        if vis.name != ir.name:
            raise ValueError(f"their loader pairs files by name: {vis.name} and {ir.name} differ")
        os.symlink(vis.resolve(), data / "vi" / vis.name)
        os.symlink(ir.resolve(), data / "ir" / ir.name)
    cwd = Path.cwd()
    with authors_code(root, stubs={"clip": clip_module(clip_model, tokenizer)}, argv=["trainer.py"]):
        os.chdir(workdir)
        try:
            import config
            import trainer as module
            import vgg
            config.args.train_batch, config.args.num_workers = batch, 0
            config.args.epochs, config.args.seed = epochs, seed
            vgg.models = types.SimpleNamespace(vgg19=lambda pretrained=True: types.SimpleNamespace(
                features=authors_vgg(stand_in)))
            module.GLOBAL_RANK, module.MUL_GPU, module.args = 1, False, config.args
            torch.manual_seed(seed)
            trainer = module.Trainer(config.args)
            if crop != 224:
                dataset = module.TrainData(trainer.prompt_feature.clone().cpu(), trainer.prompt_dir.clone().cpu(),
                                           im_h=crop, im_w=crop)
                trainer.train_dataloader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True,
                                                                       num_workers=0, drop_last=True)
            yield module, trainer
        finally:
            os.chdir(cwd)


def collapse_candidates(dataset: str, crop: int, batch_size: int, run_root: str | Path | None = None, *, steps: int = 100,
                        lr: float = 5e-4, seed: int = 0, candidates: dict[str, dict] | None = None,
                        device: str = "cpu") -> list[dict]:
    """One measured row per candidate cause of W/O LDL's collapse to black (issue 28): L_v alone,
    trained ``steps`` steps from the code's initialisation with warm-up and Adam at ``lr``, changing
    one thing at a time against ``"ours"``. ``candidates``: name → ``{"convention": "imagenet" |
    "unnormalised", "repeat": n, "batch_size": b}`` (default :data:`CANDIDATES`).

    Each row: the candidate, what it changes, L_v on one fixed batch of 8 training crops of the
    network's initial output, of a black image and of the visible Y (the objective's view of where
    training starts), the share of output pixels above 0 ("lit") at steps 10 and ``steps``, the
    warm-up length in steps and the seconds its training took. Runs are kept in ``run_root`` (default:
    a cache folder keyed by the arguments), one folder per candidate, and re-read when there.

    Derived in ``notebooks/42_ldfusion_control_arm.ipynb`` §2.
    """
    from fusionlib.common.perceptual import load_vgg19_normalised
    from fusionlib.io import split_luma
    from fusionlib.ldfusion.loss import CODE_WEIGHTS, LanguageDrivenLoss
    from fusionlib.ldfusion.train import train, training_set
    from fusionlib.train import TrainConfig, cached_run_dir, run_summary

    chosen = candidates or CANDIDATES
    run_root = Path(run_root or cached_run_dir("ldfusion/collapse", 1, dataset=dataset, crop=crop, batch=batch_size,
                                               steps=steps, lr=lr, seed=seed))
    rows = []
    for name, change in chosen.items():
        convention = change.get("convention", "imagenet")
        vgg = load_vgg19_normalised(("relu2_1", "relu3_1"), convention=convention).to(device)
        loss = LanguageDrivenLoss(None, None, vgg, CODE_WEIGHTS, language=False).to(device)
        data = training_set(dataset, crop, seed, repeat=change.get("repeat", 1))
        probe = next(iter(torch.utils.data.DataLoader(data, batch_size=8, shuffle=True,
                                                      generator=torch.Generator().manual_seed(seed))))
        ir, vis = probe["ir"].to(device), split_luma(probe["vis"], "opencv")[0].to(device)
        torch.manual_seed(seed)
        fresh = LDFusion().to(device).eval()
        with torch.no_grad():
            lv = {k: float(loss.feature_fidelity(v, vis, ir)) for k, v in
                  {"init": fresh(ir, vis), "black": torch.zeros_like(ir), "vis": vis}.items()}
        config = TrainConfig(epochs=10 ** 6, batch_size=change.get("batch_size", batch_size), lr=lr, seed=seed,
                             max_steps=steps, warmup_epochs=1, log_every=1)
        _, log = train(data, loss, config, run_root / name, device)
        lit = {r["step"]: r["lit"] for r in log}
        rows.append({"candidate": name, "changes": change.get("what", ""), "L_v init": lv["init"], "L_v black": lv["black"],
                     "L_v VIS": lv["vis"], "lit at 10": lit.get(10, float("nan")), f"lit at {steps}": lit.get(steps, float("nan")),
                     "warm-up steps": len(data) // config.batch_size,
                     "seconds": round(run_summary(run_root / name)["wall_seconds"], 1)})
    return rows


CANDIDATES = {
    "ours": {"what": "our cpu recipe: the stand-in VGG-19 on ImageNet-normalised input, warm-up over one pass of the pairs"},
    "authors' VGG input": {"convention": "unnormalised",
                           "what": "the loss network sees 0–1 input without ImageNet normalisation, as their vgg_loss feeds it"},
    "authors' warm-up length": {"repeat": 10, "what": "each pair listed 10 times per epoch, as their TrainData: the one-epoch "
                                                      "warm-up is 10× longer in steps"},
    "authors' batch": {"batch_size": 16, "what": "batch 16, the paper's and the code's"},
    "authors' input and warm-up": {"convention": "unnormalised", "repeat": 10,
                                   "what": "both of the authors' settings above together"},
}


def tiny_clip(seed: int = 0):
    """A one-layer random open_clip CLIP (16-d) and the ViT-B-32 tokenizer: what stands behind their
    ``clip.load`` when the language weights are 0 (their W/O LDL computes the CLIP terms and multiplies
    them by 0: any CLIP gives the same training, this one costs least) and in the level-1 tests.

    Derived in ``notebooks/42_ldfusion_control_arm.ipynb`` §3.
    """
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
    torch.manual_seed(seed)
    model = CLIP(16, CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=32, image_size=224),
                 CLIPTextCfg(layers=1, width=32, heads=2))
    return model.eval(), open_clip.get_tokenizer("ViT-B-32")


class _FirstSteps:
    """Their loader, cut after ``steps`` batches but reporting its full length (their warm-up divides by
    ``len(train_dataloader)``): stopping their run at a step, as killing it there would."""

    def __init__(self, loader, steps: int):
        self.loader, self.steps = loader, steps

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for k, batch in enumerate(self.loader):
            if k == self.steps:
                return
            yield batch


def authors_run(trainer, steps: int, log_every: int = 1) -> list[dict]:
    """Their ``train()`` for ``steps`` steps of epoch 1 (their W/O LDL when the language weights are 0),
    observed from outside: a forward hook on their decoder and a wrapper around their ``vgg_loss`` record,
    per step, L_v and the share of output pixels above 0. Returns rows ``step, l_v, lit, lr`` every
    ``log_every`` steps (means over the window), as our trainer's step log.

    Derived in ``notebooks/42_ldfusion_control_arm.ipynb`` §3.
    """
    if steps > len(trainer.train_dataloader):
        raise ValueError(f"their epoch has {len(trainer.train_dataloader)} steps; a run past epoch 1 is not observed here")
    seen, rows, window = {"step": 0}, [], []
    original = trainer.vgg_loss

    def vgg_loss(fu, vi, ir):
        value = original(fu, vi, ir)
        seen["step"] += 1
        window.append((float(value.detach()), float((fu.detach() > 0).float().mean())))
        if seen["step"] % log_every == 0:
            rows.append({"step": seen["step"], "l_v": sum(v for v, _ in window) / len(window),
                         "lit": sum(v for _, v in window) / len(window), "lr": trainer.optimizer_G.param_groups[0]["lr"]})
            window.clear()
        return value
    trainer.vgg_loss = vgg_loss
    trainer.train_dataloader = _FirstSteps(trainer.train_dataloader, steps)
    try:
        trainer.train()
    finally:
        trainer.vgg_loss = original
    return rows


def twin_run(dataset: str, crop: int, batch_size: int, steps: int, run_root: str | Path | None = None, *, seed: int = 0,
             lr: float = 5e-4, log_every: int = 10, snapshots: tuple[int, ...] = (), device: str = "cpu",
             arms: tuple[str, ...] = ("ours", "authors")) -> dict:
    """The twin run (control-arm level 2), W/O LDL: our trainer and the authors' ``train()`` from the same
    initial weights, on the same training pairs (``dataset``'s train split), crop, batch, number of steps
    and seed, each with its own sampling (theirs: their TrainData and DataLoader, random crop with
    reflection, random affine; ours: random crop with reflection, flips). Both use L_v alone on our real
    normalised VGG-19 fed as theirs feeds torchvision's (the ``"unnormalised"`` convention), Adam at ``lr``
    warmed up over one epoch of 10 listings per pair; theirs computes its CLIP terms on :func:`tiny_clip`
    and multiplies them by 0 (their weights set to 0).

    Runs are kept in ``run_root`` (default: a cache folder keyed by every argument; ``ours/``: our trainer's folder, resumable; ``authors/``: their final
    weights in our layout and their log), so a second call with the same arguments only reads them.
    ``snapshots``: also keep our weights after these steps (``ours/step_<k>.pt``: the learning curve).
    ``arms``: train only these now (two processes may train the two arms at once; the second call reads both).
    Returns ``{"ours": model, "authors": model, "log": DataFrame (step, arm, l_v, lit, lr), "snapshots":
    {step: path}}`` (``None`` when ``arms`` leaves one out).

    Derived in ``notebooks/42_ldfusion_control_arm.ipynb`` §3.
    """
    import json
    import random

    import numpy as np
    import pandas as pd

    from fusionlib.common.perceptual import load_vgg19_normalised
    from fusionlib.data import find_pairs
    from fusionlib.data.synthetic import split_or_synthetic
    from fusionlib.ldfusion.loss import CODE_WEIGHTS, LanguageDrivenLoss
    from fusionlib.ldfusion.official import official_state_dict
    from fusionlib.ldfusion.train import train, training_set
    from fusionlib.train import TrainConfig

    from fusionlib.train import cached_run_dir
    run_root = Path(run_root or cached_run_dir("ldfusion/twin", 1, dataset=dataset, crop=crop, batch=batch_size, steps=steps,
                                               seed=seed, lr=lr, log_every=log_every, snapshots=sorted(snapshots)))
    stand_in = load_vgg19_normalised(("relu2_1", "relu3_1"), convention="unnormalised")
    data = training_set(dataset, crop, seed, repeat=10)
    loss = LanguageDrivenLoss(None, None, stand_in, CODE_WEIGHTS, language=False)
    torch.manual_seed(seed)
    initial = LDFusion().state_dict()
    # ours, in segments ending at each snapshot: a resumed run continues exactly (its generators are saved)
    done, snaps = (None, []), {}
    for stop in sorted({*[s for s in snapshots if s < steps], steps}) if "ours" in arms else ():
        if stop < steps and (run_root / "ours" / f"step_{stop}.pt").is_file():
            snaps[stop] = run_root / "ours" / f"step_{stop}.pt"
            continue
        config = TrainConfig(epochs=10 ** 6, batch_size=batch_size, lr=lr, seed=seed, max_steps=stop, warmup_epochs=1,
                             log_every=log_every)
        model = LDFusion()
        model.load_state_dict(initial)
        ours, log = train(data, loss, config, run_root / "ours", device, model=model, allow_config_change=True)
        snaps[stop] = run_root / "ours" / f"step_{stop}.pt"
        if not snaps[stop].is_file():
            torch.save(ours.state_dict(), snaps[stop])
        done = (ours, log)
    ours, ours_log = done
    # theirs
    folder = run_root / "authors"
    final = folder / "final.pt"
    if "authors" not in arms:
        return {"ours": ours.eval(), "authors": None, "log": pd.DataFrame(ours_log), "snapshots": snaps}
    if not final.is_file():
        pairs = [(s.paths["vi"], s.paths["ir"]) for s in find_pairs(split_or_synthetic(dataset, seed=seed))]
        clip, tokenizer = tiny_clip(seed)
        folder.mkdir(parents=True, exist_ok=True)
        random.seed(seed)
        np.random.seed(seed)
        with authors_trainer(pairs, folder / "work", clip, tokenizer, stand_in, batch=batch_size, seed=seed,
                             crop=crop) as (_, trainer):
            trainer.sim_weight = trainer.prompt_weight_g = trainer.prompt_weight_p = 0  # their W/O LDL
            probe = LDFusion()
            probe.load_state_dict(initial)
            enc, dec = to_authors(probe, trainer.Enc, trainer.Dec)
            trainer.Enc.load_state_dict(enc)
            trainer.Dec.load_state_dict(dec)
            trainer.Enc.to(device), trainer.Dec.to(device)
            their_log = authors_run(trainer, steps, log_every)
            state = official_state_dict(trainer.Enc.state_dict(), trainer.Dec.state_dict())
        torch.save({"model": state, "log": their_log}, folder / ".final.tmp")
        (folder / ".final.tmp").rename(final)
        (folder / "log.json").write_text(json.dumps(their_log, indent=1) + "\n")
    if "ours" not in arms:
        return {"ours": None, "authors": None, "log": None, "snapshots": {}}
    saved = torch.load(final, map_location="cpu", weights_only=True)
    authors = LDFusion()
    authors.load_state_dict(saved["model"])
    columns = ["step", "arm", "l_v", "lit", "lr"]
    log = pd.concat([pd.DataFrame(rows).reindex(columns=columns).assign(arm=arm)
                     for arm, rows in (("ours", ours_log), ("authors", saved["log"]))], ignore_index=True)
    return {"ours": ours.eval(), "authors": authors.eval(), "log": log, "snapshots": snaps}
