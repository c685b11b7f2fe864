"""DCMIF's three-stage training glue (fusionlib.dcmif.train) on synthetic scenes: every
stage runs and trains what it should, stage runs are cached by content, VIS-only fusion works."""

from pathlib import Path

import pytest
import torch

from fusionlib.dcmif import train as P
from fusionlib.dcmif.complexity import complexity
from fusionlib.dcmif.inference import build_model, fuser, pseudo_ir_fuser
from fusionlib.dcmif.model import JSRL, DictionaryCodec
from fusionlib.train import TrainConfig


def test_three_stages_then_vis_only_fusion(isolated):
    data = P.training_set("msrs", 32)
    assert "synthetic" in str(data.folder) and data.crop == (32, 32)
    one = TrainConfig(epochs=1, batch_size=2, lr=1e-4, max_steps=1)
    configs = {"jsrl": one, "vgii": one, "afri": one}
    variant = P.Variant(prompt="none", kernel=3)
    model, info = P.train_dcmif(variant, data, configs)
    assert set(info["histories"]) == {"jsrl", "vgii", "afri"} and all(h[0]["step"] == 1 for h in info["histories"].values())
    assert model.codec.dictionary.shape == (64, 3, 3) and model.film is None and model.rfn.gate
    # stage 3 trained only the RFN: RIN and the codec are frozen
    assert not any(p.requires_grad for p in model.rin.parameters()) and all(p.requires_grad for p in model.rfn.parameters())
    fused = fuser(model)(torch.zeros(1, 1, 21, 35), torch.rand(1, 3, 21, 35))
    assert fused.shape == (1, 3, 21, 35) and 0 <= fused.min() and fused.max() <= 1
    assert pseudo_ir_fuser(model, lambda ir, vis: vis * 0 + ir)(None, torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)
    assert (Path(info["runs"]["jsrl"]) / "shared_dictionary_mean_32.pt").is_file()
    # build_model rebuilds the architecture a trained checkpoint loads into, strictly
    rebuilt = build_model(variant, None)
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)))["fused"],
                               model(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)))["fused"])  # computed once, stored with stage 1
    # the same variant again re-uses every stage's run (keyed by content)
    again, info2 = P.train_dcmif(variant, data, configs)
    assert info2["runs"] == info["runs"] and torch.equal(again.codec.dictionary, model.codec.dictionary)
    # a different stage-3 switch re-uses stages 1–2 only
    _, info3 = P.train_dcmif(P.Variant(prompt="none", kernel=3, gate=False), data, configs)
    assert info3["runs"]["vgii"] == info["runs"]["vgii"] and info3["runs"]["afri"] != info["runs"]["afri"]
    stats = complexity(model, (32, 32), repeats=1)
    assert stats["Param (M)"] == pytest.approx(sum(p.numel() for p in model.codec.jsrl.parameters()) / 1e6
                                               + sum(p.numel() for p in model.rin.parameters()) / 1e6
                                               + sum(p.numel() for p in model.rfn.parameters()) / 1e6)
    assert stats["FLOPs (G)"] > 0 and stats["Time (s)"] > 0


def test_shared_dictionary_choices(isolated):
    data = P.training_set("msrs", 32)
    jsrl = JSRL(n_atoms=8, kernel=3)
    mean = P.shared_dictionary(jsrl, data.samples[:3], "mean", crop=32)
    ref = P.shared_dictionary(jsrl, data.samples[:3], "reference", crop=32)
    assert mean.shape == ref.shape == (8, 3, 3) and not torch.equal(mean, ref)
    with pytest.raises(ValueError, match="mean"):
        P.shared_dictionary(jsrl, data.samples, "last")


def test_centred_codes_variant(isolated):
    """codes='centred': σ is computed once into the stage-1 run, stage 2 gets its own run, the checkpoint carries σ,
    and the coefficient term compares amplitudes of unit-norm atoms."""
    data = P.training_set("msrs", 32)
    one = TrainConfig(epochs=1, batch_size=2, lr=1e-4, max_steps=1)
    configs = {"jsrl": one, "vgii": one, "afri": one}
    model, info = P.train_dcmif(P.Variant(prompt="none", kernel=3, codes="centred"), data, configs)
    raw, info_raw = P.train_dcmif(P.Variant(prompt="none", kernel=3), data, configs)
    assert info["runs"]["jsrl"] == info_raw["runs"]["jsrl"] and info["runs"]["vgii"] != info_raw["runs"]["vgii"]
    sigma = float(torch.load(Path(info["runs"]["jsrl"]) / "code_scale_mean_32.pt", weights_only=True))
    assert model.codec.centred and not raw.codec.centred and sigma > 0 and float(model.codec.code_scale) == pytest.approx(sigma)
    # σ makes the centred codes of the training pairs' centre crops unit-spread
    def centre(image):
        top, left = (image.shape[-2] - 32) // 2, (image.shape[-1] - 32) // 2
        return image[..., top:top + 32, left:left + 32]
    codes = torch.cat([model.codec.encode(centre(P.ir_and_luma(s)[m]), ("ir", "vis")[m]).flatten() for s in data.samples for m in (0, 1)])
    assert float(codes.square().mean().sqrt()) == pytest.approx(1.0, rel=1e-4)
    norms = model.codec.dictionary.flatten(1).norm(dim=1)
    s = torch.ones(1, 64, 2, 2)
    torch.testing.assert_close(model.codec.in_atom_units(s)[0, :, 0, 0], sigma * norms)
    assert torch.equal(raw.codec.in_atom_units(s), s)
    rebuilt = build_model(P.Variant(prompt="none", kernel=3, codes="centred"), None)
    rebuilt.load_state_dict(model.state_dict())
    assert float(rebuilt.codec.code_scale) == float(model.codec.code_scale)
    with pytest.raises(ValueError, match="codes must be"):
        P.build_codec(P.Variant(kernel=3, codes="whitened"), JSRL(n_atoms=64, kernel=3), data, "cpu")


def test_stage2_learning_curve_is_the_uninterrupted_run(isolated, tmp_path):
    from fusionlib.dcmif.control import stage2_learning_curve
    data = P.training_set("msrs", 32)
    jsrl = JSRL(n_atoms=8, kernel=3)
    codec = DictionaryCodec(jsrl, P.shared_dictionary(jsrl, data.samples[:1], "reference", crop=32), 0.5)
    held = [P.ir_and_luma(s) for s in data.samples[:2]]
    held = [(ir[..., :32, :32], y[..., :32, :32]) for ir, y in held]
    config = TrainConfig(epochs=5, batch_size=2, lr=1e-4, max_steps=4, log_every=1)
    model, log, rows = stage2_learning_curve(codec, None, data, config, tmp_path / "curve", held, [1, 2, 8])
    assert [r["step"] for r in rows] == [0, 0, 1, 1, 2, 2, 4, 4] and [r["step"] for r in log] == [1, 2, 3, 4]
    once, _ = P.train_stage2(codec, None, data, config, "cpu", tmp_path / "once")
    for (k, a), b in zip(model.state_dict().items(), once.state_dict().values()):
        assert torch.equal(a, b), k
    assert stage2_learning_curve(codec, None, data, config, tmp_path / "curve", held, [1, 2, 8])[2] == rows  # read back
    with pytest.raises(ValueError, match="past the curve's first stop"):
        stage2_learning_curve(codec, None, data, config, tmp_path / "once", held, [1, 2])
    with pytest.raises(ValueError, match="max_steps"):
        stage2_learning_curve(codec, None, data, TrainConfig(epochs=1, batch_size=2), tmp_path / "x", held, [1])
