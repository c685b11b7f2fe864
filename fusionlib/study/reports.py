"""Reports: tables (paper / ours / Δ), figures, provenance sidecars and the artefact index.

Every notebook makes one :class:`Reporter` and writes through it, so that each artefact

- lands in ``reports/<profile>/<paper>/<name>.{csv,md,png}``, written atomically;
- gets a provenance sidecar ``<name>.provenance.json`` (commit, profile, parameters, data
  checksum, device, seed, package versions);
- is registered in its profile's index ``reports/<profile>/index.csv`` (columns
  ``artefact,notebook,paper,item,profile``; artefact paths relative to ``reports/``), one row per
  file, sorted, so the index of a re-run is byte-identical. One index per profile keeps a committed
  index (cpu, gpu, full) listing committed artefacts only; smoke's is regenerated and ignored.

Paper values are transcribed once into ``fusionlib/<paper>/paper_values.csv`` with columns
``table,row,metric,value,source`` (see ``docs/paper-values.md``); :meth:`Reporter.compare`
puts them beside ours with Δ = ours − paper.
"""

from __future__ import annotations

import csv
import fcntl
import glob
import io
import json
import math
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

import fusionlib
from fusionlib.io import atomic_write, write_image
from fusionlib.paths import git_commit, project_root, reports_root

__all__ = ["INDEX_COLUMNS", "PAPER_VALUE_COLUMNS", "read_index", "run_parameters", "register",
           "to_markdown", "load_paper_values", "compare_with_paper", "provenance", "image_grid", "Reporter"]

INDEX_COLUMNS = ["artefact", "notebook", "paper", "item", "profile"]
PAPER_VALUE_COLUMNS = ["table", "row", "metric", "value", "source"]
_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "kornia", "pandas", "opencv-python-headless",
             "pillow", "matplotlib", "papermill")


# ------------------------------------------------------------------ the index

def read_index(root: str | Path | None = None, profile: str | None = None) -> list[dict[str, str]]:
    """Rows of ``<reports>/<profile>/index.csv``, or of every profile's index when ``profile`` is
    None (sorted by profile, then artefact); empty where there is none."""
    root = Path(root or reports_root())
    paths = [root / profile / "index.csv"] if profile else sorted(root.glob("*/index.csv"))
    rows = []
    for path in paths:
        if not path.is_file():
            continue
        with open(path, newline="") as f:
            part = list(csv.DictReader(f))
        if part and list(part[0].keys()) != INDEX_COLUMNS:
            raise ValueError(f"{path} has columns {list(part[0].keys())}, expected {INDEX_COLUMNS}")
        rows += part
    return rows


def run_parameters(artefact: str, profile: str, root: str | Path | None = None) -> dict:
    """The ``parameters`` of the run that wrote ``<root>/<profile>/<artefact>`` (its provenance sidecar),
    or ``{}`` when it has none."""
    path = Path(root or reports_root()) / profile / Path(artefact).with_suffix(".provenance.json")
    return json.loads(path.read_text())["parameters"] if path.is_file() else {}


def register(rows: list[dict[str, str]], root: str | Path | None = None, *, drop: tuple[str, ...] = ()) -> None:
    """Insert or replace rows (keyed by ``artefact``) in their profiles' indexes, and remove the
    artefacts named in ``drop`` (``<profile>/…`` paths of files a run no longer writes), under a file
    lock, atomically."""
    root = Path(root or reports_root())
    for profile in sorted({r["profile"] for r in rows} | {d.split("/")[0] for d in drop}):
        folder = root / profile
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".index.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged = {r["artefact"]: r for r in read_index(root, profile)}
            merged.update({r["artefact"]: {k: r[k] for k in INDEX_COLUMNS} for r in rows if r["profile"] == profile})
            for gone in drop:
                merged.pop(gone, None)
            out = io.StringIO()
            writer = csv.DictWriter(out, INDEX_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(sorted(merged.values(), key=lambda r: r["artefact"]))
            atomic_write(folder / "index.csv", out.getvalue())


# ------------------------------------------------------------------ tables

def _fmt(value: Any, decimals: int) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.{decimals}f}"
    return str(value).replace("|", "\\|")  # a bare pipe would split the Markdown cell


