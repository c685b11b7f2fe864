"""Exercises at the end of the derivation notebooks, with answers a student can check alone.

``check(notebook, exercise, answer)`` prints whether the answer is right, with a hint when it is not,
and never prints the solution. The expected answers are computed here with the package itself (the
functions the notebooks derive), so no answer key is stored in the code a student runs; worked
solutions are written out once, in ``docs/solutions/<notebook>.md``, for teachers and for afterwards.

In a notebook::

    from fusionlib.exercises import check
    answer = None  # your answer
    check("10", 1, answer)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["Exercise", "EXERCISES", "check", "expected"]


@dataclass(frozen=True)
class Exercise:
    notebook: str                  # the notebook's number, e.g. "10"
    number: int
    question: str                  # one line: what to compute or predict
    answer_kind: str               # "number", "vector", "integer" or "bool"
    compute: Callable[[], Any]     # the expected answer, computed with the package
    hint: str
    tolerance: float = 1e-3        # relative, for numbers and vectors


def _en_half_black_half_white() -> float:
    from fusionlib.metrics import evaluate
    img = np.zeros((16, 16), np.uint8)
    img[:, 8:] = 255
    return evaluate(img, np.stack([img] * 3, -1), img, ["EN"], "canonical")["EN"]


def _lower_is_better() -> int:
    from fusionlib.metrics import METRICS
    return sum(not m.higher_is_better for m in METRICS.values())


def _vifb_sd_identical_channels() -> bool:
    from fusionlib.metrics import evaluate
    rng = np.random.default_rng(0)
    g = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    rgb = np.stack([g] * 3, -1)
    return math.isclose(evaluate(g, rgb, rgb, ["SD"], "vifb")["SD"], evaluate(g, g, g, ["SD"], "vifb")["SD"])


def _soft_threshold() -> list[float]:
    return torch.nn.functional.softshrink(torch.tensor([-2.0, 0.5, 3.0]), 1.0).tolist()


def _lipschitz_diag() -> float:
    from fusionlib.lrcfuse.lista import lipschitz
    return lipschitz(torch.diag(torch.tensor([1.0, 2.0])))


def _ista_lambda_zero_zeros() -> int:
    from fusionlib.lrcfuse.lista import ista
    x = ista(torch.eye(3), torch.tensor([[1.0, 0.0, 2.0]]), lam=0.0, iters=1)
    return int((x == 0).sum())


def _dictionary_parameters() -> int:
    from fusionlib.common.complexity import count_parameters
    return count_parameters(torch.nn.Conv2d(64, 1, 5, bias=False))


def _same_conv_multiply_adds() -> int:
    from fusionlib.common.complexity import count_flops
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    flops, _ = count_flops(conv, torch.zeros(1, 1, 64, 64))
    return flops // 2  # the counter counts a multiply-add as 2 FLOPs


def _sherman_morrison_00() -> float:
    u = torch.ones(2, 1, dtype=torch.float64)
    return float(torch.linalg.inv(torch.eye(2, dtype=torch.float64) + u @ u.T)[0, 0])


def _one_d_fft_still_convolves() -> bool:
    """Is circular correlation still the inverse transform of conj(OTF)·FFT when the atom's OTF is a 1-D FFT?"""
    from fusionlib.dcmif.model import correlate, otf
    g = torch.Generator().manual_seed(0)
    s, d = torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64), torch.rand(1, 5, 5, generator=g, dtype=torch.float64)
    direct = correlate(s, d, "circular")[0, 0]
    via = torch.fft.ifft2(torch.conj(otf(d, (8, 8), one_d_bug=True))[0] * torch.fft.fft2(s[0, 0])).real
    return bool(torch.allclose(direct, via, atol=1e-9))


def _unknowns_eq8() -> int:
    return 64 * 5 * 5


def _psnr_mse() -> float:
    return 10 * math.log10(1 / 0.01)


def _mse_ratio() -> float:
    return 10 ** ((27.2 - 23.2) / 10)


def _scatter() -> float:
    from fusionlib.data.haze import scatter
    return float(scatter(torch.tensor(0.2, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64), 1.0))


def _recover() -> float:
    from fusionlib.data.haze import scatter
    # invert I = J·t + A(1 − t) for J; checked by scattering the result back
    j = (0.8 - 1.0) / 0.4 + 1.0
    assert math.isclose(float(scatter(torch.tensor(j, dtype=torch.float64), torch.tensor(0.4, dtype=torch.float64), 1.0)), 0.8)
    return j


