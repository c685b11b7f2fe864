"""DCMIF's control arm: the authors' three training scripts (``reference_code/dcmif/train``: ``JSRL_train.py``,
``VGII_train.py``, ``AFRI_train.py``, ``utils.py``; no licence) driven from outside, beside ours
(docs/control-arm.md, docs/dcmif.md#the-authors-training-beside-ours).

Nothing of theirs is copied: :func:`authors_dcmif` imports their scripts and model code with the
shims of :data:`SHIMS` and nothing else; their losses, optimisers, models and data logic run as
published.

- :func:`authors_dcmif`: their modules on a CPU, with stand-ins for Qwen-VL and BERT that hand
  their ``TextPrompt`` a given text feature (:class:`TextStandIn`);
- :func:`to_authors` / :func:`from_authors`: our weights in their state-dict layout and back
  (:data:`fusionlib.dcmif.official.RENAMES`, proven on their model code);
- :func:`authors_vgii_run`: their ``VGII_train.main(args)`` itself, for the twin run;
- :func:`pir_quality`: what the twin run and the learning curve log: the pseudo-IR's std and its
  hot-spot correlation with the real IR on held-out pairs.
"""

from __future__ import annotations

import contextlib
import types
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from fusionlib.control import Shim, authors_code, reference_root, script_arguments, tensor_digest
from fusionlib.train import last_doubling  # noqa: F401  (notebooks 22 and 23 read it here, beside the curve)
from fusionlib.dcmif.official import our_key

__all__ = ["SHIMS", "TextStandIn", "authors_dcmif", "to_authors", "from_authors", "jsrl_from_authors", "authors_vgii_run",
           "pir_quality", "held_out", "stage2_learning_curve", "last_doubling", "twin_run", "CANDIDATES",
           "film_passthrough", "collapse_candidates"]

SHIMS = [
    Shim("torch.device('cuda:0'), torch.device('cuda:1') in their scripts and models", "cpu",
         "no GPU here: inside their modules `torch.device` of a CUDA name gives the CPU (their nets on cuda:0, "
         "Qwen-VL and BERT on cuda:1 all run on the CPU); nothing else of torch is touched"),
    Shim("transformers.AutoTokenizer / AutoModelForCausalLM (Qwen-VL-Chat, `LLM_model.chat`)", "stand-in",
         "Qwen-VL-Chat (≈ 19 GB) cannot be downloaded here: `chat` reads the two 8-bit JPEG files their "
         "TextPrompt writes (visible Y, pseudo-IR) and returns the critique our arm's critic writes for them "
         "(the offline template critic, fusionlib.dcmif.text.TemplateCritic)"),
    Shim("transformers.BertModel / BertTokenizer (`../LLM/bert_base_uncased`)", "stand-in",
         "bert-base-uncased cannot be had offline: its CLS vector is our arm's sentence embedding of the same "
         "critique (all-MiniLM-L6-v2, 384-d) zero-padded to BERT's 768, so their Linear(768, 64) FiLM computes "
         "our Linear(384, 64) on it exactly (the padded columns see 0 and get no gradient)"),
    Shim("torch.cholesky (JSRL's DSBlock)", "name",
         "removed from current torch; their `try/except RuntimeError: pass` would then skip every dictionary "
         "solve silently (D stays 0). torch.linalg.cholesky is the same factorisation"),
    Shim("TrainDataset_VGII.crop_size = (crop, crop)", "config",
         "hard-coded 128² in their loader's __init__; set to the run's crop after construction (their "
         "re-seeding with 42 in every __getitem__, the same crop box every epoch, is kept)"),
    Shim("model.scg: the stage-1 weights, n_iter = 1", "driver",
         "their VGII_train builds PIIG with a two-iteration REN and loads only dictionary.pth: the frozen REN "
         "stays random (docs/dcmif.md#training). Both arms start from the same stage-1 REN, as their AFRI and "
         "test scripts wire it (n_iter = 1, the depth JSRL trained)"),
    Shim("args (VGII_train.py's parser)", "config",
         "their command-line options as a user would give them: --epochs, --lr, --batch_size_train, paths to a "
         "folder in their layout (ir_day/, vis_day/: links to the same MSRS training pairs), --load_path holding "
         "our stage-1 dictionary.pth"),
    Shim("the loop's per-iteration checkpoint (utils.save_checkpoint, three torch.save per step)", "driver",
         "kept: they write into a temporary folder, removed after the run; a step budget below an epoch stops "
         "their loop through the progress bar it iterates (tqdm), which also records each logged step"),
]


