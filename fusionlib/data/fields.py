"""Smooth random fields shared by the synthetic scenes and the haze synthesis."""

from __future__ import annotations

import numpy as np

__all__ = ["smooth_field"]


def smooth_field(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """White noise low-passed by a Gaussian of std ``sigma`` pixels, scaled to [−1, 1], ``h×w`` float64.

    The filter is applied in the Fourier domain (periodic boundary), where a Gaussian of std
    sigma is exp(−2 π² σ² |f|²).
    """
    noise = rng.standard_normal((h, w))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    field = np.fft.ifft2(np.fft.fft2(noise) * np.exp(-2 * np.pi ** 2 * sigma ** 2 * (fx ** 2 + fy ** 2))).real
    return field / (np.abs(field).max() + 1e-12)