def _dark_channel() -> float:
    from fusionlib.data.haze import dark_channel
    img = torch.full((1, 3, 3, 3), 0.7)
    img[0, 2, 1, 2] = 0.1  # blue channel of one pixel
    return float(dark_channel(img, patch=3)[0, 0, 1, 1])


def _linear_parameters() -> int:
    from fusionlib.common.complexity import count_parameters
    return count_parameters(torch.nn.Linear(256, 64))


def _conv_gflops() -> float:
    from fusionlib.common.complexity import count_flops
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to("meta")
    flops, _ = count_flops(conv, torch.zeros(1, 64, 256, 256, device="meta"))
    return flops / 1e9


def _iassf_extra_blocks() -> float:
    from fusionlib.common.complexity import count_parameters
    from fusionlib.iassf.model import IASSF
    with torch.device("meta"):
        return (count_parameters(IASSF(blocks=7)) - count_parameters(IASSF(blocks=5))) / 1e6


def _cosine() -> float:
    return float(torch.nn.functional.cosine_similarity(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]))[0])


def _directional() -> float:
    return 1 - float(torch.nn.functional.cosine_similarity(torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 1.0]]))[0])


def _four_level_entropy() -> float:
    from fusionlib.ldfusion.clip import entropy
    levels = torch.tensor([0.0, 0.25, 0.5, 0.75]).repeat(16).view(1, 1, 8, 8)
    return float(entropy(levels)[0])


EXERCISES: dict[tuple[str, int], Exercise] = {(e.notebook, e.number): e for e in [
    Exercise("01", 1, "EN (bits) of an 8-bit image whose pixels are half 0 and half 255", "number", _en_half_black_half_white,
             "EN = −Σ p·log2 p over the 256-bin histogram; only two bins are occupied."),
    Exercise("01", 2, "How many of the 20 metrics are better when lower?", "integer", _lower_is_better,
             "Look for error, distortion and naturalness-distance metrics: fusionlib.metrics.METRICS[m].higher_is_better."),
    Exercise("01", 3, "Under VIFB, is the SD of an RGB fused image with three identical channels G equal to the SD of G alone? (True/False)",
             "bool", _vifb_sd_identical_channels, "VIFB scores each channel and averages the three numbers."),
    Exercise("10", 1, "The soft threshold S_θ(x) of x = [−2, 0.5, 3] with θ = 1", "vector", _soft_threshold,
             "S_θ(x) = sign(x)·max(|x| − θ, 0): shrink towards zero, and anything within θ of zero becomes zero."),
    Exercise("10", 2, "The Lipschitz constant L of ∇½‖y − Dx‖² for D = diag(1, 2)", "number", _lipschitz_diag,
             "L is the largest eigenvalue of DᵀD, i.e. the squared largest singular value of D."),
    Exercise("10", 3, "Change one line: ISTA with λ = 0, D = I, y = [1, 0, 2], one step from x = 0. How many entries of x are zero?",
             "integer", _ista_lambda_zero_zeros, "With λ = 0 the threshold vanishes: one gradient step with step 1/L on D = I lands on y."),
    Exercise("11", 1, "Learnable parameters of a convolutional dictionary of 64 atoms of 5×5 for a one-channel image (no bias)",
             "integer", _dictionary_parameters, "One k×k kernel per atom, one input channel per atom."),
    Exercise("11", 2, "Multiply-adds of a 'same'-padded 3×3 convolution of a 64×64 map (1 channel in, 1 out)", "integer",
             _same_conv_multiply_adds, "Every output pixel costs one multiply-add per kernel tap; 'same' keeps 64×64 outputs."),
    Exercise("20", 1, "The (0, 0) entry of (I + u uᵀ)⁻¹ for u = [1, 1]ᵀ (Sherman–Morrison)", "number", _sherman_morrison_00,
             "(I + u uᵀ)⁻¹ = I − u uᵀ / (1 + uᵀu)."),
    Exercise("20", 2, "Change one line: build the atom's transfer function with a 1-D FFT along the width (the official code). "
             "Is circular correlation still conj(OTF)·FFT in the 2-D Fourier domain? (True/False)", "bool", _one_d_fft_still_convolves,
             "The convolution theorem for 2-D circular convolution needs the 2-D transform of both operands."),
    Exercise("20", 3, "How many unknowns does Eq. 8's dictionary step solve for with 64 atoms of 5×5 (one channel)?", "integer",
             _unknowns_eq8, "One unknown per atom pixel: C·k²."),
    Exercise("21", 1, "PSNR (dB) of a reconstruction whose MSE is 0.01 on images in [0, 1]", "number", _psnr_mse,
             "PSNR = 10·log10(MAX² / MSE) with MAX = 1."),
    Exercise("21", 2, "JSRL reconstructs IR at 27.2 dB and the frozen dictionary at 23.2 dB: by what factor is the second MSE larger?",
             "number", _mse_ratio, "A PSNR difference of Δ dB is an MSE ratio of 10^(Δ/10)."),
    Exercise("30", 1, "Hazy intensity I for J = 0.2, t = 0.5, A = 1", "number", _scatter, "I = J·t + A·(1 − t)."),
    Exercise("30", 2, "Recover J from I = 0.8, A = 1, t = 0.4", "number", _recover, "Solve I = J·t + A·(1 − t) for J."),
    Exercise("30", 3, "Dark channel (3×3 window) at the centre of a 3×3 RGB image that is 0.7 everywhere except one blue value of 0.1",
             "number", _dark_channel, "The dark channel is the minimum over the window's pixels and over the colour channels."),
    Exercise("31", 1, "Parameters of nn.Linear(256, 64)", "integer", _linear_parameters, "A weight per input–output pair, plus one bias per output."),
    Exercise("31", 2, "GFLOPs of a 3×3 convolution, 64 → 64 channels, on a 256×256 map (no bias; a multiply-add counts 2)",
             "number", _conv_gflops, "2 · k² · C_in · C_out · H · W."),
    Exercise("31", 3, "Change one line: IASSF(blocks=7) instead of 5. Predict the extra parameters in M (two decimals)",
             "number", _iassf_extra_blocks, "Count one fusion block's parameters in §1's table and multiply by two.", 0.05),
    Exercise("40", 1, "The cosine similarity of [1, 0] and [1, 1]", "number", _cosine, "cos θ = a·b / (‖a‖‖b‖)."),
    Exercise("40", 2, "The directional loss 1 − cos(Δ_image, Δ_text) for Δ_image = [1, 1], Δ_text = [0, 1]", "number", _directional,
             "Compute the cosine of the two directions first."),
    Exercise("40", 3, "Entropy (bits) of a patch with four grey levels, equally frequent (Eq. 17's filter)", "number",
             _four_level_entropy, "Four equiprobable levels: −4 · ¼ · log2 ¼."),
]}