def to_markdown(df: pd.DataFrame, decimals: int = 4) -> str:
    """A GitHub-flavoured Markdown table; floats with ``decimals`` fixed decimals, NaN as "—"."""
    frame = df.reset_index() if df.index.name or isinstance(df.index, pd.MultiIndex) else df
    header = [_fmt(str(c), decimals) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---"
                            for c in frame.columns) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, decimals) for v in row) + " |")
    return "\n".join(lines) + "\n"


def load_paper_values(paper: str) -> pd.DataFrame:
    """A paper's transcribed numbers, ``fusionlib/<paper>/paper_values.csv`` (its door's ``values_file``), as a
    DataFrame with :data:`PAPER_VALUE_COLUMNS`."""
    from fusionlib.study.registry import paper as door
    path = door(paper).values_file
    if not path.is_file():
        raise FileNotFoundError(f"no transcribed paper values: {path} (see docs/paper-values.md)")
    df = pd.read_csv(path, dtype={"table": str, "row": str, "metric": str, "source": str})
    if list(df.columns) != PAPER_VALUE_COLUMNS:
        raise ValueError(f"{path} has columns {list(df.columns)}, expected {PAPER_VALUE_COLUMNS}")
    dup = df[df.duplicated(["table", "row", "metric"], keep=False)]
    if len(dup):
        raise ValueError(f"{path} lists some (table, row, metric) twice: "
                         f"{dup[['table', 'row', 'metric']].drop_duplicates().values.tolist()}")
    return df


def compare_with_paper(ours: pd.DataFrame, paper_values: pd.DataFrame, table: str, *,
                       stand_ins: dict[str, str] | None = None) -> pd.DataFrame:
    """Put our numbers beside the paper's.

    Args:
        ours: wide table, index = the paper's row ids (e.g. method names), columns = metrics.
        paper_values: as from :func:`load_paper_values`.
        table: the paper's table id, e.g. ``"Table 3"``.

        stand_ins: ``{our dataset: the paper's}`` for rows ``<method>/<dataset>`` measured on a stand-in
            (e.g. ``{"RoadScene": "FLIR"}``): such a row is compared with the paper's
            ``<method>/FLIR`` and labelled ``<method>/RoadScene (paper: FLIR)``, never as FLIR.

    Returns:
        Long table with columns ``row, metric, paper, ours, delta`` (delta = ours − paper), in the
        paper's row order, then our extra rows; missing values are NaN. Where one of ours lies outside
        its metric's plausible range (:data:`fusionlib.metrics.PLAUSIBLE`) a ``flag`` column says so
        on that row: such a number describes a degenerate image and carries no verdict.
    """
    stand_ins = stand_ins or {}
    if stand_ins:
        def as_paper(row: str) -> str:
            method, _, dataset = str(row).rpartition("/")
            return f"{method}/{stand_ins[dataset]}" if method and dataset in stand_ins else str(row)
        labels = {as_paper(r): f"{str(r)} (paper: {stand_ins[str(r).rpartition('/')[2]]})"
                  for r in ours.index if as_paper(r) != str(r)}
        result = compare_with_paper(ours.rename(index=as_paper), paper_values, table)
        measured = result["ours"].notna()
        result.loc[measured, "row"] = result.loc[measured, "row"].map(lambda r: labels.get(r, r))
        return result
    pv = paper_values[paper_values["table"] == table]
    if pv.empty:
        raise ValueError(f"no paper values for {table!r}; tables transcribed: {sorted(paper_values['table'].unique())}")
    ours_long = ours.rename_axis("row").reset_index().melt(id_vars="row", var_name="metric", value_name="ours")
    ours_long["row"] = ours_long["row"].astype(str)
    merged = pv[["row", "metric", "value"]].rename(columns={"value": "paper"}).merge(
        ours_long, on=["row", "metric"], how="outer", sort=False)
    order = {k: i for i, k in enumerate(pv["row"].drop_duplicates())}
    merged["_o"] = merged["row"].map(lambda r: order.get(r, len(order)))
    merged = merged.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)
    merged["paper"] = merged["paper"].astype(float)
    merged["ours"] = merged["ours"].astype(float)
    merged["delta"] = merged["ours"] - merged["paper"]
    out = merged[["row", "metric", "paper", "ours", "delta"]]
    from fusionlib.metrics import implausible
    flags = [implausible(m, v) for m, v in zip(out["metric"], out["ours"])]
    return out.assign(flag=flags) if any(flags) else out


