"""Deterministic procedural IR–VIS scenes, so every notebook and test runs with no downloaded data.

Derived in ``notebooks/00_data_and_conventions.ipynb``, "Synthetic scenes". A scene has

- a **visible** image: sky with a colour gradient, textured ground (oriented sinusoids + smooth
  noise), buildings with window grids, and targets whose colour is close to the background
  (hard to see in VIS, as pedestrians at night are);
- an **infrared** image: smooth temperatures (cold sky, a vertical thermal gradient on the
  ground, lukewarm buildings) with little texture, and **warm targets** that stand out;
- **sensor noise**: Gaussian read noise in VIS (stronger at night, after gain), Gaussian noise plus
  fixed-pattern column noise in IR;
- **night** scenes: VIS dimmed to 10–25 % with a gamma and a few lamps; IR is unchanged;
- optional **misregistration** of IR by a sub-pixel shift (off by default).

Everything is drawn from ``numpy.random.default_rng(seed)``: one seed, one scene, bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from fusionlib.data import split_dir
from fusionlib.data.fields import smooth_field
from fusionlib.data.haze import synthesize_haze
from fusionlib.io import write_image
from fusionlib.paths import cache_root

__all__ = ["Scene", "make_scene", "materialize", "split_or_synthetic"]


@dataclass
class Scene:
    """``ir`` ``H×W`` and ``vis`` ``H×W×3`` float32 in [0, 1]; ``targets`` the warm-target mask."""
    ir: np.ndarray
    vis: np.ndarray
    targets: np.ndarray
    night: bool
    shift: tuple[float, float]


def make_scene(seed: int, size: tuple[int, int] = (240, 320), *, night: bool = False,
               misregistration: float = 0.0, noise: bool = True) -> Scene:
    """Draw one IR–VIS scene.

    Args:
        seed: the scene's seed.
        size: ``(H, W)``.
        night: dim the visible image (IR is thermal and does not care).
        misregistration: length in pixels of a random sub-pixel shift applied to IR (0 = aligned).
        noise: add sensor noise.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    v, u = yy / h, xx / w  # normalised coordinates in [0, 1)
    horizon = rng.uniform(0.3, 0.5)
    ground = v >= horizon

    # --- visible background ------------------------------------------------------------------
    sky_top, sky_bottom = np.array([0.35, 0.55, 0.85]), np.array([0.75, 0.82, 0.9])
    sky = sky_top + (sky_bottom - sky_top) * np.clip(v / horizon, 0, 1)[..., None]
    base = rng.uniform([0.25, 0.3, 0.15], [0.5, 0.5, 0.35])  # soil/grass/asphalt colour
    texture = np.zeros((h, w))
    for _ in range(3):  # oriented sinusoids: furrows, road marks, grass
        angle, freq = rng.uniform(0, np.pi), rng.uniform(0.05, 0.3)
        texture += np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
    texture = 0.06 * texture / 3 + 0.12 * smooth_field(rng, h, w, 6.0)
    vis = np.where(ground[..., None], base + texture[..., None], sky)
    # infrared background: cold sky, a vertical thermal gradient on the ground, little texture
    ir = np.where(ground, rng.uniform(0.3, 0.45) + 0.2 * (v - horizon) + 0.1 * smooth_field(rng, h, w, 12.0)
                  + 0.02 * texture, rng.uniform(0.08, 0.18) + 0.05 * v)

    # --- buildings: rectangles standing on the horizon, window grids in VIS ---------------------
    for _ in range(int(rng.integers(1, 4))):
        x0, bw = rng.uniform(0, 0.85), rng.uniform(0.08, 0.25)
        top = horizon - rng.uniform(0.1, horizon - 0.05)
        mask = (u >= x0) & (u < x0 + bw) & (v >= top) & (v < horizon + 0.02)
        colour = rng.uniform(0.3, 0.7, size=3)
        windows = (np.sin(2 * np.pi * xx / rng.uniform(6, 12)) > 0.3) & (np.sin(2 * np.pi * yy / rng.uniform(8, 14)) > 0.3)
        vis[mask] = colour * np.where(windows[mask], 0.6, 1.0)[:, None]
        ir[mask] = rng.uniform(0.35, 0.55) + 0.08 * windows[mask]

    # --- warm targets: people (tall ellipses) and vehicles (wide ellipses) on the ground --------
    targets = np.zeros((h, w), dtype=bool)
    for _ in range(int(rng.integers(2, 6))):
        person = rng.random() < 0.6
        ry, rx = (rng.uniform(0.06, 0.12), rng.uniform(0.015, 0.03)) if person else \
                 (rng.uniform(0.04, 0.07), rng.uniform(0.06, 0.12))
        cy, cx = rng.uniform(horizon + ry, 1.0 - ry / 2), rng.uniform(0.05, 0.95)
        mask = ((v - cy) / ry) ** 2 + ((u - cx) / rx) ** 2 <= 1
        targets |= mask
        # VIS: close to the local background colour, slightly darker: low contrast
        vis[mask] = vis[mask] * 0.85 + rng.uniform(-0.05, 0.05, size=3)
        # IR: warm, hottest in the middle (body core / engine)
        core = 1 - (((v - cy) / ry) ** 2 + ((u - cx) / rx) ** 2)
        ir[mask] = rng.uniform(0.7, 0.85) + 0.12 * core[mask]

    vis = np.clip(vis, 0, 1)
    read_noise = 0.005
    if night:  # dim, gamma, a few lamps; the camera's gain amplifies read noise
        vis = rng.uniform(0.1, 0.25) * vis ** 1.3
        for _ in range(int(rng.integers(1, 4))):
            cy, cx, r = rng.uniform(0.1, 0.6), rng.uniform(0, 1), rng.uniform(0.01, 0.03)
            glow = np.exp(-(((v - cy) ** 2 + ((u - cx) * w / h) ** 2) / (2 * r ** 2)))
            vis = vis + glow[..., None] * np.array([1.0, 0.9, 0.6])
        read_noise = 0.02
    shift = (0.0, 0.0)
    if misregistration > 0:
        angle = rng.uniform(0, 2 * np.pi)
        shift = (misregistration * np.sin(angle), misregistration * np.cos(angle))
        ir = ndimage.shift(ir, shift, order=1, mode="nearest")
    if noise:
        vis = vis + rng.normal(0, read_noise, size=vis.shape)
        ir = ir + rng.normal(0, 0.01, size=ir.shape) + rng.normal(0, 0.005, size=(1, w))  # column FPN
    return Scene(ir=np.clip(ir, 0, 1).astype(np.float32), vis=np.clip(vis, 0, 1).astype(np.float32),
                 targets=targets, night=night, shift=shift)


