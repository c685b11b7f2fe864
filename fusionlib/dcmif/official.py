"""The authors' DCMIF checkpoints in our modules (docs/dcmif.md#released-weights).

The authors' README promises two files: ``dictionary.pth``, the frozen shared dictionary
``(1, 64, 5, 5)``, and an AFRI checkpoint ``{"model_state_dict": …}`` whose keys are ``scg.*``
(their REN: HeadNets, CoeNets and HypNet), ``text_prompt.*`` (FiLM, plus BERT when saved with it),
``pig.*`` (RIN) and ``scf.*`` (RFN). Neither was online when this was written; the map is proven on
their model code with seeded random weights (``tests/dcmif/test_official.py``, float64).

- :data:`RENAMES`: their key → ours, ordered regular expressions; the first that matches wins and
  :data:`_INNER` then renames the blocks inside (their ``m_down1.0.res.0`` is our ``down1.0.0``).
- :func:`official_state_dict`: their state dicts → ours, strictly: every tensor of theirs lands on
  one of ours with its shape, and every one of ours is filled, except DicNet when no JSRL checkpoint
  is given (inference never runs it: the dictionary is frozen). BERT's tensors are the sentence
  encoder's, not the fusion network's, and are dropped (load BERT with
  :class:`fusionlib.dcmif.text.BertCLSEncoder`).
- :func:`official_variant`: the switches that make our model compute the code's function (1-D FFT
  of the atoms, direct S_f regression instead of Eq. 19's gate, sequential dictionary step).
- :func:`load_official`: files (or dicts) → a :class:`~fusionlib.dcmif.model.DCMIF` in eval mode.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from fusionlib.checkpoints import key_mismatch, rename_key
from fusionlib.dcmif.model import DCMIF
from fusionlib.dcmif.inference import build_model
from fusionlib.dcmif.train import Variant
from fusionlib.paths import weights_file

__all__ = ["OFFICIAL_AFRI", "OFFICIAL_DICTIONARY", "OFFICIAL_URL", "RENAMES", "official_variant",
           "official_state_dict", "load_official"]

OFFICIAL_AFRI = Path("dcmif") / "AFRI.pth"
OFFICIAL_DICTIONARY = Path("dcmif") / "dictionary.pth"
OFFICIAL_URL = "https://github.com/harukiv/DCMIF"
_HOW = f"the authors' README ({OFFICIAL_URL}) links the trained dictionary.pth and AFRI checkpoint"

RENAMES: tuple[tuple[str, str], ...] = (
    # REN (their SCGBlock; 1 = IR, 2 = VIS, as DCDicl(IR, VIS))
    (r"^scg\.head1\.head_x\.", "codec.jsrl.head.ir.body."),
    (r"^scg\.head2\.head_x\.", "codec.jsrl.head.vis.body."),
    (r"^scg\.SC_body1\.sub\.", "codec.jsrl.coenet.ir."),
    (r"^scg\.SC_body2\.sub\.", "codec.jsrl.coenet.vis."),
    (r"^scg\.hypa_list\.(?P<i>\d+)\.mlp\.", r"codec.jsrl.hypnet.\g<i>.body."),
    # FiLM (their TextPrompt without BERT)
    (r"^text_prompt\.gamma_fc\.", "film.gamma."),
    (r"^text_prompt\.beta_fc\.", "film.beta."),
    # RIN (their PIGBlock: a UNet of MPBs, then an attention head)
    (r"^pig\.decoder\.decoder\.encoder(?P<i>[12])\.", r"rin.enc\g<i>."),
    (r"^pig\.decoder\.decoder\.decoder(?P<i>[12])\.", r"rin.dec\g<i>."),
    (r"^pig\.decoder\.decoder\.body\.", "rin.bottom."),
    (r"^pig\.decoder\.decoder\.final\.", "rin.out."),
    (r"^pig\.decoder\.decoder\.", "rin."),  # down1, down2, up1, up2: same names
    (r"^pig\.attn1\.", "rin.head_attn."),
    (r"^pig\.attn2\.", "rin.head_channel."),
    (r"^pig\.conv\.", "rin.head."),
    # RFN (their SCFBlock)
    (r"^scf\.attn(?P<i>[12])\.", r"rfn.wsa\g<i>."),
    (r"^scf\.conv(?P<i>[12])\.", r"rfn.caf\g<i>."),
    # DicNet (their DUBlock in a JSRL checkpoint): three conv pairs → our body.0 … body.10
    (r"^D_body\.dub\.mlp\.(?P<j>[02])\.", r"codec.jsrl.dicnet.body.<\g<j>+0>."),
    (r"^D_body\.dub\.mlp2\.(?P<j>[02])\.", r"codec.jsrl.dicnet.body.<\g<j>+4>."),
    (r"^D_body\.dub\.mlp3\.(?P<j>[02])\.", r"codec.jsrl.dicnet.body.<\g<j>+8>."),
)
_INNER = (  # inside a renamed block
    (r"\.m_body\.res\.", ".body."), (r"\.m_(?P<b>down[12]|up[12])\.", r".\g<b>."), (r"\.m_tail\.", ".tail."),
    (r"\.res\.", "."),
    (r"\.attn_spatial\.", ".attn."), (r"\.attn_channel\.", ".channel."), (r"\.cat\.", ".mix."),
    (r"(?P<a>attn|head_attn)\.scale$", r"\g<a>.temperature"), (r"\.qkv1\.", ".qkv.0."), (r"\.qkv2\.", ".qkv.1."),
)
_DICNET = "codec.jsrl.dicnet."


def our_key(key: str) -> str | None:
    return rename_key(key, RENAMES, _INNER)


def official_variant(**changes) -> Variant:
    """The :class:`~fusionlib.dcmif.train.Variant` whose model computes the official code's function:
    the 1-D FFT of the atoms in the CSB (``otf_1d_bug``), CAF2 regressing S_f directly (``gate=False``)
    and the two dictionary solves in a row (``dsb="sequential"``; JSRL only). Our defaults (2-D FFT,
    Eq. 19's gate, Eq. 8's joint solve) change the outputs of their weights, and the gate changes the
    RFN's shapes. ``changes`` override fields (e.g. ``otf_1d_bug=False`` to run their weights with the
    correct transfer function).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §10.
    """
    return dataclasses.replace(Variant(otf_1d_bug=True, gate=False, dsb="sequential", jsrl_loss="code"), **changes)


def _state(checkpoint: dict, name: str) -> dict[str, torch.Tensor]:
    state = checkpoint.get("model_state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"not a DCMIF {name} checkpoint: expected a state dict or {{'model_state_dict': …}}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def official_state_dict(afri: dict, dictionary: torch.Tensor, jsrl: dict | None = None,
                        model: DCMIF | None = None) -> dict[str, torch.Tensor]:
    """Their AFRI state dict (+ ``dictionary.pth``, + optionally a JSRL ``DCDicl`` state dict for
    DicNet) → our :class:`DCMIF` keys. Raises a one-line ``ValueError`` naming missing, unexpected
    or mis-shaped keys.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §10.
    """
    model = model if model is not None else build_model(official_variant(), _Dim768())
    if not torch.is_tensor(dictionary) or dictionary.shape[-3:] != model.codec.dictionary.shape:
        got = tuple(dictionary.shape) if torch.is_tensor(dictionary) else type(dictionary).__name__
        raise ValueError(f"dictionary.pth must hold a (1, {model.codec.n_atoms}, k, k) tensor for this model, got {got}")
    ours: dict[str, torch.Tensor] = {"codec.dictionary": dictionary.reshape(model.codec.dictionary.shape)}
    unknown, doubled = [], []
    sources = [("AFRI", _state(afri, "AFRI"))]
    if jsrl is not None:  # only DicNet: the REN that AFRI runs is the AFRI checkpoint's own scg
        sources.append(("JSRL", {k: v for k, v in _state(jsrl, "JSRL").items() if k.startswith("D_body.")}))
    for name, state in sources:
        for key, tensor in state.items():
            if key.startswith("text_prompt.bert."):
                continue  # the sentence encoder (BertCLSEncoder loads it), not a fusion weight
            new = our_key(key)
            if new is None:
                unknown.append(f"{name}:{key}")
            elif new in ours:
                doubled.append(new)
            else:
                ours[new] = tensor
    expected = {k: v for k, v in model.state_dict().items() if jsrl is not None or not k.startswith(_DICNET)}
    mismatch = key_mismatch(expected, ours)
    problems = [mismatch] if mismatch else []
    problems += [f"unexpected {len(unknown)} ({', '.join(unknown[:3])})"] if unknown else []
    problems += [f"two tensors map to {doubled[0]}"] if doubled else []
    if problems:
        raise ValueError("the DCMIF checkpoints do not fit our model: " + "; ".join(problems))
    return ours


class _Dim768:
    """Stands in for a BERT-sized prior where only FiLM's input width matters (building the model)."""

    dim = 768


