"""fusionlib.metrics: hand-computed values, invariants, conventions, bad input, reference values.

Reference ("golden") values come from independent implementations, run once in a scratch
environment on the MSRS test pair 00055D of the shared sample data, with the fused image
F = round((VIS_grey + IR)/2), VIS_grey = cv2.imread(..., IMREAD_GRAYSCALE):
- SSIM: scikit-image 0.26.0 ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)``;
- MI (nats, raw levels): scikit-learn 1.9.1 ``mutual_info_score`` summed over the two sources;
- VIFp: sewar 0.4.6 ``vifp(sigma_nsq=2)``;
- NIQE: BasicSR 1.4.2 ``basicsr.metrics.niqe.niqe`` with its ``niqe_pris_params.npz`` on the grey
  visible images (BasicSR resizes in float32; NIQE's grid search makes it sensitive at ~0.3 %,
  see the notebook, hence the 1 % tolerance).
To regenerate: install those packages and run the same calls on the same arrays.
"""

import math

import cv2
import numpy as np
import pytest
import torch

from fusionlib.metrics import CONVENTIONS, METRICS, VIFB_METRICS, evaluate, higher_is_better
from fusionlib.metrics import functional as fm
from fusionlib.metrics.niqe import niqe
from fusionlib.paths import data_root


def planes(*arrays):
    return [torch.as_tensor(np.asarray(a, dtype=np.float64))[None] for a in arrays]


@pytest.fixture
def scene():
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (112, 128)).astype(np.float32), (0, 0), 2)  # ≥ 96: NIQE
    vis = np.clip((base - base.min()) / (base.max() - base.min()) * 255, 0, 255).astype(np.uint8)
    ir = np.clip(255 - vis.astype(int) + rng.integers(-20, 20, vis.shape), 0, 255).astype(np.uint8)
    fused = ((vis.astype(int) + ir) // 2).astype(np.uint8)
    return ir, vis, fused


# ---------------------------------------------------------------------------- hand-computed values

def test_entropy_by_hand():
    assert fm.entropy(*planes(np.full((4, 4), 7))).item() == 0.0
    half = np.array([[0, 0], [255, 255]])
    assert fm.entropy(*planes(half)).item() == pytest.approx(1.0)
    four = np.array([[0, 1], [2, 3]])
    assert fm.entropy(*planes(four)).item() == pytest.approx(2.0)


def test_sd_sf_ag_by_hand():
    checker = np.array([[0, 255], [255, 0]])
    assert fm.standard_deviation(*planes(checker)).item() == pytest.approx(127.5)
    cols = np.array([[0, 10], [0, 10]])
    assert fm.spatial_frequency(*planes(cols), "mn").item() == pytest.approx(math.sqrt(200 / 4))
    assert fm.spatial_frequency(*planes(cols), "count").item() == pytest.approx(10.0)
    ramp = np.tile(np.arange(0, 6, 2), (3, 1))  # gx = 2 everywhere, gy = 0
    assert fm.average_gradient(*planes(ramp)).item() == pytest.approx(9 * math.sqrt(2) / 4)


def test_edge_intensity_by_hand():
    assert fm.edge_intensity(*planes(np.full((5, 5), 9))).item() == 0.0
    ramp = np.tile(np.arange(5) * 3.0, (5, 1))
    # horizontal Sobel of a ramp of slope 3: (1+2+1)·(3+3) = 24 inside, 4·3 = 12 at the replicated edges
    assert fm.edge_intensity(*planes(ramp)).item() == pytest.approx(np.mean([12, 24, 24, 24, 12]))


def test_information_metrics_by_hand():
    a = np.array([[0, 0], [255, 255]])
    f = a.copy()
    # MI(A;F) = H(A) = 1 bit when F = A; summed over two identical sources: 2 bits
    assert fm.mutual_information(*planes(a, a, f)).item() == pytest.approx(2.0)
    assert fm.mutual_information(*planes(a, a, f), base=math.e).item() == pytest.approx(2 * math.log(2))
    assert fm.cross_entropy(*planes(a, a, f)).item() == 0.0
    flipped = 255 - f  # same histogram: CE only compares histograms
    assert fm.cross_entropy(*planes(a, a, flipped)).item() == 0.0


def test_error_metrics_by_hand():
    f = np.full((4, 5), 100.0)
    a = b = f + 10
    assert fm.rmse(*planes(a, b, f)).item() == pytest.approx(10.0)
    assert fm.psnr(*planes(a, b, f)).item() == pytest.approx(20 * math.log10(255 / 10))
    # VIFB's "mse" is ||X - F||_F / (MN): 10·sqrt(MN)/(MN)
    assert fm.rmse(*planes(a, b, f), vifb=True).item() == pytest.approx(10 / math.sqrt(20))
    assert fm.psnr(*planes(a, b, f), vifb=True).item() == pytest.approx(20 * math.log10(255 / math.sqrt(10 / math.sqrt(20))))


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


def test_scd_of_a_sum():
    rng = np.random.default_rng(1)
    a, b = rng.random((16, 16)) * 100, rng.random((16, 16)) * 100
    assert fm.scd(*planes(a, b, a + b)).item() == pytest.approx(2.0)


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


def test_real_fft_equals_the_references_complex_form():
    """Liu's code keeps complex values; the CSF is even, so the result is real (see _fft_filter)."""
    for h, w in ((32, 48), (33, 47)):
        x = torch.rand(2, h, w, dtype=torch.float64) * 255
        u, v = fm._freqspace(h, w, x.device)
        s = torch.exp(-(torch.sqrt(u ** 2 + v ** 2) * 3) ** 2)
        complex_form = torch.fft.ifft2(torch.fft.ifftshift(torch.fft.fftshift(torch.fft.fft2(x)) * s))
        assert complex_form.imag.abs().max() < 1e-10
        torch.testing.assert_close(fm._fft_filter(x, s), complex_form.real, atol=1e-9, rtol=0)


def test_same_fft_equals_direct_correlation():
    x = torch.rand(1, 40, 50, dtype=torch.float64)
    k = fm.gaussian_kernel(31, 4, normalise=False)
    direct = fm.filter2(x, k, "zeros")
    torch.testing.assert_close(fm._same_fft(x, (k,))[0], direct, atol=1e-10, rtol=0)


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


def test_niqe_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="pristine model not found"):
        niqe(torch.zeros(96, 96, dtype=torch.float64), params_path=str(tmp_path / "none.npz"))