class _TorchOnCPU(types.ModuleType):
    """``torch`` as their modules see it: everything is torch's, except that ``device('cuda…')`` is the CPU."""

    def __init__(self):
        super().__init__("torch")

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def device(spec, *args):
        if isinstance(spec, str) and spec.startswith("cuda"):
            return torch.device("cpu")
        return torch.device(spec, *args)


class TextStandIn:
    """What stands in for Qwen-VL-Chat and BERT inside their code: ``critic`` (``(vis, pir) -> texts``
    on ``(B, 1, H, W)`` tensors, or ``None`` for one fixed text) writes the critique of the two images
    their ``TextPrompt`` saves, and ``encode`` (``texts -> (B, d)``, d ≤ 768) gives the feature that
    their BERT's CLS vector would be, zero-padded to 768. ``texts`` records every critique written.

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §1.
    """

    def __init__(self, encode: Callable[[list[str]], torch.Tensor], critic=None):
        self.encode, self.critic, self.texts = encode, critic, []

    def _chat(self, tokenizer, query, history=None):
        from fusionlib.io import read_image, to_tensor
        vis, pir = (to_tensor(read_image(q["image"], "L")) for q in query if "image" in q)
        text = self.critic(vis, pir)[0] if self.critic is not None else "a fixed critique"
        self.texts.append(text)
        return text, history

    def module(self) -> types.ModuleType:
        """A ``transformers`` module with the four names their code uses."""
        stand_in = self
        registry: list[str] = []

        class LLMTokenizer:
            @classmethod
            def from_pretrained(cls, *args, **kwargs):
                return cls()

            @staticmethod
            def from_list_format(items):
                return list(items)

        class LLM(nn.Module):
            @classmethod
            def from_pretrained(cls, *args, **kwargs):
                return cls()

            def chat(self, tokenizer, query, history=None):
                return stand_in._chat(tokenizer, query, history)

        class BertTokenizer:
            @classmethod
            def from_pretrained(cls, *args, **kwargs):
                return cls()

            def __call__(self, texts, **kwargs):
                ids = []
                for t in texts:
                    registry.append(t)
                    ids.append(len(registry) - 1)
                ids = torch.tensor(ids)[:, None]
                return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

        class Bert(nn.Module):
            @classmethod
            def from_pretrained(cls, *args, **kwargs):
                return cls()

            def forward(self, input_ids, attention_mask=None):
                f = stand_in.encode([registry[int(i)] for i in input_ids[:, 0]])
                cls_vector = torch.nn.functional.pad(f, (0, 768 - f.shape[1]))
                return types.SimpleNamespace(last_hidden_state=cls_vector[:, None, :])

        mod = types.ModuleType("transformers")
        mod.AutoTokenizer, mod.AutoModelForCausalLM, mod.BertTokenizer, mod.BertModel = LLMTokenizer, LLM, BertTokenizer, Bert
        return mod