def load_official(afri: str | Path | dict | None = None, dictionary: str | Path | torch.Tensor | None = None,
                  jsrl: str | Path | dict | None = None, *, prior=None, map_location: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32, **changes) -> DCMIF:
    """The authors' AFRI checkpoint and ``dictionary.pth`` (files, or already loaded) in our
    :class:`DCMIF` built by :func:`official_variant` (``changes`` override its switches), eval mode.

    ``afri`` and ``dictionary`` default to ``<weights root>/dcmif/AFRI.pth`` and ``…/dictionary.pth``;
    ``jsrl`` (optional) fills DicNet, which inference does not run. ``prior`` is the text prior, with
    768-d features as their FiLM expects (BERT's CLS: ``make_text_prior(..., encoder="bert",
    bert_path=...)``); ``None`` builds the template critic + BERT from ``<weights root>/bert-base-uncased``.
    Files are read with ``weights_only=True``; the model is cast to ``dtype`` before loading.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §10.
    """
    def read(x, default, what):
        if x is None or isinstance(x, (str, Path)):
            return torch.load(weights_file(x, default, what, _HOW), map_location="cpu", weights_only=True)
        return x
    afri_state = read(afri, OFFICIAL_AFRI, "DCMIF AFRI checkpoint")
    d = read(dictionary, OFFICIAL_DICTIONARY, "DCMIF dictionary.pth")
    jsrl_state = None if jsrl is None else read(jsrl, None, "DCMIF JSRL checkpoint")
    if prior is None:
        from fusionlib.dcmif.text import make_text_prior
        from fusionlib.paths import weights_root
        prior = make_text_prior("template", encoder="bert", bert_path=weights_root() / "bert-base-uncased")
    if prior.dim != 768:
        raise ValueError(f"their FiLM takes 768-d text features (BERT's CLS); this prior gives {prior.dim}-d")
    model = build_model(official_variant(**changes), prior).to(dtype)
    state = official_state_dict(afri_state, d, jsrl_state, model)
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in state.items()}, strict=jsrl_state is not None)
    return model.to(map_location).eval()
