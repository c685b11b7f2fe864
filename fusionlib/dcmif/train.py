"""Training and evaluation glue for DCMIF's three stages (notebooks 21 and 22).

- :class:`Variant` names one model of the paper's tables (codec, atom size, number of IV-DLBs, text
  prompt) and the faithful-to-paper/faithful-to-code switches; :func:`train_dcmif` trains its three
  stages in sequence with :class:`fusionlib.train.Trainer`:

  1. JSRL (or Table 3's convolutional codec) on IR–VIS crops (:func:`train_stage1`), then the frozen
     shared dictionary (:func:`shared_dictionary`);
  2. VGII: RIN + FiLM behind the frozen REN (:func:`train_stage2`);
  3. AFRI: the RFN behind the frozen VGII (:func:`train_stage3`).

- Each stage's run folder is keyed by everything that determines it (variant fields, schedule,
  crop, data), so a later notebook re-uses an earlier one's stage instead of retraining it, and a
  re-run resumes from ``last.pt``.
- Crops are truly random (the code re-seeds with 42 in every ``__getitem__``, so each image gets the
  same box every epoch; docs/dcmif.md#training) and flipped; the learning-rate milestones are stepped (the code
  builds a scheduler and never steps it; ``lr_milestones=()`` is the code's constant rate).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from tqdm.auto import tqdm

from fusionlib.checkpoints import key_mismatch
from fusionlib.data import PairedDataset
from fusionlib.data.synthetic import split_or_synthetic
from fusionlib.io import read_image, split_luma, to_tensor
from fusionlib.dcmif.loss import fusion_loss, inference_loss, jsrl_loss
from fusionlib.dcmif.model import DCMIF, JSRL, RFN, RIN, ConvCodec, DictionaryCodec, FiLM
from fusionlib.dcmif.text import TextPrior, make_text_prior
from fusionlib.io import atomic_write
from fusionlib.train import TrainConfig, Trainer, cached_run_dir, seed_everything

__all__ = ["Variant", "stage_config", "stage2_run_dir", "training_set", "split_batch", "ir_and_luma", "build_stage1", "build_codec",
           "code_scale", "train_stage1", "shared_dictionary", "train_stage2", "train_stage3", "train_dcmif", "CACHE_VERSION"]

CACHE_VERSION = 2  # bump when a change to the models or losses invalidates cached stage runs (2: hand-written DSB backward passes)


@dataclass(frozen=True)
class Variant:
    """One DCMIF model. Defaults: the paper's model, with the paper's maths where the code differs.

    codec: ``dictionary`` (JSRL) or ``conv`` (Table 3's encoder–decoder, Models I/III).
    kernel, n_iter: the atom size k (Table 4) and the number N of IV-DLBs (Table 5).
    prompt: ``complete`` / ``simplified`` / ``none`` (Table 6; ``none`` = no text prior, Models I/II).
    dsb: ``joint`` (Eq. 8) or ``sequential`` (code). otf_1d_bug: the code's 1-D FFT in the CSB.
    jsrl_loss: ``paper`` (Eq. 11) or ``code`` (last ℓ_D only).
    gate: Eq. 19's per-atom gate (paper) or the code's direct regression.
    afri_target: ``pseudo_ir`` (Eq. 20) or ``ir`` (the code trains AFRI towards the real IR).
    dictionary: which stage-1 dictionary to freeze: ``mean`` over the training pairs or the
        ``reference`` (first) pair; the code keeps sample 0 of its last batch (docs/dcmif.md#choices).
    dicnet_zero_init: DicNet starts as the identity (ours) or with PyTorch's default init (code).
    text_norm: the text feature as its encoder gives it (``none``) or standardised as BERT's last
        LayerNorm leaves the code's CLS vector (``layernorm``; docs/dcmif.md#why-stage-2-collapsed).
    codes: stages 2–3 on REN's codes as they are (``raw``: the paper and the code) or ``centred`` on an
        all-black image's code and scaled to unit spread (:class:`~fusionlib.dcmif.model.DictionaryCodec`,
        :func:`code_scale`; docs/dcmif.md#why-stage-2-collapsed).

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §3.
    """
    codec: Literal["dictionary", "conv"] = "dictionary"
    kernel: int = 5
    n_iter: int = 1
    prompt: Literal["complete", "simplified", "none"] = "complete"
    dsb: Literal["joint", "sequential"] = "joint"
    otf_1d_bug: bool = False
    jsrl_loss: Literal["paper", "code"] = "paper"
    gate: bool = True
    afri_target: Literal["pseudo_ir", "ir"] = "pseudo_ir"
    dictionary: Literal["mean", "reference"] = "mean"
    dicnet_zero_init: bool = True
    text_norm: Literal["none", "layernorm"] = "none"
    codes: Literal["raw", "centred"] = "raw"

    def stage1_fields(self) -> dict:
        keys = ("codec",) if self.codec == "conv" else ("codec", "kernel", "n_iter", "dsb", "otf_1d_bug", "jsrl_loss",
                                                         "dicnet_zero_init")
        return {k: getattr(self, k) for k in keys}


def training_set(dataset: str, crop: int, seed: int = 0) -> PairedDataset:
    """Random ``crop``×``crop`` crops (with flips) of a dataset's ``train`` split; synthetic scenes
    (``fusionlib.data.synthetic``) when the dataset is not under the data root.

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §3.
    """
    return PairedDataset(split_or_synthetic(dataset, seed=seed), crop=crop, flip=True, seed=seed)


def split_batch(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(IR, VIS Y) ``(B, 1, H, W)`` from a batch of IR + RGB (JPEG YCbCr, docs/dcmif.md#pipeline).

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §3.
    """
    return batch["ir"], split_luma(batch["vis"], "jpeg")[0]


def _run_dir(stage: str, **parts) -> Path:
    return cached_run_dir(f"dcmif/{stage}", CACHE_VERSION, **parts)


def stage_config(batch: int, epochs: int, steps: int, lr: float, milestones=(), *, seed: int = 0, device: str = "cpu",
                 log_every: int = 0, fraction: float = 1.0) -> TrainConfig:
    """One stage's schedule as notebooks 21 and 22 build it (``steps`` 0 = no step limit; bf16 autocast
    on CUDA), so that both notebooks, and a script that trains ahead of them, key the same cached run.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §3.
    """
    return TrainConfig(epochs=epochs, batch_size=batch, lr=lr, seed=seed, amp=device.startswith("cuda"),
                       max_steps=steps or None, lr_milestones=tuple(milestones), log_every=log_every).scaled(fraction)


def _config_dict(config: TrainConfig) -> dict:
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in ("num_workers",)}


def _fit(trainer: Trainer) -> list[dict]:
    """Train; the loss history is one row per ``log_every`` steps when the config sets it, else per epoch."""
    history = trainer.fit()
    return trainer.step_log if trainer.config.log_every else history


def build_stage1(variant: Variant) -> torch.nn.Module:
    """The untrained stage-1 network of ``variant``: JSRL with its atom size, IV-DLB count and switches, or
    Table 3's convolutional codec.

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §3.
    """
    if variant.codec == "conv":
        return ConvCodec()
    return JSRL(kernel=variant.kernel, n_iter=variant.n_iter, dsb=variant.dsb, otf_1d_bug=variant.otf_1d_bug,
                dicnet_zero_init=variant.dicnet_zero_init)


def train_stage1(variant: Variant, data: PairedDataset, config: TrainConfig, device: str = "cpu",
                 run_dir: str | Path | None = None, *,
                 initial: dict[str, torch.Tensor] | None = None) -> tuple[torch.nn.Module, list[dict], Path]:
    """Stage 1: JSRL (Alg. 1, loss Eq. 11) or the conv codec; returns (model in eval mode, history, run dir).
    ``initial``: starting weights (the stage-1 model's state dict) instead of the seeded initialisation;
    give a ``run_dir`` with it (the cached run folder does not know them).

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §3.
    """
    if initial is not None and run_dir is None:
        raise ValueError("train_stage1 with initial weights needs its own run_dir")
    run_dir = Path(run_dir or _run_dir("stage1", variant=variant.stage1_fields(), config=_config_dict(config),
                                       data=data.checksum(), crop=data.crop))
    seed_everything(config.seed)
    model = build_stage1(variant)
    if initial is not None:
        model.load_state_dict(initial)

    def step(net, batch):
        return jsrl_loss(net(*split_batch(batch)), variant.jsrl_loss)
    return model.eval(), _fit(Trainer(model, step, data, config, run_dir, device)), run_dir


@torch.no_grad()
def shared_dictionary(jsrl: JSRL, samples, how: Literal["mean", "reference"] = "mean", crop: int = 128,
                      device: str = "cpu") -> torch.Tensor:
    """The frozen "shared" D ``(C, k, k)`` for stages 2–3: the D that JSRL computes for the centre
    ``crop``×``crop`` of each training pair, averaged (``mean``) or of the first pair only
    (``reference``). The code keeps one arbitrary sample's D instead (docs/dcmif.md#choices).

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §4.
    """
    samples = samples[:1] if how == "reference" else samples
    if how not in ("mean", "reference"):
        raise ValueError(f"dictionary choice must be 'mean' or 'reference', got {how!r}")
    jsrl = jsrl.to(device).eval()
    total = None
    for s in tqdm(samples, desc="shared D", leave=False):
        ir, vis = ir_and_luma(s)
        h, w = ir.shape[-2:]
        top, left, c = max(0, (h - crop) // 2), max(0, (w - crop) // 2), min(crop, h, w)
        d = jsrl(ir[..., top:top + c, left:left + c].to(device), vis[..., top:top + c, left:left + c].to(device))["d"][0]
        total = d if total is None else total + d
    return (total / len(samples)).cpu()


@torch.no_grad()
def code_scale(jsrl: JSRL, d: torch.Tensor, samples, crop: int = 128, device: str = "cpu") -> float:
    """σ of :class:`~fusionlib.dcmif.model.DictionaryCodec`'s centred codes: the root mean square of
    ``REN(I) − REN(0)`` over the centre ``crop``×``crop`` of each training pair, IR and VIS pooled.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §3.
    """
    codec = DictionaryCodec(jsrl.to(device), d.to(device), 1.0)
    total, count = 0.0, 0
    for s in tqdm(samples, desc="code scale", leave=False):
        ir, vis = ir_and_luma(s)
        h, w = ir.shape[-2:]
        top, left, c = max(0, (h - crop) // 2), max(0, (w - crop) // 2), min(crop, h, w) // 8 * 8
        for image, modality in ((ir, "ir"), (vis, "vis")):
            code = codec.encode(image[..., top:top + c, left:left + c].to(device), modality)
            total, count = total + float(code.double().square().sum()), count + code.numel()
    return math.sqrt(total / count)


def build_codec(variant: Variant, stage1: torch.nn.Module, data: PairedDataset, device: str,
                run_dir: str | Path | None = None) -> torch.nn.Module:
    """The frozen representation of stages 2–3: the conv codec itself, or REN + TailNet with the
    shared dictionary chosen by ``variant.dictionary`` (:func:`shared_dictionary`) and, for
    ``variant.codes == "centred"``, the codes' σ (:func:`code_scale`), both stored in the stage-1
    ``run_dir`` when one is given so that each is computed once.

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §4.
    """
    if variant.codec == "conv":
        return stage1.requires_grad_(False).eval()

    def stored(name, compute):
        path = Path(run_dir) / name if run_dir else None
        if path is not None and path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
        value = compute()
        if path is not None:
            atomic_write(path, lambda f: torch.save(value, f))
        return value
    crop = data.crop[0]
    d = stored(f"shared_dictionary_{variant.dictionary}_{crop}.pt",
               lambda: shared_dictionary(stage1, data.samples, variant.dictionary, crop=crop, device=device))
    scale = None
    if variant.codes == "centred":
        scale = float(stored(f"code_scale_{variant.dictionary}_{crop}.pt",
                             lambda: torch.tensor(code_scale(stage1, d, data.samples, crop, device), dtype=torch.float64)))
    elif variant.codes != "raw":
        raise ValueError(f"codes must be 'raw' or 'centred', got {variant.codes!r}")
    return DictionaryCodec(stage1, d, scale)


def train_stage2(codec: torch.nn.Module, prior: TextPrior | None, data: PairedDataset, config: TrainConfig,
                 device: str = "cpu", run_dir: str | Path | None = None, *,
                 initial: dict[str, torch.Tensor] | None = None, coefficient_term: bool = True) -> tuple[DCMIF, list[dict]]:
    """Stage 2 (VGII): trains RIN (+ FiLM when there is a prior) with ℓ_inf (Eq. 15–18) behind the
    frozen codec (centred codes enter the coefficient term in atom units,
    :meth:`~fusionlib.dcmif.model.DictionaryCodec.in_atom_units`); returns the VGII-only :class:`DCMIF`
    (``rfn=None``) and the history. ``initial``: starting weights of RIN and FiLM (``rin.*``, ``film.*``;
    the control arm starts both arms from one set) instead of the seeded initialisation. ``coefficient_term``: see
    :func:`~fusionlib.dcmif.loss.inference_loss`.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §3.
    """
    seed_everything(config.seed)
    n = codec.n_atoms
    model = DCMIF(codec, RIN(n), FiLM(prior.dim, n) if prior is not None else None, None, prior)
    if initial is not None:
        _load_trainable(model, initial, ("rin.", "film."))

    def step(net, batch):
        ir, vis = split_batch(batch)
        out = net(vis, list(batch["name"]))
        with torch.no_grad():
            s_ir = codec.encode(ir, "ir")
        return inference_loss(out["pir"], ir, vis, units(out["s_pir"]), units(s_ir), coefficient_term=coefficient_term)
    units = codec.in_atom_units if isinstance(codec, DictionaryCodec) else (lambda s: s)
    return model.eval(), _fit(Trainer(model, step, data, config, run_dir, device))


def train_stage3(vgii: DCMIF, data: PairedDataset, config: TrainConfig, *, gate: bool = True,
                 afri_target: Literal["pseudo_ir", "ir"] = "pseudo_ir", device: str = "cpu",
                 run_dir: str | Path | None = None, initial: dict[str, torch.Tensor] | None = None) -> tuple[DCMIF, list[dict]]:
    """Stage 3 (AFRI): trains the RFN with ℓ_f (Eq. 20–21) behind the frozen VGII; returns the full
    :class:`DCMIF` and the history. ``initial``: starting weights of the RFN (``rfn.*``) instead of
    the seeded initialisation.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §3.
    """
    seed_everything(config.seed)
    vgii.rin.requires_grad_(False)
    if vgii.film is not None:
        vgii.film.requires_grad_(False)
    model = DCMIF(vgii.codec, vgii.rin, vgii.film, RFN(vgii.codec.n_atoms, gate=gate), vgii.prior)
    if initial is not None:
        _load_trainable(model, initial, ("rfn.",))

    def step(net, batch):
        ir, vis = split_batch(batch)
        out = net(vis, list(batch["name"]))
        return fusion_loss(out["fused"], out["pir"].detach() if afri_target == "pseudo_ir" else ir, vis)
    return model.eval(), _fit(Trainer(model, step, data, config, run_dir, device))


def _load_trainable(model: torch.nn.Module, state: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> None:
    """Load ``state`` into the modules under ``prefixes``: exactly their keys, or a one-line error."""
    expected = {k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}
    mismatch = key_mismatch(expected, {k: v for k, v in state.items() if k.startswith(prefixes)})
    if mismatch:
        raise ValueError(f"initial weights do not fit {'/'.join(p.rstrip('.') for p in prefixes)}: {mismatch}")
    model.load_state_dict({k: state[k] for k in expected}, strict=False)


def stage2_run_dir(variant: Variant, stage1_run: Path, data: PairedDataset, config: TrainConfig, text_prior: str = "template",
                   prior_path: str | Path = "") -> Path:
    """The cached folder of a variant's stage-2 run (keyed by the stage-1 run, the dictionary choice, the
    prompt and prior, the schedule and the data): where :func:`train_dcmif` trains it, and where another
    notebook's identical run (notebook 23's twin run) is found and re-used.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §3.
    """
    kind = "none" if variant.prompt == "none" else text_prior
    return _run_dir("vgii", config=_config_dict(config), stage1=Path(stage1_run).name, dictionary=variant.dictionary,
                    prompt=variant.prompt, prior=kind, **({"text_norm": variant.text_norm} if variant.text_norm != "none" else {}),
                    **({"codes": variant.codes} if variant.codes != "raw" else {}),
                    prior_path=str(prior_path), data=data.checksum(), crop=data.crop)


def train_dcmif(variant: Variant, data: PairedDataset, configs: dict[str, TrainConfig], *,
                stage1_data: PairedDataset | None = None, device: str = "cpu", text_prior: str = "template",
                prior_device: str = "cpu", **prior_kwargs) -> tuple[DCMIF, dict]:
    """All three stages of one variant; ``configs`` has keys ``jsrl``, ``vgii``, ``afri``. Stage 1
    uses ``stage1_data`` (the paper: MSRS for every dataset) or ``data``. ``text_prior`` and
    ``prior_kwargs`` go to :func:`fusionlib.dcmif.text.make_text_prior` (variants with
    ``prompt="none"`` get none). Returns the model (on ``device``, eval mode) and
    ``{"histories": …, "seconds": …, "runs": …}``.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §3.
    """
    stage1_data = stage1_data or data
    info = {"histories": {}, "seconds": {}, "runs": {}}
    t0 = time.perf_counter()
    stage1, info["histories"]["jsrl"], run1 = train_stage1(variant, stage1_data, configs["jsrl"], device)
    info["seconds"]["jsrl"], info["runs"]["jsrl"] = time.perf_counter() - t0, str(run1)
    codec = build_codec(variant, stage1, stage1_data, device, run1)
    kind = "none" if variant.prompt == "none" else text_prior
    prior = make_text_prior(kind, prompt="complete" if variant.prompt == "none" else variant.prompt,
                            device=prior_device, norm=variant.text_norm, **prior_kwargs)
    run2 = stage2_run_dir(variant, run1, data, configs["vgii"], text_prior, prior_kwargs.get("path", ""))
    t0 = time.perf_counter()
    vgii, info["histories"]["vgii"] = train_stage2(codec, prior, data, configs["vgii"], device, run2)
    info["seconds"]["vgii"], info["runs"]["vgii"] = time.perf_counter() - t0, str(run2)
    run3 = _run_dir("afri", vgii=run2.name, config=_config_dict(configs["afri"]), gate=variant.gate,
                    target=variant.afri_target, data=data.checksum(), crop=data.crop)
    t0 = time.perf_counter()
    model, info["histories"]["afri"] = train_stage3(vgii, data, configs["afri"], gate=variant.gate,
                                                    afri_target=variant.afri_target, device=device, run_dir=run3)
    info["seconds"]["afri"], info["runs"]["afri"] = time.perf_counter() - t0, str(run3)
    return model.to(device).eval(), info


def ir_and_luma(sample) -> tuple[torch.Tensor, torch.Tensor]:
    """A pair's IR ``(1, 1, H, W)`` and the luminance Y of its visible image (BT.601, as JPEG codes it),
    both in [0, 1]: what every DCMIF stage reads.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §4.
    """
    ir = to_tensor(read_image(sample.paths["ir"], "L"))
    vis = read_image(sample.paths[next(m for m in sample.paths if m.startswith("vi"))], "RGB")
    return ir, split_luma(to_tensor(vis), "jpeg")[0]