def materialize(folder: str | Path | None = None, *, n: int = 8, seed: int = 0,
                size: tuple[int, int] = (240, 320), night_fraction: float = 0.5,
                misregistration: float = 0.0, hazy: bool = False) -> Path:
    """Write ``n`` synthetic scenes as 8-bit PNGs in the dataset layout and return the folder.

    Scene ``i`` uses seed ``seed * 100_003 + i`` and is a night scene when ``i < n·night_fraction``
    (names ``0000N.png``, ``0005D.png`` ... as in MSRS). ``hazy=True`` writes ``ir/``,
    ``vi_hazy/`` and ``vi_clear/`` with haze from :func:`fusionlib.data.haze.synthesize_haze`;
    otherwise ``ir/`` and ``vi/``. The default folder is
    ``<cache>/synthetic[_hazy]/<settings>/`` (see :func:`fusionlib.paths.cache_root`). Writing is
    skipped when the folder already holds the same settings (``settings.json``).
    """
    settings = {"n": n, "seed": seed, "size": list(size), "night_fraction": night_fraction,
                "misregistration": misregistration, "hazy": hazy}
    if folder is None:
        tag = f"n{n}_s{seed}_{size[0]}x{size[1]}_night{night_fraction:g}_mis{misregistration:g}"
        folder = cache_root() / ("synthetic_hazy" if hazy else "synthetic") / tag
    folder = Path(folder)
    marker = folder / "settings.json"
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return folder
    for i in range(n):
        night = i < round(n * night_fraction)
        name = f"{i:04d}{'N' if night else 'D'}.png"
        scene = make_scene(seed * 100_003 + i, size, night=night, misregistration=misregistration)
        write_image(folder / "ir" / name, (scene.ir * 255).round().astype(np.uint8))
        vis8 = (scene.vis * 255).round().astype(np.uint8)
        if hazy:
            clear = torch.from_numpy(vis8.astype(np.float32) / 255).permute(2, 0, 1)[None]
            hazy_img = synthesize_haze(clear, seed=seed * 100_003 + i).hazy
            write_image(folder / "vi_clear" / name, vis8)
            write_image(folder / "vi_hazy" / name, hazy_img)
        else:
            write_image(folder / "vi" / name, vis8)
    marker.write_text(json.dumps(settings))
    return folder


def split_or_synthetic(dataset: str, split: str = "train", *, seed: int = 0, n: int = 12) -> Path:
    """``<data root>/<dataset>/<split>`` when it exists, else ``n`` synthetic scenes
    (:func:`materialize`): what every paper's training and evaluation glue falls back to without data."""
    folder = split_dir(dataset, split)
    return folder if folder.is_dir() else materialize(n=n, seed=seed)
