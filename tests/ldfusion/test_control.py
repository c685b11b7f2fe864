"""LDFusion's control arm, level 1 (docs/control-arm.md): from the same weights and the same batch, the
authors' own loss functions (their trainer.py, driven through fusionlib.ldfusion.control with the shims
it lists) give each loss term equal to ours, and three steps of their Adam with their warm-up leave the
parameters equal to three steps of our trainer. Float64 throughout; CLIP is a tiny random open_clip
model behind their `clip.load` (the terms are compared, not CLIP), VGG our real normalised VGG-19."""

import pytest
import torch

from fusionlib.common.perceptual import load_vgg19_normalised
from fusionlib.control import reference_root, relative_difference
from fusionlib.io import split_luma
from fusionlib.ldfusion import control as C
from fusionlib.ldfusion.clip import direction_regulariser, directional_loss, patch_mask
from fusionlib.ldfusion.loss import CODE_WEIGHTS, LanguageDrivenLoss
from fusionlib.ldfusion.model import LDFusion
from fusionlib.ldfusion.official import official_state_dict
from fusionlib.ldfusion.train import NOISE, train
from fusionlib.train import TrainConfig
from tests.conftest import write_split

pytestmark = pytest.mark.authors_code
B, SIDE = 3, 184  # their patch sampler crops 112-179 px whatever the image (224·U(0.5, 0.8)): the images need at least 179²
STEP_B = 1  # the three optimiser steps: one image each (float64 is slow; the warm-up counts batches, not images)


@pytest.fixture(scope="module")
def arms(tmp_path_factory):
    try:
        reference_root("ldfusion")
        stand_in = load_vgg19_normalised(("relu2_1", "relu3_1"), convention="unnormalised").double()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    clip, tokenizer = C.tiny_clip()
    clip = clip.double()
    tmp = tmp_path_factory.mktemp("ldfusion_control")
    folder = write_split(tmp / "pairs", ["a.png"], size=(256, 256))
    # one pair listed 10 times, batch 3: their loader has 3 batches, so their warm-up spans 3 steps
    with C.authors_trainer([(folder / "vi" / "a.png", folder / "ir" / "a.png")], tmp / "work", clip, tokenizer, stand_in,
                           batch=B) as (module, trainer):
        yield module, trainer, clip, tokenizer, stand_in


def images(n, seed):
    """``n`` smooth random visible RGB / IR pairs in [0, 1], float64 (their entropy passes the patch filter)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 4, 28, 28, generator=g, dtype=torch.float64)
    up = torch.nn.functional.interpolate(low, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    return up[:, :3], up[:, 3:]


def start(trainer) -> LDFusion:
    """Our network at the code's initialisation, and theirs with the same weights (float64)."""
    torch.manual_seed(0)
    ours = LDFusion().double()
    enc, dec = C.to_authors(ours, trainer.Enc, trainer.Dec)
    trainer.Enc.double().load_state_dict(enc)
    trainer.Dec.double().load_state_dict(dec)
    return ours


