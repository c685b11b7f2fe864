"""fusionlib.metrics: invariants, conventions, bad input, the evaluate() contract (each metric by hand and against
other toolboxes: tests/metrics/test_functional.py; NIQE: tests/metrics/test_niqe.py)."""

import math

import cv2
import numpy as np
import pytest
import torch

from fusionlib.metrics import CONVENTIONS, METRICS, VIFB_METRICS, evaluate, higher_is_better
from fusionlib.metrics import functional as fm
from fusionlib.metrics.niqe import niqe
from tests.metrics.conftest import planes


@pytest.fixture
def scene():
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (112, 128)).astype(np.float32), (0, 0), 2)  # ≥ 96: NIQE
    vis = np.clip((base - base.min()) / (base.max() - base.min()) * 255, 0, 255).astype(np.uint8)
    ir = np.clip(255 - vis.astype(int) + rng.integers(-20, 20, vis.shape), 0, 255).astype(np.uint8)
    fused = ((vis.astype(int) + ir) // 2).astype(np.uint8)
    return ir, vis, fused


# ---------------------------------------------------------------------------- hand-computed values


def test_identical_images_give_the_ideal_values(scene):
    _, vis, _ = scene
    a, b, f = planes(vis, vis, vis)
    assert fm.ssim(a, f).item() == pytest.approx(1.0)
    assert fm.correlation_coefficient(a, b, f).item() == pytest.approx(1.0)
    assert fm.qcb(a, b, f).item() == pytest.approx(1.0)
    assert fm.qcv(a, b, f).item() == pytest.approx(0.0, abs=1e-9)
    assert fm.nabf(a, b, f).item() == 0.0
    assert fm.vif(a, f).item() == pytest.approx(1.0, abs=1e-6)
    assert fm.viff(a, b, f).item() == pytest.approx(1.0, abs=1e-6)
    # Qabf with F = A = B: orientation term Γα·σ(22·0.2), strength term Γg·σ(15·(g_F − 0.5)) ≈ Γg
    # (the tie quirk G = g_F on a ×255 scale); weighted by g_A, so ≈ 0.9994·0.9879·σ(4.4)
    expected = 0.9994 * 0.9879 / (1 + math.exp(-22 * 0.2))
    assert fm.qabf(a, b, f).item() == pytest.approx(expected, rel=1e-4)


# ---------------------------------------------------------------------------- invariants and ranges

def test_ranges_and_symmetry(scene):
    ir, vis, fused = scene
    r = evaluate(ir, vis, fused, convention="canonical")
    swapped = evaluate(vis, ir, fused, convention="canonical")
    for name in ("EN", "SD", "SF", "AG", "EI", "MI", "CE", "PSNR", "RMSE", "SSIM", "CC", "VIF", "Qabf", "Nabf", "Qcb", "Qcv"):
        assert r[name] == pytest.approx(swapped[name], rel=1e-9, abs=1e-12), name
    assert 0 <= r["EN"] <= 8 and 0 <= r["Qabf"] <= 1 and 0 <= r["Qcb"] <= 1 and 0 <= r["Nabf"] <= 1
    assert -1 <= r["CC"] <= 1 and -2 <= r["SCD"] <= 2 and r["Qcv"] >= 0


def test_blur_lowers_sharpness_metrics(scene):
    ir, vis, fused = scene
    blurred = cv2.GaussianBlur(fused, (0, 0), 2)
    sharp, soft = evaluate(ir, vis, fused, ["SF", "AG", "EI", "Qabf"]), evaluate(ir, vis, blurred, ["SF", "AG", "EI", "Qabf"])
    assert all(soft[k] < sharp[k] for k in sharp)


# ---------------------------------------------------------------------------- conventions

def test_grey_ir_broadcasts_like_a_replicated_ir(scene):
    """A one-channel IR is scored against each fused channel exactly as a 3-channel R=G=B copy."""
    ir, vis, fused = scene
    rgb_vis = np.stack([vis, 255 - vis, vis // 2], 2)
    rgb_f = np.stack([fused, 255 - fused, fused // 2], 2)
    grey_ir = evaluate(ir, rgb_vis, rgb_f, None, "vifb")
    rgb_ir = evaluate(np.repeat(ir[..., None], 3, 2), rgb_vis, rgb_f, None, "vifb")
    assert grey_ir == pytest.approx(rgb_ir, rel=1e-12)


def test_vifb_scores_colour_per_channel(scene):
    ir, vis, fused = scene
    rgb_vis = np.stack([vis, 255 - vis, vis // 2], 2)
    rgb_f = np.stack([fused, 255 - fused, fused // 2], 2)
    r = evaluate(ir, rgb_vis, rgb_f, ["EN", "Qabf", "Qcb", "SSIM", "CE"], "vifb")
    per = [evaluate(ir, rgb_vis[..., k], rgb_f[..., k], ["EN", "Qabf", "Qcb", "SSIM", "CE"], "vifb") for k in range(3)]
    for name in r:
        assert r[name] == pytest.approx(np.mean([p[name] for p in per])), name
    # SF sees the channels side by side as one M×3N image, seams included
    side = np.concatenate([rgb_f[..., k] for k in range(3)], axis=1)
    assert evaluate(ir, rgb_vis, rgb_f, ["SF"], "vifb")["SF"] == pytest.approx(fm.spatial_frequency(*planes(side)).item())


def test_convention_relations(scene):
    ir, vis, fused = scene
    vifb, canon = evaluate(ir, vis, fused, convention="vifb"), evaluate(ir, vis, fused, convention="canonical")
    assert vifb["SSIM"] == pytest.approx(2 * canon["SSIM"])       # sum vs mean
    assert vifb["MI"] == pytest.approx(canon["MI"] * math.log(2))  # nats vs bits (images span 0..255)
    lrr = evaluate(ir, vis, fused, ["VIF"], "lrrnet")
    assert lrr["VIF"] == pytest.approx(canon["VIF"] / 2)          # mean vs sum
    tang = evaluate(ir, vis, fused, ["SF"], "tang")
    assert tang["SF"] > canon["SF"]                                 # fewer differences in the mean


def test_tensor_input_equals_uint8(scene):
    ir, vis, fused = scene
    as_tensor = [torch.from_numpy(x.astype(np.float32) / 255) for x in (ir, vis, fused)]
    names = ["EN", "MI", "Qabf", "SSIM", "VIFF"]
    assert evaluate(*as_tensor, names) == pytest.approx(evaluate(ir, vis, fused, names))


def test_all_metrics_named_and_default_set(scene):
    ir, vis, fused = scene
    r = evaluate(ir, vis, fused)
    assert list(r) == [m for m in METRICS if m != "PI"] and all(math.isfinite(v) for v in r.values())
    assert set(VIFB_METRICS) <= set(METRICS) and set(CONVENTIONS) == {"vifb", "canonical", "tang", "lrrnet"}


# ---------------------------------------------------------------------------- bad input

def test_bad_input_messages(scene):
    ir, vis, fused = scene
    with pytest.raises(ValueError, match=r"sizes differ: ir 112×128, vis 112×128, fused 111×128"):
        evaluate(ir, vis, fused[:111])
    with pytest.raises(ValueError, match="uint16"):
        evaluate(ir.astype(np.uint16), vis, fused)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(ir, vis, torch.full((112, 128), float("nan")))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluate(ir, vis, torch.full((112, 128), 2.0))
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(ir, vis, fused, ["MIX"])
    with pytest.raises(ValueError, match="unknown convention"):
        evaluate(ir, vis, fused, convention="matlab")
    with pytest.raises(ValueError, match="H×W or H×W×3"):
        evaluate(ir, vis, np.zeros((112, 128, 4), np.uint8))


def test_pi_needs_ma_model_and_niqe_needs_size(scene):
    ir, vis, fused = scene
    with pytest.raises(FileNotFoundError, match="NRQM_model.mat"):
        evaluate(ir, vis, fused, ["PI"])
    with pytest.raises(ValueError, match="96×96"):
        evaluate(ir[:90], vis[:90], fused[:90], ["NIQE"])  # too small for one NIQE block


def test_pi_formula_with_a_supplied_ma_score():
    img = np.clip(cv2.GaussianBlur(np.random.default_rng(3).random((208, 208)) * 255, (0, 0), 1.0), 0, 255).astype(np.uint8)
    value = evaluate(img, img, img, ["PI"], ma_score=lambda y: 6.0)["PI"]
    shaved = niqe(torch.from_numpy(img.astype(np.float64))[4:-4, 4:-4])
    assert value == pytest.approx(0.5 * ((10 - 6.0) + shaved))


# ---------------------------------------------------------------------------- reference values


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(scene):
    ir, vis, fused = scene
    big = [cv2.resize(x, (160, 128)) for x in (ir, vis, fused)]
    cpu = evaluate(*big)
    gpu = evaluate(*[torch.from_numpy(x).cuda() for x in big])
    for name in cpu:
        assert gpu[name] == pytest.approx(cpu[name], rel=1e-6, abs=1e-9), name


# Issue 12 item 3: what each metric does on constant input, as MetricInfo.constant and
# docs/metrics.md#constant-and-tiny-images state it: NaN for exactly these, each with a warning.
CONSTANT_NAN = {
    "fused": {"CC", "Qcb", "NIQE"},
    "ir": {"CC", "SCD", "VIF", "VIFF", "Qcb"},
    "all": {"CC", "SCD", "VIF", "VIFF", "Qcb", "Qcv", "NIQE"},
}


@pytest.mark.parametrize("which", sorted(CONSTANT_NAN))
def test_constant_images_are_nan_with_a_warning_naming_metric_and_image(which):
    rng = np.random.default_rng(0)
    ir, vis, fused = (rng.integers(0, 256, (128, 128), dtype=np.uint8) for _ in range(3))
    flat = np.full((128, 128), 100, np.uint8)
    ir = flat if which in ("ir", "all") else ir
    vis = flat if which == "all" else vis
    fused = flat if which in ("fused", "all") else fused
    with pytest.warns(UserWarning) as caught:
        out = evaluate(ir, vis, fused, convention="tang", image="x.png")
    nan = {m for m, v in out.items() if math.isnan(v)}
    assert nan == CONSTANT_NAN[which]
    messages = [str(w.message) for w in caught]
    for m in nan:
        assert any(msg.startswith(f"{m} is undefined (NaN) on x.png: {METRICS[m].constant}") for msg in messages)
        assert METRICS[m].constant  # documented


def test_one_metric_name_as_a_string_is_that_metric():
    rng = np.random.default_rng(3)
    imgs = [rng.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(3)]
    assert list(evaluate(*imgs, "EN")) == ["EN"]  # it was read as ['E', 'N'], two unknown metrics
    assert evaluate(*imgs, "SD") == evaluate(*imgs, ["SD"])


def test_viff_is_not_its_maximum_when_a_source_is_constant():
    """It read C/C = 1.0 on every scale whenever a source was constant, whatever the fused image."""
    rng = np.random.default_rng(2)
    vis, fused = (rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(2))
    flat = np.full((64, 64), 90, np.uint8)
    with pytest.warns(UserWarning, match="VIFF is undefined"):
        assert math.isnan(evaluate(flat, vis, fused, ["VIFF"], convention="tang")["VIFF"])
    assert evaluate(vis, fused, fused, ["VIFF"], convention="tang")["VIFF"] != 1.0  # live sources: a real value


def test_images_under_a_metrics_minimum_size_are_one_value_error():
    """Each metric's min_size is exact: it computes a finite value at min_size and raises below."""
    rng = np.random.default_rng(1)
    for name, info in METRICS.items():
        if name == "PI" or info.min_size == 1:
            continue
        ok = [rng.integers(0, 256, (info.min_size, 200), dtype=np.uint8) for _ in range(3)]
        assert math.isfinite(evaluate(*ok, [name], convention="tang")[name]), name
        small = [x[:info.min_size - 1].T.copy() for x in ok]  # 200 × (min − 1): the short side may be either one
        with pytest.raises(ValueError, match=rf"images of 200×{info.min_size - 1} px are too small for {name} "
                                             rf"\(needs at least {info.min_size}×{info.min_size}\) \(a.png\)"):
            evaluate(*small, [name], convention="tang", image="a.png")
    one = np.zeros((1, 1), np.uint8)
    with pytest.raises(ValueError, match=r"too small for SF \(needs at least 2×2\), AG .*, NIQE \(needs at least 96×96\)$"):
        evaluate(one, one, one, convention="tang")
    assert evaluate(one, one, one, ["EN", "SD", "MI", "CE", "RMSE"])  # defined on a single pixel


def test_docs_table_of_minimum_sizes_and_constant_input_matches_the_code():
    from fusionlib.paths import project_root
    text = (project_root() / "docs" / "metrics.md").read_text()
    for m in METRICS.values():
        assert f"| {m.name} | {m.min_size}×{m.min_size} | {m.constant or 'defined (a finite value)'} |" in text, m.name


def test_higher_is_better_reads_metric_names_table_columns_and_costs():
    assert higher_is_better("Qabf") and not higher_is_better("Nabf") and not higher_is_better("RMSE")
    # columns named after a metric keep its direction
    assert not higher_is_better("mean RMSE: MSRS") and not higher_is_better("CE (Y)") and higher_is_better("SSIM (Y)")
    # costs are lower-is-better; other paper columns (detection, segmentation) higher
    assert not higher_is_better("GFLOPs") and not higher_is_better("Params (M)") and not higher_is_better("Time (s)")
    assert higher_is_better("mAP@0.5") and higher_is_better("mIoU")


def test_reference_psnr_against_a_ground_truth():
    from fusionlib.metrics import reference_psnr
    ref = torch.full((1, 3, 4, 4), 0.5)
    assert reference_psnr(ref + 0.1, ref) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 → 20 dB at peak 1
    assert reference_psnr(ref, ref) == pytest.approx(120.0)  # the MSE floor, not infinity
    assert reference_psnr(ref + 0.2, ref) < reference_psnr(ref + 0.1, ref)
