"""LDFusion's language-driven loss pieces (fusionlib.ldfusion.clip) against their formulas,
on hand-made embeddings; the patch sampler's shared parameters; entropy of known histograms; the
missing-weights error."""

import math

import pytest
import torch

from fusionlib.ldfusion import clip as cd


def unit(*v):
    return torch.nn.functional.normalize(torch.tensor([v], dtype=torch.float32), dim=-1)


def test_directional_loss_equals_its_formula():
    e_vis, e_ir = unit(1, 0, 0), unit(0, 1, 0)
    dt_vis, dt_ir = unit(0, 0, 1), unit(0, 0, 1)
    # moving from each source straight along its text direction costs nothing
    assert cd.directional_loss(e_vis + unit(0, 0, 1), e_vis, e_vis, dt_vis, dt_vis).item() == pytest.approx(0, abs=1e-6)
    e = unit(1, 1, 1)
    expected = 0.5 * (1 - (cd._n(e - e_vis) * dt_vis).sum()) + 0.5 * (1 - (cd._n(e - e_ir) * dt_ir).sum())
    assert cd.directional_loss(e, e_vis, e_ir, dt_vis, dt_ir).item() == pytest.approx(float(expected))
    # the opposite move costs the maximum, 2
    assert cd.directional_loss(e_vis - unit(0, 0, 1), e_vis, e_vis, dt_vis, dt_vis).item() == pytest.approx(2, abs=1e-6)


def test_regulariser_pulls_towards_the_sources():
    e_vis, e_ir = unit(1, 0), unit(0, 1)
    between = cd.direction_regulariser(unit(1, 1), e_vis, e_ir)
    away = cd.direction_regulariser(unit(-1, -1), e_vis, e_ir)
    assert between.item() == pytest.approx(2 - math.sqrt(2), abs=1e-6) and away.item() == pytest.approx(2 + math.sqrt(2), abs=1e-6)
    e = unit(-1, 0.2).requires_grad_(True)  # one gradient step on Φ moves e_f closer to both sources
    cd.direction_regulariser(e, e_vis, e_ir).sum().backward()
    stepped = cd._n(e.detach() - 0.1 * e.grad)
    assert (stepped @ e_vis.T).item() > (cd._n(e.detach()) @ e_vis.T).item()


def test_entropy_of_known_histograms():
    flat = torch.full((1, 1, 16, 16), 0.5)
    ramp = (torch.arange(256, dtype=torch.float32) / 256).reshape(1, 1, 16, 16)   # every bin once
    two = torch.cat([torch.zeros(1, 1, 8, 16), torch.ones(1, 1, 8, 16)], 2)
    assert cd.entropy(torch.cat([flat, ramp, two])).tolist() == pytest.approx([0.0, 8.0, 1.0])
    mask = cd.patch_mask(torch.cat([ramp, ramp, flat]), torch.cat([ramp, flat, ramp]))
    assert mask.tolist() == [1.0, 0.0, 0.0]  # both must exceed 6 bits


def test_patches_share_their_parameters_across_modalities():
    g = torch.Generator().manual_seed(0)
    vis = torch.rand(2, 1, 64, 80, generator=g)
    patches = cd.sample_patches([vis, vis.clone(), 1 - vis], rounds=3, size=32, generator=torch.Generator().manual_seed(1))
    assert [tuple(p.shape) for p in patches] == [(6, 1, 32, 32)] * 3
    assert torch.equal(patches[0], patches[1])  # same crop and affine for every input …
    inside = patches[0] != 0                    # … (away from the affine's zero fill)
    assert torch.allclose(patches[2][inside], 1 - patches[0][inside], atol=1e-5)
    again = cd.sample_patches([vis], rounds=3, size=32, generator=torch.Generator().manual_seed(1))[0]
    assert torch.equal(again, patches[0])
    with pytest.raises(ValueError, match="aligned"):
        cd.sample_patches([vis, vis[:1]], rounds=1)


def test_gradients_reach_the_fused_image():
    embed = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 8))  # a stand-in image tower
    g = torch.Generator().manual_seed(0)
    vis, ir = torch.rand(2, 1, 40, 40, generator=g), torch.rand(2, 1, 40, 40, generator=g)
    fused = ((vis + ir) / 2).requires_grad_(True)
    e = {k: embed(cd.clip_preprocess(x, 32)) for k, x in (("vis", vis), ("ir", ir), ("f", fused))}
    dt = cd._n(torch.randn(1, 8, generator=g))
    loss = cd.directional_loss(e["f"], e["vis"], e["ir"], dt, dt).mean() + cd.direction_regulariser(e["f"], e["vis"], e["ir"]).mean()
    loss.backward()
    assert fused.grad is not None and fused.grad.abs().sum() > 0


def test_missing_clip_weights_are_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        cd.load_clip("ViT-B-32", tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):  # a typo never becomes a random model
        cd.load_clip("ViT-B-32", tmp_path / "missing.pt", allow_random=True)
    with pytest.raises(ValueError, match="unknown CLIP model 'ViT-B-23'.*close: ViT-B-32"):
        cd.load_clip("ViT-B-23", "openai", allow_random=True)
    monkeypatch.setattr(cd, "_cached_checkpoint", lambda name, tag: None)  # an empty cache: fail at once, no network
    with pytest.raises(FileNotFoundError, match="not available locally"):
        cd.load_clip("ViT-B-32", "openai")


def test_random_init_only_when_asked_and_labelled():
    with pytest.raises(FileNotFoundError, match="allow_random=True"):
        cd.load_clip("ViT-B-32", None)
    model, tokenizer, pretrained = cd.load_clip("ViT-B-32", None, allow_random=True)
    assert pretrained is False and not model.training and not any(p.requires_grad for p in model.parameters())
    dt_vis, dt_ir = cd.text_directions(model, tokenizer)
    assert dt_vis.shape == (1, 512) and torch.allclose(dt_vis.norm(dim=-1), torch.ones(1))


def test_a_failed_download_is_said_even_when_random_weights_are_allowed(monkeypatch):
    monkeypatch.setattr(cd, "_cached_checkpoint", lambda name, tag: None)

    def unreachable(url):
        raise ConnectionError(f"{url}: no route to host")
    monkeypatch.setattr(cd, "require_host", unreachable)
    with pytest.warns(UserWarning, match=r"download=True failed \(.*no route to host\).*random weights.*not a reproduction"):
        _, _, pretrained = cd.load_clip("ViT-B-32", "openai", download=True, allow_random=True)
    assert pretrained is False
    with pytest.raises(FileNotFoundError, match=r"download=True failed \(.*no route to host"):
        cd.load_clip("ViT-B-32", "openai", download=True)


class TinyClip(torch.nn.Module):
    """A stand-in CLIP: a linear image tower and fixed text embeddings (no weights needed)."""
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.visual = torch.nn.Linear(3 * 224 * 224, 8)
        self.text = torch.randn(3, 8, generator=g)

    def encode_image(self, x):
        return self.visual(x.flatten(1))

    def encode_text(self, tokens):
        return self.text[tokens]