def test_each_loss_term_equals_the_authors(arms):
    module, trainer, clip, tokenizer, stand_in = arms
    ours = start(trainer)
    vis_rgb, ir = images(B, 1)
    vis = split_luma(vis_rgb, "opencv")[0]
    g = torch.Generator().manual_seed(2)
    ir_n, vis_n = (x + NOISE * torch.randn(x.shape, generator=g, dtype=torch.float64) for x in (ir, vis))
    with torch.no_grad():
        fused = ours(ir_n, vis_n)
        theirs = trainer.Dec(*trainer.Enc(vis_n, ir_n))[:, :, :SIDE, :SIDE]
        assert relative_difference(fused, theirs) < 1e-10
        loss = LanguageDrivenLoss(clip, tokenizer, stand_in, CODE_WEIGHTS, rounds=4).double()
        # L_v: their vgg_loss (conv2_1 + conv3_1 + conv4_2, which is 0 with our weights) is ours
        l_v = loss.feature_fidelity(fused, vis, ir)
        assert relative_difference(l_v, trainer.vgg_loss(fused, vis, ir)) < 1e-10
        # CLIP terms: their features unnormalised in float64, ours normalised in float32 (and both text
        # directions in float32, as their code rounds them): 1e-6
        f = {k: clip.encode_image(trainer.clip_norm(x)) for k, x in {"vis": vis, "ir": ir, "fused": fused}.items()}
        e = {k: loss.embed(x) for k, x in {"vis": vis, "ir": ir, "fused": fused}.items()}
        pf, pd_ = trainer.prompt_feature.repeat(B, 1), trainer.prompt_dir.repeat(B, 1)
        phi = direction_regulariser(e["fused"], e["vis"], e["ir"]).mean()
        assert relative_difference(0.5 * phi, trainer.clip_sim_loss(f["fused"], f["vis"], f["ir"])) < 1e-6
        l_g = directional_loss(e["fused"], e["vis"], e["ir"], loss.dt_vis, loss.dt_ir).mean()
        assert relative_difference(l_g, trainer.clip_prompt_loss(f["fused"], f["vis"], f["ir"], pf, pd_)) < 1e-6
        # patches: theirs (their dynamic_cropper), scored by both; the entropy filter and the masked mean agree
        torch.manual_seed(3)
        p_vis, p_ir, p_f = trainer.dynamic_cropper(vis, ir, fused, 4)
        valid = (module.entropy_t4d(p_vis, False) > trainer.patch_select) * (module.entropy_t4d(p_ir, False) > trainer.patch_select)
        mask = patch_mask(p_vis[:, :1], p_ir[:, :1], 6.0)
        assert torch.equal(mask.bool().flatten(), valid.bool())
        # the entropies themselves, on these patches and on low-contrast copies that fail the filter
        both = torch.cat([p_vis, 0.5 + 0.02 * (p_vis - 0.5)])
        from fusionlib.ldfusion.clip import entropy
        assert relative_difference(entropy(both[:, :1]), module.entropy_t4d(both, False).double()) < 1e-6
        assert (entropy(both[:, :1]) > 6).float().mean() == 0.5
        l_p = (mask * directional_loss(loss.embed(p_f[:, :1]), e["vis"].repeat(4, 1), e["ir"].repeat(4, 1),
                                       loss.dt_vis, loss.dt_ir)).mean()
        theirs_p = trainer.clip_prompt_loss(clip.encode_image(trainer.clip_norm(p_f)), f["vis"], f["ir"], pf, pd_, True,
                                            valid.to(torch.float64))
        assert relative_difference(l_p, theirs_p) < 1e-6
        # their weights: 2·L_g + 10·L_p + 6·sim + 10·vgg, sim = ½Φ: ours are the same numbers
        assert (trainer.prompt_weight_g, trainer.prompt_weight_p, trainer.sim_weight / 2, trainer.perception_weight) == \
            (CODE_WEIGHTS["global"], CODE_WEIGHTS["patch"], CODE_WEIGHTS["phi"], CODE_WEIGHTS["vgg"])
        # the deviation this arm found: our loss network's ImageNet input convention is not theirs
        imagenet = load_vgg19_normalised(("relu2_1", "relu3_1")).double()
        off = LanguageDrivenLoss(None, None, imagenet, language=False).feature_fidelity(fused, vis, ir)
        assert off > 10 * l_v


class Listed(torch.utils.data.Dataset):
    def __init__(self, vis, ir):
        self.vis, self.ir = vis, ir

    def __len__(self):
        return len(self.ir)

    def __getitem__(self, i):
        return {"vis": self.vis[i], "ir": self.ir[i]}


def test_three_steps_of_their_adam_and_warm_up_leave_equal_parameters(arms, tmp_path):
    """W/O LDL (their language weights 0, our language=False): their train() over three batches against
    our trainer over the same three batches in the same order with the same input noise."""
    module, trainer, clip, tokenizer, stand_in = arms
    ours = start(trainer)
    initial = {k: v.clone() for k, v in ours.state_dict().items()}
    vis_rgb, ir = images(3 * STEP_B, 4)
    data = Listed(vis_rgb, ir)
    config = TrainConfig(epochs=1, batch_size=STEP_B, lr=5e-4, seed=0, warmup_epochs=1)
    # our trainer's order (its seeded sampler) and noise (train()'s generator: IR, then VIS, per step)
    order = list(torch.utils.data.RandomSampler(data, generator=torch.Generator().manual_seed(config.seed)))
    g = torch.Generator().manual_seed(config.seed)
    batches = []
    for k in range(3):
        idx = order[k * STEP_B:(k + 1) * STEP_B]
        vis, ir_k = split_luma(vis_rgb[idx], "opencv")[0], ir[idx]
        ir_n = ir_k + NOISE * torch.randn(ir_k.shape, generator=g).to(ir_k)
        vis_n = vis + NOISE * torch.randn(vis.shape, generator=g).to(vis)
        batches.append({"vi_y": vis, "ir_y": ir_k, "vi_n": vis_n, "ir_n": ir_n,
                        "prompt_feature": trainer.prompt_feature.repeat(STEP_B, 1), "prompt_dir": trainer.prompt_dir.repeat(STEP_B, 1)})
    trainer.sim_weight = trainer.prompt_weight_g = trainer.prompt_weight_p = 0  # their W/O LDL
    trainer.train_dataloader = batches
    torch.manual_seed(5)
    trainer.train()
    # their LambdaLR is stepped after each of the N = 3 steps: steps 1-3 use (1, 2, 3)/N of the rate, as ours,
    # and what remains afterwards is (N + 1)/N of it (a finding: their rate after epoch 1 is 5e-4·(N + 1)/N)
    assert trainer.optimizer_G.param_groups[0]["lr"] == pytest.approx(5e-4 * 4 / 3)
    loss = LanguageDrivenLoss(None, None, stand_in, CODE_WEIGHTS, language=False)
    model, _ = train(data, loss, config, tmp_path / "ours", model=ours)
    theirs = official_state_dict(trainer.Enc.state_dict(), trainer.Dec.state_dict(), model)
    assert relative_difference(model.state_dict(), initial) > 1e-4  # the three steps did move the weights
    assert relative_difference(model.state_dict(), theirs) < 1e-5
