"""fusionlib.metrics.functional: every metric by hand, and against independent implementations.

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

import numpy as np
import pytest
import torch

from fusionlib.metrics import functional as fm
from tests.metrics.conftest import planes


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


def test_scd_of_a_sum():
    rng = np.random.default_rng(1)
    a, b = rng.random((16, 16)) * 100, rng.random((16, 16)) * 100
    assert fm.scd(*planes(a, b, a + b)).item() == pytest.approx(2.0)


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


def test_reference_values_from_other_toolboxes(msrs_pair):
    ir, vis, fused = msrs_pair
    a, b, f = planes(vis, ir, fused)
    assert fm.ssim(a, f).item() == pytest.approx(0.7924830001794918, rel=1e-9)   # scikit-image
    assert fm.ssim(b, f).item() == pytest.approx(0.4427617925316005, rel=1e-9)
    assert fm.mutual_information(a, b, f, base=math.e).item() == pytest.approx(2.4207794389212043, rel=1e-9)  # sklearn
    assert fm.vif(a, f).item() == pytest.approx(0.4995422381637315, rel=1e-8)    # sewar vifp
    assert fm.vif(b, f).item() == pytest.approx(0.12545800959540968, rel=1e-8)