# ---------------------------------------------------------------------------- reference values

@pytest.fixture
def msrs_pair():
    folder = data_root() / "msrs" / "test"
    if not (folder / "vi" / "00055D.png").is_file():
        pytest.skip(f"needs the sample data (FUSIONLIB_DATA=../shared/data); not found in {data_root()}")
    ir = cv2.imread(str(folder / "ir" / "00055D.png"), cv2.IMREAD_GRAYSCALE)
    vis = cv2.imread(str(folder / "vi" / "00055D.png"), cv2.IMREAD_GRAYSCALE)
    fused = ((vis.astype(float) + ir.astype(float)) / 2).round().astype(np.uint8)
    return ir, vis, fused


def test_reference_values_from_other_toolboxes(msrs_pair):
    ir, vis, fused = msrs_pair
    a, b, f = planes(vis, ir, fused)
    assert fm.ssim(a, f).item() == pytest.approx(0.7924830001794918, rel=1e-9)   # scikit-image
    assert fm.ssim(b, f).item() == pytest.approx(0.4427617925316005, rel=1e-9)
    assert fm.mutual_information(a, b, f, base=math.e).item() == pytest.approx(2.4207794389212043, rel=1e-9)  # sklearn
    assert fm.vif(a, f).item() == pytest.approx(0.4995422381637315, rel=1e-8)    # sewar vifp
    assert fm.vif(b, f).item() == pytest.approx(0.12545800959540968, rel=1e-8)


def test_niqe_reference_values(msrs_pair):
    root = data_root()
    for rel, basicsr_value in [("msrs/test/vi/00055D.png", 3.2870), ("roadscene/test/vi/FLIR_00211.jpg", 4.7631),
                               ("tno/test/vi/01.png", 3.1248)]:
        grey = cv2.imread(str(root / rel), cv2.IMREAD_GRAYSCALE).astype(np.float64)
        # within 1.5 %: BasicSR resizes in float32, and NIQE's grid search alone moves ~0.3 % under
        # 1e-9 input noise (measured in the notebook); the three images differ by 0.2, 0.1 and 1.0 %
        assert niqe(torch.from_numpy(grey)) == pytest.approx(basicsr_value, rel=0.015), rel


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
