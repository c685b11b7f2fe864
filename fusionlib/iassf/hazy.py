"""Hazy training triplets synthesised from clear IR–VIS pairs (IASSF §3.7 and issue 6's data).

IASSF trains on hazy MSRS triplets it does not release, made with a recipe it does not publish.
:func:`hazify` applies the recipe fitted to its released test images
(:func:`fusionlib.data.haze.synthesize_haze`) to any clear split — MSRS or RoadScene train, or the
RoadScene/M3FD test sets for the generalisation tables — and writes the triplets in the hazy layout
(``ir/``, ``vi_hazy/``, ``vi_clear/``, all PNG), with each image's A, t̄ and spread in
``haze.csv``. Image ``i`` uses seed ``seed * 100_003 + i``; the folder is written once and re-used.
"""

from __future__ import annotations

import csv
import io as _io
import json
from pathlib import Path

from fusionlib.data import checksum_samples, find_pairs
from fusionlib.data.haze import A_RANGE, SPREAD_RANGE, T_MEAN_RANGE, synthesize_haze
from fusionlib.io import read_image, to_array, to_tensor, write_image
from fusionlib.paths import cache_root
from fusionlib.io import atomic_write

__all__ = ["hazify"]


def hazify(folder: str | Path, dest: str | Path | None = None, *, seed: int = 0) -> Path:
    """Write hazy triplets for every clear pair of ``folder`` (a split with ``ir/`` and ``vi/``).

    Returns the destination, by default ``<cache>/hazy/<dataset>_<split>_s<seed>_<data checksum>``.
    Nothing is rewritten when the destination already holds the same source data and seed.

    Derived in ``notebooks/30_iassf_haze_physics.ipynb`` §4.
    """
    folder = Path(folder)
    samples = find_pairs(folder, ("ir", "vi"))
    checksum = checksum_samples(samples)
    settings = {"source": folder.as_posix(), "data_checksum": checksum, "seed": seed,
                "recipe": {"A": A_RANGE, "t_mean": T_MEAN_RANGE, "spread": SPREAD_RANGE, "field": "radial"}}
    dest = Path(dest) if dest else cache_root() / "hazy" / f"{folder.parent.name}_{folder.name}_s{seed}_{checksum[:8]}"
    marker = dest / "settings.json"
    if marker.is_file() and json.loads(marker.read_text()) == json.loads(json.dumps(settings)):
        return dest
    rows = []
    for i, s in enumerate(samples):
        name = Path(s.name).stem + ".png"
        clear = read_image(s.paths["vi"], "RGB")
        haze = synthesize_haze(to_tensor(clear), seed=seed * 100_003 + i)
        write_image(dest / "ir" / name, read_image(s.paths["ir"], "L"))
        write_image(dest / "vi_clear" / name, clear)
        write_image(dest / "vi_hazy" / name, to_array(haze.hazy[0]))
        rows.append({"image": name, "A": f"{float(haze.A):.6f}", "t_mean": f"{float(haze.t_mean[0]):.6f}",
                     "spread": f"{float(haze.spread[0]):.6f}"})
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["image", "A", "t_mean", "spread"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(dest / "haze.csv", buf.getvalue())
    atomic_write(marker, json.dumps(settings, indent=2))
    return dest

