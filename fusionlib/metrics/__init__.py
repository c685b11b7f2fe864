"""Fusion metrics: one validated implementation of the 20 metrics the four papers report.

Derived in ``notebooks/01_fusion_metrics.ipynb``. Entry points:

- :func:`evaluate` ``(ir, vis, fused, metrics=None, convention="vifb") -> dict[str, float]``;
- :func:`fusionlib.metrics.dataset.evaluate_dataset` for a whole split (per-image DataFrame + summary);
- ``python -m fusionlib.study.timing`` for timings.

Metric names (direction): EN↑ SD↑ SF↑ AG↑ EI↑ MI↑ CE↓ PSNR↑ RMSE↓ SSIM↑ CC↑ SCD↑ VIF↑ VIFF↑
Qabf↑ Nabf↓ Qcb↑ Qcv↓ NIQE↓ PI↓. The 13 of the VIFB benchmark are AG CE EI EN MI PSNR Qabf Qcb Qcv
RMSE SF SSIM SD.

**Inputs** are what files decode to (uint8 ``H×W`` or ``H×W×3`` numpy arrays) or float tensors in
[0, 1] (``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)``), which are quantised to 8-bit levels
(``round(255·x)``) exactly as saving them would, so a tensor and its saved PNG score the same.
Everything is computed in float64 on the inputs' device (CUDA tensors stay on the GPU).

**Conventions** (:data:`CONVENTIONS`) name the toolbox a set of numbers is comparable with:

- ``"vifb"`` reproduces the VIFB MATLAB toolbox, quirks included: a colour fused image is scored
  per channel (VIS channel k, IR, fused channel k) and averaged; SF sees the three channels side by
  side as one M×3N image; MI in nats after a min-max stretch; SSIM summed over the sources; RMSE and
  PSNR through VIFB's ‖X − F‖_F/(MN) "mse"; a grey fused image with an RGB VIS uses MATLAB
  ``rgb2gray`` (rounded to uint8 where VIFB passes uint8, unrounded where it passes double).
  DCMIF reports six of these (AG, CE, EI, EN, Qcb, SF).
- ``"canonical"`` (``docs/metrics.md#conventions``): grey images (MATLAB ``rgb2gray`` of colour
  files), MI in bits on raw levels summed over sources, SSIM averaged, VIF summed, textbook
  RMSE/PSNR; AG/CE/EI/EN/SD/SF/Qabf/Qcb/Qcv as VIFB. Used for LDFusion (EN, CC, SD, EI, VIFF).
- ``"tang"``: as canonical, but SF averaged over the actual number of differences (Tang's and
  CDDFuse's code) and VIF summed (their "VIF"). Used for IASSF (Qu's MI in bits, Petrović's Qabf,
  Chen–Varshney's Qcv, SCD, Han's VIFF, SF on its grey MSRS images).
- ``"lrrnet"``: the Hui Li / LRRNet lineage LRCFuse descends from: as canonical, but VIF averaged
  over the two sources. (That lineage's own "MI" equals 2·EN because of a bug; we never report that
  under the name MI: the notebook shows the effect instead.)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from fusionlib.metrics import functional as fm
from fusionlib.metrics.niqe import niqe as _niqe
from fusionlib.metrics.niqe import pi as _pi

__all__ = ["COSTS", "METRICS", "VIFB_METRICS", "CONVENTIONS", "PAPER_CONVENTIONS", "PLAUSIBLE", "Convention", "MetricInfo",
           "evaluate", "higher_is_better", "implausible", "metric_of", "plausible", "prepare", "reference_psnr"]

# MATLAB rgb2gray weights (the rounded inverse of the NTSC YIQ matrix), not BT.601's 0.299/0.587/0.114
MATLAB_GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool
    range: str
    reference: str
    min_size: int = 1           # shortest image side the metric is defined for (its windows and scales)
    constant: str = ""          # what it does when an input is constant (docs/metrics.md#constant-and-tiny-images)


METRICS: dict[str, MetricInfo] = {m.name: m for m in [
    MetricInfo("EN", True, "[0, 8] bits", "Roberts et al. 2008 (entropy); VIFB metricsEntropy"),
    MetricInfo("SD", True, "[0, 127.5]", "population std on 0–255; VIFB metricsVariance"),
    MetricInfo("SF", True, "[0, ∞)", "Eskicioglu & Fisher 1995; VIFB metricsSpatial_frequency", min_size=2),
    MetricInfo("AG", True, "[0, ∞)", "Cui et al. 2015; VIFB metricsAvg_gradient", min_size=2),
    MetricInfo("EI", True, "[0, ∞)", "Rajalingam & Priya 2018; VIFB metricsEdge_intensity"),
    MetricInfo("MI", True, "[0, 16] bits", "Qu, Zhang, Yan 2002; VIFB metricsMutinf (nats)"),
    MetricInfo("CE", False, "[0, ∞) bits", "Bulanon et al. 2009 (cross entropy); VIFB metricsCross_entropy"),
    MetricInfo("PSNR", True, "dB", "Jagalingam & Hegde 2015; VIFB metricsPsnr"),
    MetricInfo("RMSE", False, "[0, 255]", "Jagalingam & Hegde 2015; VIFB metricsRmse"),
    MetricInfo("SSIM", True, "[−2, 2] summed / [−1, 1] mean", "Wang et al. 2004; VIFB metricsSsim", min_size=11),
    MetricInfo("CC", True, "[−1, 1]", "Pearson correlation, mean over sources (Tang, CDDFuse)", min_size=2,
               constant="NaN when a source or the fused image is constant (Pearson's r of a zero-variance image is 0/0)"),
    MetricInfo("SCD", True, "[−2, 2]", "Aslantas & Bendes 2015", min_size=2,
               constant="NaN when a source is constant or equals the fused image (the difference image F − other source is then constant: r is 0/0)"),
    MetricInfo("VIF", True, "[0, ~2]", "Sheikh & Bovik 2006, pixel domain (VIFp)", min_size=29,
               constant="NaN when a source is constant (its local variances are 0 in every window: 0/0)"),
    MetricInfo("VIFF", True, "[0, ~1]", "Han, Cai, Cao, Xu 2013", min_size=41,
               constant="NaN when a source is constant (it carries no information: every scale would read C/C = 1, the maximum, whatever the fused image)"),
    MetricInfo("Qabf", True, "[0, 1]", "Xydeas & Petrović 2000; VIFB metricsQabf", min_size=2),
    MetricInfo("Nabf", False, "[0, 1]", "Shreyamsha Kumar 2013", min_size=2),
    MetricInfo("Qcb", True, "[0, 1]", "Chen & Blum 2009; Zheng Liu's code in VIFB metricsQcb", min_size=2,
               constant="NaN when an input is constant (the min–max stretch leaves zeros, and the contrast G₂∗I / G₄∗I is 0/0)"),
    MetricInfo("Qcv", False, "[0, ∞)", "Chen & Varshney 2007; Zheng Liu's code in VIFB metricsQcv", min_size=2,
               constant="NaN when all three images are constant (no Sobel edge anywhere: the saliency-weighted mean is 0/0)"),
    MetricInfo("NIQE", False, "[0, ∞)", "Mittal, Soundararajan, Bovik 2013 (LIVE pristine model)", min_size=96,
               constant="NaN when the fused image is constant (no local variance to fit the natural-scene model to)"),
    MetricInfo("PI", False, "[0, ∞)", "PIRM 2018: ½[(10 − Ma) + NIQE]", min_size=96,
               constant="NaN when NIQE is (a constant fused image)"),
]}
COSTS = ("FLOPs", "Param", "Time", "Runtime", "latency", "Training (h)")  # column words of lower-is-better costs


def reference_psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    """PSNR (dB) of ``x`` against a ground truth ``ref``, both float in [0, 1] (peak 1; MSE floored at 1e-12,
    so equal images give 120 dB): a dehazed image against the clear one. Not the fusion metric ``PSNR`` of
    :data:`METRICS`, which compares the fused image with both sources on the 0–255 scale.

    Derived in ``notebooks/33_iassf_control_arm.ipynb`` §2.
    """
    return float(10 * torch.log10(1 / torch.mean((x - ref) ** 2).clamp_min(1e-12)))


def metric_of(column: str) -> str:
    """The metric a table column is named after: "mean SSIM: MSRS" and "SSIM (Y)" -> "SSIM" (any other
    name comes back as its first word group)."""
    return str(column).split(":")[0].strip().removeprefix("mean ").split(" (")[0]


def higher_is_better(column: str) -> bool:
    """Whether a larger value is better, for a metric name ("Qabf") or a table column named after one
    ("mean SSIM: MSRS", "SSIM (Y)"); columns naming a cost (FLOPs, parameters, time, latency) are
    lower-is-better, and any other column (mAP, mIoU, a class AP) higher-is-better."""
    base = metric_of(column)
    if base in METRICS:
        return METRICS[base].higher_is_better
    return not any(c in column for c in COSTS)


VIFB_METRICS = ("AG", "CE", "EI", "EN", "MI", "PSNR", "Qabf", "Qcb", "Qcv", "RMSE", "SF", "SSIM", "SD")

# Where a metric of a fused *natural* 8-bit image can lie, under any of the CONVENTIONS (docs/metrics.md#plausible-ranges
# gives each reason): the hard bounds of bounded metrics, and for SF/AG/EI/NIQE the range beyond which the number
# describes noise or a degenerate (flat, black) image rather than a scene. A value outside carries no verdict.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "EN": (0.0, 8.0), "SD": (0.0, 127.5), "MI": (0.0, 16.0), "SSIM": (-2.0, 2.0), "CC": (-1.0, 1.0), "SCD": (-2.0, 2.0),
    "Qabf": (0.0, 1.0), "Nabf": (0.0, 1.0), "Qcb": (0.0, 1.0),
    "SF": (0.0, 50.0), "AG": (0.0, 25.0), "EI": (0.0, 250.0), "NIQE": (0.0, 30.0),
}


def implausible(column: str, value) -> str:
    """"" for a plausible value (or NaN, or a column that names no metric with a range), else the flag
    that keeps it from carrying a verdict: which metric, the value and its range (:data:`PLAUSIBLE`)."""
    metric = metric_of(column)
    if metric not in PLAUSIBLE or value is None or value != value or plausible(metric, float(value)):
        return ""
    lo, hi = PLAUSIBLE[metric]
    return (f"{metric} = {float(value):.4g} is outside its plausible range [{lo:g}, {hi:g}] for a natural image "
            "(docs/metrics.md#plausible-ranges)")


def plausible(metric: str, value: float) -> bool:
    """Whether ``value`` can be ``metric`` of a fused natural 8-bit image (:data:`PLAUSIBLE`; metrics
    without a stated range, and NaN, are never flagged). A tolerance of 1e-6 of the range absorbs
    float rounding at the hard bounds."""
    if metric not in PLAUSIBLE or value != value:
        return True
    lo, hi = PLAUSIBLE[metric]
    tol = 1e-6 * (hi - lo)
    return lo - tol <= value <= hi + tol


@dataclass(frozen=True)
class Convention:
    """How a toolbox turns images into numbers; see the module docstring."""
    name: str
    per_channel: bool      # colour fused images: score each channel and average (VIFB)
    mi_base: float         # 2 (bits) or e (nats)
    mi_normalise: bool     # min-max stretch before the joint histogram (VIFB)
    ssim_combine: str      # "sum" or "mean" over the two sources
    vif_combine: str       # "sum" or "mean" over the two sources
    sf_normaliser: str     # "mn" (VIFB) or "count"
    vifb_error: bool       # VIFB's ‖X − F‖_F/(MN) in RMSE and PSNR


CONVENTIONS: dict[str, Convention] = {c.name: c for c in [
    Convention("vifb", True, math.e, True, "sum", "sum", "mn", True),
    Convention("canonical", False, 2.0, False, "mean", "sum", "mn", False),
    Convention("tang", False, 2.0, False, "mean", "sum", "count", False),
    Convention("lrrnet", False, 2.0, False, "mean", "mean", "mn", False),
]}
# Which convention each paper's tables are compared under (see each paper's notebook for why).
PAPER_CONVENTIONS = {"dcmif": "vifb", "lrcfuse": "lrrnet", "iassf": "tang", "ldfusion": "canonical"}


def _levels(x, name: str, device=None, quantise: bool = True) -> torch.Tensor:
    """Image -> ``(C, H, W)`` float64 tensor of 8-bit levels 0..255 (a float tensor scaled to
    0–255 without rounding when ``quantise`` is False)."""
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8:
            raise ValueError(f"{name}: numpy images must be uint8 as decoded from 8-bit files, got {x.dtype} "
                             f"{'×'.join(map(str, x.shape))}; pass float tensors in [0, 1] otherwise")
        if x.ndim == 2:
            x = x[..., None]
        if x.ndim != 3 or x.shape[2] not in (1, 3):
            raise ValueError(f"{name}: expected H×W or H×W×3, got shape {x.shape}")
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).double()
        return t.to(device) if device is not None else t
    if torch.is_tensor(x):
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[0] not in (1, 3):
            raise ValueError(f"{name}: expected (H, W), (C, H, W) or (1, C, H, W) with C in (1, 3), "
                             f"got {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            return x.double()
        if not x.is_floating_point():
            raise ValueError(f"{name}: tensors must be float in [0, 1] or uint8, got {x.dtype}")
        if torch.isnan(x).any():
            raise ValueError(f"{name}: contains NaN (shape {tuple(x.shape)})")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"{name}: float images must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
        return torch.round(x.double() * 255) if quantise else x.double() * 255  # round: what saving as uint8 does
    raise ValueError(f"{name}: expected a numpy uint8 array or a torch tensor, got {type(x).__name__}")


def _gray(x: torch.Tensor, rounded: bool) -> torch.Tensor:
    """``(C, H, W)`` levels -> ``(1, H, W)`` MATLAB ``rgb2gray`` (rounded to uint8 when ``rounded``)."""
    if x.shape[0] == 1:
        return x
    y = (x * x.new_tensor(MATLAB_GRAY).view(3, 1, 1)).sum(0, keepdim=True)
    return fm.round_half_away(y) if rounded else y


@dataclass
class Prepared:
    """Planes for every metric family: ``(B, H, W)`` float64 0–255 (a source may have B = 1 and
    broadcast against a three-channel fused image)."""
    a: torch.Tensor          # VIS planes (unrounded grey where VIFB passes doubles)
    a_round: torch.Tensor    # VIS planes (rounded grey where VIFB passes uint8)
    b: torch.Tensor          # IR planes (unrounded grey where VIFB passes doubles)
    b_round: torch.Tensor    # IR planes (rounded grey where VIFB passes uint8)
    f: torch.Tensor          # fused planes
    sf_plane: torch.Tensor   # (1, H, B·W): VIFB's side-by-side SF input, or the fused grey plane
    fused_gray: torch.Tensor  # (H, W) grey fused image for NIQE / PI


def prepare(ir, vis, fused, convention: Convention, quantise: bool = True) -> Prepared:
    """Validate and convert the three images into the planes each metric family needs (``quantise``
    as in :func:`evaluate`)."""
    f = _levels(fused, "fused", quantise=quantise)
    dev = f.device
    a, b = _levels(vis, "vis", dev), _levels(ir, "ir", dev)
    shapes = {"ir": tuple(b.shape[1:]), "vis": tuple(a.shape[1:]), "fused": tuple(f.shape[1:])}
    if len(set(shapes.values())) > 1:
        raise ValueError("image sizes differ: " + ", ".join(f"{k} {h}×{w}" for k, (h, w) in shapes.items()))
    fused_gray = _gray(f, rounded=True)[0]
    if convention.per_channel and f.shape[0] == 3:
        # a one-channel source stays one plane and broadcasts against the three fused channels, so
        # its filters, gradients and histograms are computed once, not three times
        planes_a, planes_b = a, b
        sf_plane = torch.cat(list(f), dim=-1)[None]  # channels side by side, as MATLAB size() sees them
        return Prepared(planes_a, planes_a, planes_b, planes_b, f, sf_plane, fused_gray)
    fg = fused_gray[None] if f.shape[0] == 3 else f
    exact = not convention.per_channel  # VIFB rounds only where it hands uint8 to rgb2gray
    return Prepared(_gray(a, rounded=exact), _gray(a, rounded=True), _gray(b, rounded=exact),
                    _gray(b, rounded=True), fg, fg, fused_gray)


def _combine(x: torch.Tensor, y: torch.Tensor, how: str) -> torch.Tensor:
    return x + y if how == "sum" else (x + y) / 2


def metric_functions(conv: Convention, niqe_params, ma_score) -> dict[str, Callable[[Prepared], torch.Tensor | float]]:
    return {
        "EN": lambda p: fm.entropy(p.f),
        "SD": lambda p: fm.standard_deviation(p.f),
        "SF": lambda p: fm.spatial_frequency(p.sf_plane, conv.sf_normaliser),
        "AG": lambda p: fm.average_gradient(p.f),
        "EI": lambda p: fm.edge_intensity(p.f),
        "MI": lambda p: fm.mutual_information(p.a_round, p.b_round, p.f, conv.mi_base, conv.mi_normalise),
        "CE": lambda p: fm.cross_entropy(p.a_round, p.b_round, p.f),
        "PSNR": lambda p: fm.psnr(p.a, p.b, p.f, vifb=conv.vifb_error),
        "RMSE": lambda p: fm.rmse(p.a, p.b, p.f, vifb=conv.vifb_error),
        "SSIM": lambda p: _combine(*fm.ssim_pair(p.a_round, p.b_round, p.f), conv.ssim_combine),
        "CC": lambda p: fm.correlation_coefficient(p.a, p.b, p.f),
        "SCD": lambda p: fm.scd(p.a, p.b, p.f),
        "VIF": lambda p: _combine(fm.vif(p.a, p.f), fm.vif(p.b, p.f), conv.vif_combine),
        "VIFF": lambda p: fm.viff(p.a, p.b, p.f),
        "Qabf": lambda p: fm.qabf(p.a, p.b, p.f),
        "Nabf": lambda p: fm.nabf(p.a, p.b, p.f),
        "Qcb": lambda p: fm.qcb(p.a, p.b, p.f),
        "Qcv": lambda p: fm.qcv(p.a, p.b, p.f),
        "NIQE": lambda p: _niqe(p.fused_gray, niqe_params),
        "PI": lambda p: _pi(p.fused_gray, ma_score, niqe_params),
    }


def evaluate(ir, vis, fused, metrics: Iterable[str] | None = None, convention: str = "vifb", *,
             niqe_params: str | None = None, ma_score: Callable | None = None,
             image: str | None = None, quantise: bool = True) -> dict[str, float]:
    """Score one fused image against its IR and VIS sources.

    Args:
        ir, vis, fused: uint8 numpy arrays (``H×W`` or ``H×W×3``) or float tensors in [0, 1]
            (see the module docstring); all of one size.
        metrics: names from :data:`METRICS` (or one name as a string); default all of them except PI
            unless ``ma_score`` is given.
        convention: a key of :data:`CONVENTIONS` (``"vifb"``, ``"canonical"``, ``"tang"``, ``"lrrnet"``).
        niqe_params: path of a NIQE pristine model (default: the bundled LIVE model).
        ma_score: Ma et al.'s NRQM score function, needed for PI only.
        image: a name for the warnings (e.g. the file name).
        quantise: round a float fused image to 8-bit levels first, as saving it would (default).
            False scores the float output as it is (0–255 without rounding; histogram metrics then
            bin by truncation): what a Python evaluator fed the network's tensor computes, one of
            the conventions the benchmark's conformance matrix compares.

    Returns:
        ``{name: value}`` as Python floats, in the order asked. A metric undefined on these images
        (a constant input, see :attr:`MetricInfo.constant`) is NaN with a warning naming the metric,
        the image and why.

    Raises:
        ValueError: images smaller than a metric's :attr:`MetricInfo.min_size` (one message naming
            every such metric and its minimum).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}: use one of {', '.join(CONVENTIONS)}")
    if metrics is None:
        metrics = [m for m in METRICS if m != "PI" or ma_score is not None]
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)  # "EN" is one metric, not ['E', 'N']
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}: use names from {', '.join(METRICS)}")
    conv = CONVENTIONS[convention]
    p = prepare(ir, vis, fused, conv, quantise)
    h, w = p.fused_gray.shape
    small = [m for m in metrics if min(h, w) < METRICS[m].min_size]
    if small:
        raise ValueError(f"images of {h}×{w} px are too small for " + ", ".join(
            f"{m} (needs at least {METRICS[m].min_size}×{METRICS[m].min_size})" for m in small)
            + (f" ({image})" if image else ""))
    fns = metric_functions(conv, niqe_params, ma_score)
    out = {}
    for name in metrics:
        value = fns[name](p)
        out[name] = float(value.mean()) if torch.is_tensor(value) else float(value)
        if math.isnan(out[name]):
            why = METRICS[name].constant or "no documented cause: please report it with the images"
            warnings.warn(f"{name} is undefined (NaN) on {image or 'these images'}: {why}", stacklevel=2)
    return out