def expected(notebook: str, exercise: int) -> Any:
    """The expected answer (for tests and teachers; the notebooks call :func:`check`)."""
    return _get(notebook, exercise).compute()


def _get(notebook: str, exercise: int) -> Exercise:
    key = (str(notebook).split("_")[0], int(exercise))
    if key not in EXERCISES:
        known = ", ".join(str(n) for (nb, n) in EXERCISES if nb == key[0]) or "none"
        raise KeyError(f"no exercise {key[1]} for notebook {key[0]} (its exercises: {known})")
    return EXERCISES[key]


def _matches(e: Exercise, answer: Any, want: Any) -> bool:
    if e.answer_kind == "bool":
        return isinstance(answer, (bool, np.bool_)) and bool(answer) == want
    if e.answer_kind == "integer":
        return isinstance(answer, (int, np.integer)) and not isinstance(answer, bool) and int(answer) == want
    if e.answer_kind == "vector":
        try:
            a = np.asarray(answer, dtype=float).ravel()
        except (TypeError, ValueError):
            return False
        return a.shape == np.shape(want) and np.allclose(a, want, rtol=e.tolerance, atol=e.tolerance)
    try:
        return math.isclose(float(answer), float(want), rel_tol=e.tolerance, abs_tol=e.tolerance)
    except (TypeError, ValueError):
        return False


def check(notebook: str, exercise: int, answer: Any) -> bool:
    """Print whether ``answer`` is right (with a hint when it is not); return it as a bool. ``None``
    means "not answered yet" (the notebooks' placeholder): a reminder, never an error."""
    e = _get(notebook, exercise)
    tag = f"{e.notebook} · exercise {e.number}"
    if answer is None:
        print(f"{tag}: no answer yet — set `answer` and run the cell again. Hint: {e.hint}")
        return False
    ok = _matches(e, answer, e.compute())
    print(f"{tag}: {'right ✓' if ok else 'not yet ✗ — hint: ' + e.hint}")
    return ok
