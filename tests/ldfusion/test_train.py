"""LDFusion's training glue on synthetic scenes with a stand-in CLIP: one step, the fuser, resizing."""

import pytest
import torch

from fusionlib.data import find_pairs
from fusionlib.data.synthetic import materialize
from fusionlib.io import read_image
from fusionlib.ldfusion.loss import LanguageDrivenLoss
from fusionlib.common.perceptual import load_vgg19
from fusionlib.metrics.dataset import resized
from fusionlib.ldfusion import train as P
from fusionlib.ldfusion.inference import fuser
from fusionlib.paths import project_root
from fusionlib.study.reproduce import load_profile
from fusionlib.train import TrainConfig
from tests.ldfusion.test_clip import TinyClip


def test_train_step_and_fuser(isolated):
    data = P.training_set("msrs", 128)  # synthetic scenes here
    loss = LanguageDrivenLoss(TinyClip(), lambda texts: torch.arange(len(texts)), load_vgg19("random"), rounds=2)
    config = TrainConfig(epochs=1, batch_size=2, lr=5e-4, max_steps=1, warmup_epochs=1, lr_milestones=(50, 60))
    model, history = P.train(data, loss, config, isolated / "run")
    assert history[0]["step"] == 1 and {"l_v", "l_g", "l_p", "phi"} <= set(history[0])
    fused = fuser(model)(torch.rand(1, 1, 37, 51), torch.rand(1, 3, 37, 51))
    assert fused.shape == (1, 3, 37, 51) and 0 <= float(fused.min()) and float(fused.max()) <= 1


def test_resized_short_side(isolated):
    samples = find_pairs(materialize(isolated / "pairs", n=1, size=(60, 90)))
    out = resized(samples, 120, "toy")
    assert read_image(out[0].paths["ir"]).shape[:2] == (120, 180) and read_image(out[0].paths["vi"]).shape[:2] == (120, 180)
    assert resized(samples, 0, "toy") == samples


def test_patches_too_small_to_pass_the_entropy_filter_fail_loudly(isolated):
    """Issue 16 item 7: at 48² crops no patch has 6 bits of entropy in both sources, so L_p would be
    0 at every step; training refuses, and without the language terms it still trains."""
    data = P.training_set("msrs", 48)
    assert P.patch_validity(data, rounds=8) == 0
    config = TrainConfig(epochs=1, batch_size=2, max_steps=1)
    loss = LanguageDrivenLoss(TinyClip(), lambda texts: torch.arange(len(texts)), load_vgg19("random"), rounds=2)
    with pytest.raises(ValueError, match="no random patch of 48×48 crops.*passes the entropy filter"):
        P.train(data, loss, config, isolated / "refused")
    l_v_only = LanguageDrivenLoss(TinyClip(), lambda texts: torch.arange(len(texts)), load_vgg19("random"), language=False)
    _, history = P.train(data, l_v_only, config, isolated / "l_v")
    assert set(history[0]) >= {"l_v", "lit"} and "l_p" not in history[0]


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu", "full"])
def test_patches_pass_the_filter_at_each_profiles_crop(profile):
    """The crop each profile trains notebook 41 with lets some patches through (on the sample MSRS
    pairs when present, else synthetic scenes), and patches keep the code's proportions."""
    import papermill
    notebook = project_root() / "notebooks" / "41_ldfusion_training_and_tables.ipynb"
    params = load_profile(profile, notebook.parent)["notebooks"].get(notebook.stem) or {}
    crop = int(params.get("crop", papermill.inspect_notebook(str(notebook))["crop"]["default"]))
    assert P.patch_validity(P.training_set("msrs", crop), rounds=8) > 0, f"{profile}: crop {crop}"


def test_patch_sides_scale_with_the_crop():
    from fusionlib.ldfusion.clip import sample_patches
    x = torch.arange(100 * 100, dtype=torch.float32).reshape(1, 1, 100, 100) / 1e4
    g = torch.Generator().manual_seed(0)
    patches = sample_patches([x], rounds=16, size=224, generator=g)[0]
    assert patches.shape == (16, 1, 224, 224)
    # a patch of side s < 100 spans < 80 % of the crop's values: never the whole crop (the old behaviour below 180²)
    spans = patches.flatten(1).max(1).values - patches.flatten(1).min(1).values
    assert float(spans.max()) < 0.99 * float(x.max())


def test_l_v_alone_needs_no_clip():
    from fusionlib.common.perceptual import load_vgg19
    from fusionlib.ldfusion.loss import LanguageDrivenLoss
    loss = LanguageDrivenLoss(None, None, load_vgg19("random"), language=False)
    x = torch.rand(1, 1, 32, 32)
    total, parts = loss(x, x, x)
    assert float(total) == 0.0 and set(parts) == {"l_v", "lit"}
    with pytest.raises(ValueError, match="need a CLIP model"):
        LanguageDrivenLoss(None, None, load_vgg19("random"))