@contextlib.contextmanager
def authors_dcmif(text: TextStandIn | None = None):
    """Their scripts and model code, imported with :data:`SHIMS` for the length of the block. Yields a
    namespace: ``JSRL_train``, ``VGII_train``, ``AFRI_train``, ``utils`` (their losses), ``JSRL``,
    ``VGII``, ``AFRI`` (their model modules), ``llm`` and ``llm_tokenizer`` (what their scripts'
    ``from_pretrained`` calls return, to pass to their forward passes) and ``root`` (the folder). ``text`` defaults to one
    fixed critique whose feature is 0 (enough for code that never reaches FiLM).

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §1.
    """
    root = reference_root("dcmif")
    text = text or TextStandIn(lambda texts: torch.zeros(len(texts), 768))
    stubs = {"transformers": text.module()}
    saved_cholesky = getattr(torch, "cholesky", None)
    with authors_code(root, stubs), authors_code(root / "train", stubs):
        import importlib
        names = {"JSRL": "model.JSRL.model_64", "VGII": "model.VGII.model_64", "AFRI": "model.AFRI.model_64",
                 "utils": "utils", "JSRL_train": "JSRL_train", "VGII_train": "VGII_train", "AFRI_train": "AFRI_train"}
        mods = {k: importlib.import_module(v) for k, v in names.items()}
        cpu_torch = _TorchOnCPU()
        for m in mods.values():
            if getattr(m, "torch", None) is torch:
                m.torch = cpu_torch
        torch.cholesky = torch.linalg.cholesky
        try:
            tf = stubs["transformers"]
            yield types.SimpleNamespace(root=root, llm=tf.AutoModelForCausalLM(), llm_tokenizer=tf.AutoTokenizer(), **mods)
        finally:
            if saved_cholesky is None:
                del torch.cholesky
            else:
                torch.cholesky = saved_cholesky