# ------------------------------------------------------------------ provenance

def provenance(*, notebook: str, paper: str, item: str, profile: str, parameters: dict, seed: int | None,
               device: str, data_checksum: str | None) -> dict:
    """The sidecar written next to every artefact."""
    versions = {"python": platform.python_version(), "fusionlib": fusionlib.__version__}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    dev = device
    if device.startswith("cuda"):
        import torch
        if torch.cuda.is_available():
            dev = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {"notebook": notebook, "paper": paper, "item": item, "profile": profile,
            "commit": git_commit(project_root()), "parameters": parameters, "seed": seed,
            "device": dev, "data_checksum": data_checksum, "packages": versions,
            "platform": f"{platform.system()} {platform.machine()}"}


def image_grid(rows: list[tuple[str, list]], columns: list[str], *, title: str = "", cell: tuple[float, float] = (2.3, 2.2)):
    """The qualitative-comparison figure of the paper notebooks: one row per ``(label, images)``, one
    column per name in ``columns``; each image a ``(1, C, H, W)`` tensor in [0, 1] (grey or RGB).
    Returns the matplotlib figure (save it with :meth:`Reporter.figure`)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(cell[0] * len(columns), cell[1] * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows):
        if len(images) != len(columns):
            raise ValueError(f"image_grid: row {label!r} has {len(images)} images for {len(columns)} columns")
        for c, img in enumerate(images):
            axes[r, c].imshow(img[0].detach().cpu().permute(1, 2, 0).squeeze(-1).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(columns[c], fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    return fig


class Reporter:
    """Writes one notebook's tables and figures into ``<reports>/<profile>/<paper>/``.

    Args:
        paper: sub-folder and paper id (``"foundation"``, ``"dcmif"``, ``"lrcfuse"``, ...).
        notebook: the notebook's stem, e.g. ``"00_data_and_conventions"``.
        profile: ``smoke``, ``gpu`` or ``full``.
        parameters: the notebook's resolved parameters (saved in every sidecar).
        seed, device: recorded in every sidecar.
        root: reports root; default :func:`fusionlib.paths.reports_root`.
    """

    def __init__(self, paper: str, notebook: str, profile: str = "smoke", *, parameters: dict | None = None,
                 seed: int | None = None, device: str = "cpu", root: str | Path | None = None):
        self.paper, self.notebook, self.profile = paper, notebook, profile
        self.parameters = dict(parameters or {})
        self.seed, self.device = seed, device
        self.root = Path(root or reports_root())
        self.dir = self.root / profile / paper
        self.data_checksum: str | None = None

    def set_data_checksum(self, checksum: str | dict[str, str]) -> None:
        """Record the data checksum(s) (:func:`fusionlib.data.checksum_samples`) for later artefacts."""
        self.data_checksum = checksum if isinstance(checksum, str) else json.dumps(checksum, sort_keys=True)

    def _finish(self, paths: list[Path], name: str, item: str, stale: tuple[Path, ...] = ()) -> None:
        side = provenance(notebook=self.notebook, paper=self.paper, item=item, profile=self.profile,
                          parameters=self.parameters, seed=self.seed, device=self.device,
                          data_checksum=self.data_checksum)
        side["artefacts"] = [p.name for p in paths]
        atomic_write(self.dir / f"{name}.provenance.json", json.dumps(side, indent=2, sort_keys=True, default=str) + "\n")
        register([{"artefact": p.relative_to(self.root).as_posix(), "notebook": self.notebook,
                   "paper": self.paper, "item": item, "profile": self.profile} for p in paths], self.root,
                 drop=tuple(p.relative_to(self.root).as_posix() for p in stale))

    def image(self, img, name: str, item: str) -> Path:
        """Write an image (a float tensor in [0, 1] or a uint8/uint16 array, :func:`fusionlib.io.write_image`)
        as ``<name>.png`` with its exact pixels (a model's output kept for others to compare against), its
        provenance sidecar and its index row; ``name`` may name a sub-folder (``"fused/00111D"``)."""
        path = write_image(self.dir / f"{name}.png", img)
        self._finish([path], name, item)
        return path

    def withdraw(self, *names: str) -> list[str]:
        """Remove this profile's artefacts ``<name>.*`` that this notebook wrote in an earlier run and no longer
        writes (a section the profile now skips), with their index rows, so that nothing downstream (the
        ledger, the report) reads a table of a model that no longer exists. Returns the removed files
        (relative to the reports root); files another notebook registered are left alone."""
        mine = {r["artefact"] for r in read_index(self.root, self.profile) if r["notebook"] == self.notebook}
        gone = []
        for name in names:
            files = sorted(self.dir.glob(f"{glob.escape(name)}.*"))
            rels = [p.relative_to(self.root).as_posix() for p in files]
            if not any(r in mine for r in rels):
                continue  # not this notebook's (or already withdrawn)
            for path, rel in zip(files, rels):
                if rel in mine or path.name == f"{name}.provenance.json":  # the artefacts and their sidecar
                    path.unlink()
                    gone.append(rel)
        if gone:
            register([], self.root, drop=tuple(gone))
        return gone

    def table(self, df: pd.DataFrame, name: str, item: str, *, decimals: int = 4, title: str | None = None,
              parquet: bool = False, markdown: bool = True) -> pd.DataFrame:
        """Write ``<name>.csv`` and ``<name>.md`` with fixed decimals and register both (and
        ``<name>.parquet``, full precision, with ``parquet=True``: per-image tables for pandas/arrow users).
        ``markdown=False`` skips the Markdown copy, for tables too long to read as one (the benchmark's
        per-image scores and paired tests: megabytes nobody pages through on GitHub).

        ``item`` is the paper's label ("Table 3") or ``"new: <what>"`` for tables of our own: a
        stable id for the index. ``title`` (default: ``item``) heads the Markdown and may carry the
        run's caveats (sizes, untrained loss networks, ...). A labelled index (anything but the
        default 0 … n−1) is written as the first column, named ``row`` when it has no name.
        """
        labelled = df.index.name or isinstance(df.index, pd.MultiIndex) or not isinstance(df.index, pd.RangeIndex)
        frame = (df if df.index.name or isinstance(df.index, pd.MultiIndex) else df.rename_axis("row")).reset_index() if labelled else df
        csv_text = frame.to_csv(index=False, float_format=f"%.{decimals}f", lineterminator="\n")
        paths = [atomic_write(self.dir / f"{name}.csv", csv_text)]
        stale: tuple[Path, ...] = ()
        if markdown:
            paths.append(atomic_write(self.dir / f"{name}.md", f"**{title or item}** ({self.paper}, profile {self.profile})\n\n"
                                      + to_markdown(frame, decimals)))
        elif (self.dir / f"{name}.md").exists():  # an earlier run's copy would no longer match the CSV
            (self.dir / f"{name}.md").unlink()
            stale = (self.dir / f"{name}.md",)
        if parquet:
            buf = io.BytesIO()
            frame.to_parquet(buf, index=False)
            paths.append(atomic_write(self.dir / f"{name}.parquet", buf.getvalue()))
        self._finish(paths, name, item, stale)
        return df

    def compare(self, ours: pd.DataFrame, table: str, name: str, *, decimals: int = 4,
                title: str | None = None, stand_ins: dict[str, str] | None = None) -> pd.DataFrame:
        """:func:`compare_with_paper` against this paper's transcribed values, written as a table
        (``title`` as in :meth:`table`: the paper's label plus the run's caveats; ``stand_ins`` as
        in :func:`compare_with_paper`)."""
        result = compare_with_paper(ours, load_paper_values(self.paper), table, stand_ins=stand_ins)
        self.table(result, name, table, decimals=decimals, title=title)
        return result

    def figure(self, fig, name: str, item: str, *, dpi: int = 110) -> Path:
        """Save a matplotlib figure as ``<name>.png`` (no timestamp metadata, so re-runs are identical;
        in the committed profiles Pillow's optimised deflate: the same pixels in about 13 % fewer bytes, the
        tree's size limit; the smoke run's local figures, never committed, skip that slower encoder)."""
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None},
                    pil_kwargs={"optimize": self.profile != "smoke"})
        path = atomic_write(self.dir / f"{name}.png", buf.getvalue())
        self._finish([path], name, item)
        return path