def to_authors(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our DCMIF weights (``codec.jsrl.*``, ``rin.*``, ``film.*``, ``rfn.*``) in the layout of one of
    their state dicts (``theirs``: ``PIIG``'s or ``PIVIF``'s ``scg.*``, ``pig.*``, ``text_prompt.*``,
    ``scf.*``): each of their keys gets our tensor; a FiLM of fewer than 768 inputs fills the first
    columns and leaves theirs in the rest (they multiply the zero padding of :class:`TextStandIn`).
    Keys of theirs with no counterpart in ``ours`` (a REN deeper than ours, BERT) keep their values.

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §1.
    """
    out = {}
    for key, value in theirs.items():
        mine = our_key(key)
        if mine is None or mine not in ours:
            out[key] = value
            continue
        t = ours[mine].to(value.dtype)
        if key.startswith("text_prompt.") and key.endswith(".weight") and t.shape[1] < value.shape[1]:
            t = torch.cat([t, value[:, t.shape[1]:]], dim=1)
        if t.shape != value.shape:
            raise ValueError(f"{mine} {tuple(t.shape)} does not fit their {key} {tuple(value.shape)}")
        out[key] = t
    return out


def from_authors(theirs: dict[str, torch.Tensor], ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`to_authors` for the keys of ``ours`` that one of theirs maps to (FiLM
    cut back to our input width); every other key of ``ours`` keeps its value.

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §1.
    """
    out = dict(ours)
    for key, value in theirs.items():
        mine = our_key(key)
        if mine is None or mine not in ours:
            continue
        out[mine] = value[:, :ours[mine].shape[1]] if value.ndim == 2 and value.shape[1] > ours[mine].shape[1] else value
        out[mine] = out[mine].to(ours[mine].dtype)
    return out


def jsrl_from_authors(theirs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Their JSRL ``DCDicl`` state dict as our :class:`~fusionlib.dcmif.model.JSRL`'s (their REN keys
    are AFRI's ``scg.*`` without the prefix; ``D_body.*`` is DicNet).

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §1.
    """
    out = {}
    for key, value in theirs.items():
        mine = our_key(key if key.startswith("D_body.") else "scg." + key)
        if mine is None:
            raise ValueError(f"their JSRL key {key} has no counterpart in ours")
        out[mine.removeprefix("codec.jsrl.")] = value
    return out


@torch.no_grad()
def pir_quality(model, pairs: list[tuple[torch.Tensor, torch.Tensor]], *, per_image: bool = False):
    """The pseudo-IR of ``model`` (a VGII :class:`~fusionlib.dcmif.model.DCMIF`) on held-out ``(ir, vis Y)``
    pairs: its std (×255), hot-spot r with the real IR and PSNR (dB)
    (:func:`fusionlib.metrics.agreement.ir_agreement`; r = 0 for a constant); averaged over the pairs, or one
    row per pair with ``per_image``.

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §3.
    """
    from fusionlib.metrics.agreement import ir_agreement
    rows = []
    was = model.training
    model.eval()
    for i, (ir, y) in enumerate(pairs):
        pir = model(y)["pir"].clamp(0, 1)
        agree = ir_agreement(pir, ir)
        rows.append({"image": i, "pir std": 255 * float(pir.std()),
                     "hot-spot r": agree["hot-spot r"], "PSNR (dB)": agree["PSNR (dB)"]})
    model.train(was)
    if per_image:
        return rows
    return {k: sum(r[k] for r in rows) / len(rows) for k in ("pir std", "hot-spot r", "PSNR (dB)")}


def held_out(n: int = 6, crop: int = 128, dataset: str = "msrs") -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(ir, vis Y)`` of ``n`` evenly spaced test pairs of ``dataset``, centre ``crop``² (the twin run's
    and the learning curve's evaluation set; synthetic scenes when the data is absent).

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §2.
    """
    from fusionlib.data import find_pairs
    from fusionlib.data.synthetic import materialize
    from fusionlib.dcmif.inference import test_pairs
    from fusionlib.dcmif.train import ir_and_luma
    samples = test_pairs(dataset, n) or find_pairs(materialize(n=n, seed=0))[:n]
    out = []
    for s in samples:
        ir, y = ir_and_luma(s)
        h, w = ir.shape[-2:]
        c = min(crop, h, w) // 8 * 8
        top, left = (h - c) // 2, (w - c) // 2
        out.append((ir[..., top:top + c, left:left + c], y[..., top:top + c, left:left + c]))
    return out


class _Budget:
    """Their progress bar (``tqdm(trainloader, …)``) with a step budget shared by every epoch: it yields
    batches until ``steps`` have been taken, calls ``on_step(k)`` before each batch (k steps done) and
    once after the last, and keeps their ``set_postfix`` calls working."""

    def __init__(self, steps: int, on_step: Callable[[int], None]):
        self.steps, self.on_step, self.done = steps, on_step, 0

    def __call__(self, iterable, *args, **kwargs):
        budget = self

        class Bar:
            def __len__(self):
                return len(iterable)

            def __iter__(self):
                for item in iterable:
                    budget.on_step(budget.done)
                    if budget.done >= budget.steps:
                        return
                    budget.done += 1
                    yield item
                budget.on_step(budget.done)

            def set_postfix(self, *a, **k):
                pass
        return Bar()


def authors_vgii_run(codec, initial: dict[str, torch.Tensor], pairs: list, work: str | Path, *, crop: int, batch: int, steps: int, seed: int = 0,
                     log_every: int = 10, evaluate: Callable[[dict[str, torch.Tensor]], dict] | None = None,
                     eval_steps: tuple[int, ...] = (), text: TextStandIn | None = None) -> dict:
    """Their ``VGII_train.main(args)`` itself (level 2), with :data:`SHIMS`: ``pairs`` (``(vis, ir)``
    file paths) linked into ``work`` in their layout (``ir_day/``, ``vis_day/``), the frozen shared
    dictionary of ``codec`` (our :class:`~fusionlib.dcmif.model.DictionaryCodec`) saved as their
    ``dictionary.pth``, their REN loaded from its stage-1 weights and run at n_iter = 1, RIN and FiLM started from ``initial`` (ours, in
    our layout), ``crop``, ``batch`` and enough epochs for ``steps`` (a step budget stops their loop
    there); ``torch.manual_seed(seed)`` first, as a user seeding their run would.

    Returns ``{"log": rows of step, loss, l_int, l_reg, l_grad (mean of each ``log_every`` steps),
    "evals": {step: evaluate(our-layout weights)} at ``eval_steps``, "final": our-layout RIN + FiLM
    weights, "texts": critiques written}``.

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §3.
    """
    import math
    import os

    work = Path(work)
    for folder in ("ir_day", "vis_day", "weights", "out"):
        (work / folder).mkdir(parents=True, exist_ok=True)
    for vis, ir in pairs:
        for path, folder in ((ir, "ir_day"), (vis, "vis_day")):
            link = work / folder / Path(vis).name
            if not link.exists():
                os.symlink(Path(path).resolve(), link)
    d = codec.dictionary.detach().cpu()
    torch.save(d.reshape(1, *d.shape).clone(), work / "weights" / "dictionary.pth")
    text = text or TextStandIn(lambda texts: torch.zeros(len(texts), 768))
    rows, window, evals, state = [], [], {}, {}
    with authors_dcmif(text) as a:
        per_epoch = math.ceil(len(pairs) / batch)
        args = script_arguments(a.root / "train" / "VGII_train.py", [
            "--epochs", str(math.ceil(steps / per_epoch)), "--batch_size_train", str(batch), "--num_workers", "0",
            "--train_data_path", str(work), "--load_path", str(work / "weights"), "--save_weight_path", str(work / "out")])
        their_piig, their_dataset, their_loss = a.VGII_train.PIIG, a.VGII_train.TrainDataset_VGII, a.VGII_train.Total_Loss

        def build():
            model = their_piig()
            model.scg.n_iter = 1
            ours = {"codec.jsrl." + k: v for k, v in codec.jsrl.state_dict().items()} | initial
            model.load_state_dict(to_authors(ours, model.state_dict()))
            state["model"] = model
            return model

        class Dataset(their_dataset):
            def __init__(self, *args_, **kwargs):
                super().__init__(*args_, **kwargs)
                self.crop_size = (crop, crop)

        class Recorded(their_loss):
            def forward(self, *args_):
                total, region, grad, l1 = super().forward(*args_)
                window.append({k: float(v.detach()) for k, v in (("loss", total), ("l_int", l1), ("l_reg", region), ("l_grad", grad))})
                if len(window) == log_every:
                    rows.append({"step": len(rows) * log_every + log_every,
                                 **{k: sum(w[k] for w in window) / len(window) for k in window[0]}})
                    window.clear()
                return total, region, grad, l1

        def ours_now() -> dict[str, torch.Tensor]:
            return from_authors(state["model"].state_dict(), initial)

        def on_step(k):
            if evaluate is not None and k in eval_steps and k not in evals:
                evals[k] = evaluate(ours_now())

        a.VGII_train.PIIG, a.VGII_train.TrainDataset_VGII, a.VGII_train.Total_Loss = build, Dataset, Recorded
        a.VGII_train.tqdm = _Budget(steps, on_step)
        torch.manual_seed(seed)
        a.VGII_train.main(args)
        final = ours_now()
    return {"log": rows, "evals": evals, "final": final, "texts": list(text.texts)}


def stage2_learning_curve(codec, prior, data, config, run_dir: str | Path, held: list, stops, *, device: str = "cpu",
                          initial: dict[str, torch.Tensor] | None = None):
    """Our stage 2 (:func:`~fusionlib.dcmif.train.train_stage2`) trained in ``run_dir`` in segments that end at
    each of ``stops`` (and at ``config.max_steps``), its pseudo-IR scored on ``held`` after each
    (:func:`pir_quality`, per image; step 0 = the seeded start): :func:`fusionlib.train.learning_curve`, so the
    final model is the one an uninterrupted run of ``config`` trains in the same folder (level 3).

    Returns ``(model, log, rows)``: the VGII model after the last stop, its loss log and one row per step and
    held-out pair (``step``, ``image``, ``pir std``, ``hot-spot r``, ``PSNR (dB)``), kept in ``run_dir`` and read
    back; a run already past its first stop without them raises :class:`fusionlib.train.PastFirstStop`.

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §3.
    """
    import dataclasses

    from fusionlib.dcmif.model import DCMIF, RIN, FiLM
    from fusionlib.dcmif.train import train_stage2
    from fusionlib.train import learning_curve, seed_everything

    def start():
        seed_everything(config.seed)  # the weights train_stage2 starts from
        fresh = DCMIF(codec, RIN(codec.n_atoms), FiLM(prior.dim, codec.n_atoms) if prior is not None else None, None, prior)
        if initial is not None:
            fresh.load_state_dict(fresh.state_dict() | initial)
        return fresh.to(device)

    def train_to(step):
        return train_stage2(codec, prior, data, dataclasses.replace(config, max_steps=step), device, run_dir, initial=initial)

    key = tensor_digest(torch.stack([torch.cat([ir.flatten(), y.flatten()]) for ir, y in held]))
    return learning_curve(run_dir, config.max_steps, stops, start=start, train_to=train_to,
                          evaluate=lambda model: pir_quality(model, held, per_image=True), key=key)


def twin_run(codec, prior, data, *, steps: int, batch: int, lr: float, seed: int = 0, log_every: int = 10, epochs: int = 100,
             eval_steps: tuple[int, ...] = (), held: list | None = None, run_root: str | Path | None = None,
             ours_dir: str | Path | None = None, device: str = "cpu") -> dict:
    """The twin run of stage 2 (level 2): their ``VGII_train.main`` (:func:`authors_vgii_run`) and our
    :func:`~fusionlib.dcmif.train.train_stage2`, behind the same frozen stage-1 ``codec``, from the same
    seeded RIN and FiLM weights, on the same training pairs (``data``: a
    :class:`~fusionlib.data.PairedDataset`, whose crop both use), batch, steps, rate and seed; each
    samples its own crops (theirs: one fixed box per image, re-seeded with 42; ours: random crops and
    flips). Both see the same text prior: ``prior``'s critic and encoder stand behind their Qwen-VL and
    BERT (:class:`TextStandIn`). After each of ``eval_steps`` (and at ``steps``) both arms' pseudo-IR
    is scored on ``held`` (:func:`pir_quality`).

    Runs are kept in ``run_root`` (default: a cache folder keyed by the arguments): ``ours/`` is our
    trainer's (resumable), ``authors.pt`` their final weights in our layout with their log. ``ours_dir``:
    train our arm there instead, e.g. where notebook 22 keys the same stage-2 run
    (:func:`~fusionlib.dcmif.train.stage2_run_dir`), so that the main model re-uses it; a folder already
    past the first evaluation step is left alone and ``ours/`` is used. Returns
    ``{"log": DataFrame (arm, step, loss, l_int, l_reg, l_grad), "quality": DataFrame (arm, step, image, pir std,
    hot-spot r, PSNR; step 0 = the shared initial weights), "models": {arm: VGII DCMIF}, "texts": their critiques}``.

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §3.
    """
    import json
    import tempfile

    import pandas as pd

    from fusionlib.dcmif.model import DCMIF, RIN, FiLM
    from fusionlib.dcmif.train import stage_config
    from fusionlib.train import PastFirstStop, cached_run_dir, seed_everything
    held = held if held is not None else held_out()
    stops = sorted({*[k for k in eval_steps if 0 < k < steps], steps})
    run_root = Path(run_root or cached_run_dir("dcmif/twin", 3, dictionary=tensor_digest(codec.dictionary),
                                               jsrl=tensor_digest(codec.jsrl.state_dict()),
                                               data=data.checksum(), crop=data.crop, steps=steps, batch=batch, lr=lr, seed=seed,
                                               log_every=log_every, stops=stops, prior=repr(prior)))
    run_root.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    fresh = DCMIF(codec, RIN(codec.n_atoms), FiLM(prior.dim, codec.n_atoms), None, prior)
    initial = {k: v.clone() for k, v in fresh.state_dict().items() if k.startswith(("rin.", "film."))}

    def model_with(state):
        m = DCMIF(codec, RIN(codec.n_atoms), FiLM(prior.dim, codec.n_atoms), None, prior)
        m.load_state_dict(fresh.state_dict() | state)
        return m.to(device).eval()
    start = pir_quality(model_with(initial), held, per_image=True)
    quality = [{"arm": "authors", "step": 0, **row} for row in start]
    config = stage_config(batch, epochs, steps, lr, [], seed=seed, device=device, log_every=log_every)
    try:  # ours_dir: its curve, or a fresh run there; a run already past the first stop without one: our own folder
        ours, log, rows = stage2_learning_curve(codec, prior, data, config, Path(ours_dir or run_root / "ours"), held, stops,
                                                device=device, initial=initial)
    except PastFirstStop:
        ours, log, rows = stage2_learning_curve(codec, prior, data, config, run_root / "ours", held, stops, device=device, initial=initial)
    quality += [{"arm": "ours", **row} for row in rows]
    # theirs
    saved = run_root / "authors.pt"
    if not saved.is_file():
        pairs = [(s.paths[next(m for m in s.paths if m.startswith("vi"))], s.paths["ir"]) for s in data.samples]
        text = TextStandIn(prior.encoder.encode, lambda vis, pir: prior.critic.critique(vis, pir))
        with tempfile.TemporaryDirectory() as work:
            theirs = authors_vgii_run(codec, initial, pairs, work, crop=data.crop[0], batch=batch, steps=steps, seed=seed,
                                      log_every=log_every, evaluate=lambda state: pir_quality(model_with(state), held, per_image=True),
                                      eval_steps=tuple(stops), text=text)
        torch.save({"final": theirs["final"], "log": json.dumps(theirs["log"]), "evals": json.dumps(theirs["evals"]),
                    "texts": theirs["texts"]}, run_root / ".authors.tmp")
        (run_root / ".authors.tmp").rename(saved)
    theirs = torch.load(saved, map_location="cpu", weights_only=True)
    quality += [{"arm": "authors", "step": int(k), **row} for k, rows in json.loads(theirs["evals"]).items() for row in rows]
    columns = ["arm", "step", "loss", "l_int", "l_reg", "l_grad"]
    logs = pd.concat([pd.DataFrame(log).assign(arm="ours").reindex(columns=columns),
                      pd.DataFrame(json.loads(theirs["log"])).assign(arm="authors").reindex(columns=columns)], ignore_index=True)
    return {"log": logs, "quality": pd.DataFrame(quality).sort_values(["arm", "step", "image"], ignore_index=True),
            "models": {"ours": ours.eval(), "authors": model_with(theirs["final"])}, "texts": theirs["texts"]}


CANDIDATES = {
    "ours before the fix": {"what": "the recipe of the collapsed cpu model: MiniLM's unit-length embedding into FiLM, "
                                    "Adam 1e-4 (the code's), all four terms, the reference pair's dictionary"},
    "text feature as BERT's": {"text_norm": "layernorm",
                               "what": "the embedding standardised as BERT's last LayerNorm leaves the code's CLS vector"},
    "no text prior": {"prior": False, "what": "RIN on S̃_vis directly, no FiLM (Table 6's No Prompt)"},
    "paper's rate": {"lr": 1e-3, "what": "Adam 1e-3, the paper's stage-2 rate"},
    "paper's rate, clipped": {"lr": 1e-3, "grad_clip": 1.0, "what": "Adam 1e-3 with the gradient norm clipped to 1"},
    "no coefficient term": {"coefficient_term": False, "what": "ℓ_int without ‖S_pir − S_ir‖₁"},
    "mean dictionary": {"dictionary": "mean", "what": "the shared D averaged over the training pairs"},
}


def film_passthrough(model, pairs) -> float:
    """Mean over held-out images and atoms of std(FiLM output) / std(S̃_vis) over pixels: how much of the
    visible coefficients' spatial structure FiLM passes to RIN (1 = all, 0 = a constant per atom).

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §2.
    """
    ratios = []
    with torch.no_grad():
        for _, y in pairs:
            s = model.codec.encode(y, "vis")
            f, _ = model.prior(y, model.codec.decode(model.rin(s)), None)
            out = model.film(s, f.to(s))
            ratios.append(float((out.std((2, 3)) / s.std((2, 3)).clamp_min(1e-12)).mean()))
    return sum(ratios) / len(ratios)


def collapse_candidates(codecs: dict, data, held: list, *, steps: int, batch: int, lr: float = 1e-4, seed: int = 0,
                        log_every: int = 5, candidates: dict[str, dict] | None = None, run_root: str | Path | None = None,
                        device: str = "cpu") -> list[dict]:
    """One measured row per candidate cause of stage 2's collapse (issue 29): our stage 2
    (:func:`~fusionlib.dcmif.train.train_stage2`) for ``steps`` steps from the same seeded weights, changing
    one thing at a time against ``"ours before the fix"``. ``codecs``: the frozen stage-1 codec per
    dictionary choice (``"reference"``, and ``"mean"`` if a candidate asks for it); ``candidates``:
    name → ``{"text_norm", "prior" (False: none), "lr", "grad_clip", "coefficient_term", "dictionary", "what"}``
    (default :data:`CANDIDATES`).

    Each row: what changes, FiLM's pass-through of S̃_vis's spatial structure at the start and the end
    (:func:`film_passthrough`; — without FiLM), each loss term's share of the last logged window, the
    pseudo-IR's std (×255), hot-spot r and PSNR on ``held`` (:func:`pir_quality`), and seconds. Runs are
    kept in ``run_root`` (default: a cache folder keyed by the arguments), one per candidate.

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §2.
    """
    import dataclasses
    import time

    from fusionlib.dcmif.model import DCMIF, RIN, FiLM
    from fusionlib.dcmif.text import make_text_prior
    from fusionlib.dcmif.train import stage_config, train_stage2
    from fusionlib.train import cached_run_dir, run_summary, seed_everything
    chosen = candidates or CANDIDATES
    run_root = Path(run_root or cached_run_dir("dcmif/collapse", 2, codecs={k: tensor_digest(c.dictionary) for k, c in codecs.items()},
                                               data=data.checksum(), crop=data.crop, steps=steps, batch=batch, lr=lr, seed=seed,
                                               log_every=log_every))
    rows = []
    for name, change in chosen.items():
        codec = codecs[change.get("dictionary", "reference")]
        prior = make_text_prior("template", norm=change.get("text_norm", "none")) if change.get("prior", True) else None
        seed_everything(seed)
        fresh = DCMIF(codec, RIN(codec.n_atoms), FiLM(prior.dim, codec.n_atoms) if prior else None, None, prior).to(device)
        start = film_passthrough(fresh, held) if prior else float("nan")
        config = dataclasses.replace(stage_config(batch, 10 ** 6, steps, change.get("lr", lr), [], seed=seed, device=device,
                                                  log_every=max(1, min(log_every, steps))), grad_clip=change.get("grad_clip"))
        folder = run_root / name.replace(" ", "_").replace("'", "")
        t0 = time.perf_counter()
        model, log = train_stage2(codec, prior, data, config, device, folder, coefficient_term=change.get("coefficient_term", True))
        seconds = run_summary(folder)["wall_seconds"] if (folder / "last.pt").is_file() else time.perf_counter() - t0
        last = log[-1]
        terms = {t: last[t] for t in ("l_int", "l_reg", "l_grad")}
        rows.append({"candidate": name, "changes": change["what"], "FiLM pass-through at start": start,
                     "FiLM pass-through at end": film_passthrough(model, held) if prior else float("nan"),
                     **{f"share {t}": v / last["loss"] for t, v in terms.items()}, "loss at end": last["loss"],
                     **pir_quality(model, held), "steps": last["step"], "seconds": seconds})
    return rows
