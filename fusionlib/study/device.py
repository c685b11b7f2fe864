"""One GPU call: pack what the ``gpu`` profile needs, run the papers in priority order, bring back one archive.

A lent GPU machine gets the tracked tree plus up to 64 MiB of carried files, nothing else: no
``../shared``, no network, and its Python has PyTorch but not papermill, kornia or open_clip. Its
minutes are few (15 per task, 10 per command), so everything is prepared here and run as one command:

    python -m fusionlib.study.device wheels                  # here, once: .device_wheels/ (needs the package registry)
    python -m fusionlib.study.device pack --wheels .device_wheels   # here: .device_pack/ (data, weights, wheels)
    # device tool: carry [".device_pack"], command "python3 -m fusionlib.study.device run --out $OUT --budget 540"
    python -m fusionlib.study.device unpack <files_at>/device_results.tar.gz*   # here: into reports/ and checkpoints/

Before the call, ``python -m fusionlib.study.device run --dry-run --out /tmp/dry`` runs the same papers, in the
same order and through the same code, on this CPU at the ``dry_run`` sizes of ``gpu.yaml``, into a
scratch folder (:func:`fusionlib.study.reproduce.run`'s dry run): a typo or a crash costs seconds here, not
the device's minutes. ``tests/test_device.py`` runs it for every paper.

- :func:`pack` copies an evenly spaced subset of each split the notebooks read (:data:`PACK_PAIRS`),
  the pretrained weights they load, and the Python wheels the device lacks (``python -m fusionlib.study.device
  wheels`` downloads them here for CPython 3.12 manylinux: :data:`WHEELS`), and refuses a data subset
  over 35 MiB or a carry (tracked tree + pack) over 64 MiB.
- :func:`run` installs the wheels into ``/tmp/site``, then runs each paper's notebooks (:func:`papers`,
  in the gpu profile's ``priority`` order) under the ``gpu`` profile while the budget lasts: a paper whose declared
  minutes (``budget:`` of ``gpu.yaml``) do not fit in what is left is skipped and said so, a failing
  notebook ends its paper and the next one starts. Everything a run writes (``reports/gpu``, the
  executed copies, the manifest and new checkpoints) goes into one ``device_results.tar.gz`` under
  ``--out``, split into parts of at most 15 MiB (the call brings back 8 files of 16 MiB), with
  ``device_summary.csv`` beside it.
- :func:`unpack` puts the archive's files back into the tree, refusing any path outside it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import yaml

# Only light imports at the top: on the device this module runs before the wheels it carries (kornia,
# papermill, ...) are installed, and fusionlib.io / fusionlib.data import kornia.
from fusionlib.paths import data_root, git_commit, project_root, weights_root

__all__ = ["papers", "PACK_PAIRS", "PACK_LIMIT_MIB", "WEIGHTS", "WHEELS", "pack", "run", "unpack", "main"]


# split -> pairs carried (0: all), evenly spaced as the notebooks pick theirs: 23.8 MiB of the sample data, so
# that the tracked tree (22.6 MiB), the weights (2.4 MiB) and the wheels (12.9 MiB) fit the call's 64 MiB
PACK_PAIRS = {"msrs/train": 20, "msrs/test": 5, "msrs_hazy/test": 6, "tno/test": 3, "roadscene/test": 0,
              "m3fd/test": 0, "ldfusion_demo/test": 0}
PACK_EXTRA = ("ldfusion_demo/authors",)  # folders carried whole (the authors' published outputs)
PACK_LIMIT_MIB = 35  # the data of one call (README "GPU")
CARRY_LIMIT_MIB = 64  # the tracked tree and everything carried, together
WEIGHTS = ("vgg19_normalised", "lrrnet", "niqe")  # folders of $FUSIONLIB_WEIGHTS the notebooks load
# requirements.txt pins the device's image lacks (it has torch, numpy, scipy, pandas, opencv, matplotlib, tqdm,
# yaml, statsmodels, sentence-transformers); not debugpy or jedi (ipykernel and IPython run without them)
WHEELS = ("kornia", "kornia_rs", "papermill", "nbformat", "nbclient", "ipykernel", "jupyter_client", "jupyter_core",
          "traitlets", "tornado", "pyzmq", "comm", "ipython", "matplotlib-inline", "nest-asyncio", "fastjsonschema",
          "jsonschema", "jsonschema-specifications", "referencing", "rpds-py", "ansicolors", "entrypoints", "tenacity",
          "open_clip_torch", "ftfy", "wcwidth", "decorator", "pexpect", "ptyprocess", "prompt-toolkit", "stack-data",
          "asttokens", "executing", "pure-eval", "platformdirs")
PART_BYTES = 15 * 2 ** 20
RESULTS = "device_results.tar.gz"
KEEP = ("reports/gpu", "reports/executed/gpu", "checkpoints")  # what a gpu run writes, relative to the project


def papers(notebooks_dir: str | Path | None = None, profile: str = "gpu") -> dict[str, tuple[str, ...]]:
    """Paper -> its notebooks' prefixes in the order they must run, the papers in the order the profile's
    ``priority`` gives them (else its ``budget``'s). The notebooks are the ``notebooks=`` of the paper's door
    (``fusionlib/<paper>/study.py``), read from its source, not imported: on the device this runs before the
    wheels the doors need are installed."""
    import ast
    notebooks_dir = Path(notebooks_dir or project_root() / "notebooks")
    spec = yaml.safe_load((notebooks_dir / "profiles" / f"{profile}.yaml").read_text()) or {}
    out = {}
    for paper in spec.get("priority") or list(spec.get("budget") or {}):
        door = Path(__file__).resolve().parents[1] / paper / "study.py"
        calls = [n for n in ast.walk(ast.parse(door.read_text())) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Paper"]
        given = [k.value for c in calls for k in c.keywords if k.arg == "notebooks"]
        if len(given) != 1:
            raise ValueError(f"{door}: expected one Paper(..., notebooks=(...)) call")
        out[paper] = tuple(ast.literal_eval(given[0]))
    return out


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def pack(out: str | Path = ".device_pack", *, data: str | Path | None = None, weights: str | Path | None = None,
         wheels: str | Path | None = None, limit_mib: float = PACK_LIMIT_MIB) -> dict:
    """Copy the gpu run's inputs into ``out`` (replaced): ``data/`` (:data:`PACK_PAIRS` of ``data``),
    ``weights/`` (:data:`WEIGHTS`), ``wheels/`` (every ``*.whl`` of ``wheels``, if given). Returns the
    sizes in MiB. Raises when a split is absent or the data exceed ``limit_mib``."""
    from fusionlib.data import evenly_spaced, find_pairs
    out, data, weights = Path(out), Path(data or data_root()), Path(weights or weights_root())
    stage = out.with_name(out.name + ".tmp")
    shutil.rmtree(stage, ignore_errors=True)
    for split, n in PACK_PAIRS.items():
        folder = data / split
        if not folder.is_dir():
            raise FileNotFoundError(f"pack: {folder} is absent; the gpu profile reads it (FUSIONLIB_DATA=../shared/data)")
        for sample in evenly_spaced(find_pairs(folder), n):
            for modality, path in sample.paths.items():
                target = stage / "data" / split / modality / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    for extra in PACK_EXTRA:
        if (data / extra).is_dir():
            shutil.copytree(data / extra, stage / "data" / extra)
    mib = _size(stage / "data") / 2 ** 20
    if mib > limit_mib:
        shutil.rmtree(stage)
        raise ValueError(f"pack: the data subset is {mib:.1f} MiB, over the {limit_mib} MiB a GPU call may carry; "
                         "lower PACK_PAIRS or carry fewer wheels")
    for name in WEIGHTS:
        if not (weights / name).is_dir():
            raise FileNotFoundError(f"pack: {weights / name} is absent (FUSIONLIB_WEIGHTS=../shared/weights)")
        shutil.copytree(weights / name, stage / "weights" / name)
    if wheels is not None:
        found = sorted(Path(wheels).glob("*.whl"))
        if not found:
            raise FileNotFoundError(f"pack: no .whl in {wheels} (python -m fusionlib.study.device wheels --to {wheels})")
        (stage / "wheels").mkdir(parents=True)
        for whl in found:
            shutil.copy2(whl, stage / "wheels" / whl.name)
    sizes = {part: _size(stage / part) / 2 ** 20 for part in ("data", "weights", "wheels") if (stage / part).exists()}
    tree = _tracked_mib()
    if tree + sum(sizes.values()) > CARRY_LIMIT_MIB:
        shutil.rmtree(stage)
        raise ValueError(f"pack: the tracked tree ({tree:.1f} MiB) and the pack ("
                         + ", ".join(f"{k} {v:.1f} MiB" for k, v in sizes.items())
                         + f") exceed the {CARRY_LIMIT_MIB} MiB one call carries; lower PACK_PAIRS or carry fewer wheels")
    # the device gets the tree without its git history: the commit its artefacts record comes from here
    (stage / "pack.json").write_text(json.dumps({"commit": git_commit(project_root()), "pairs": PACK_PAIRS, "MiB": sizes},
                                                indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    stage.rename(out)
    return sizes


def _tracked_mib() -> float:
    """What the call sends besides the pack: the files git tracks (0 outside a checkout)."""
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=project_root(), capture_output=True, check=True,
                               timeout=30).stdout.split(b"\0")
    except (OSError, subprocess.SubprocessError):
        return 0.0
    return sum((project_root() / n.decode()).stat().st_size for n in names if n and (project_root() / n.decode()).is_file()) / 2 ** 20


def wheel_command(to: str | Path) -> list[str]:
    """The pip command (run here, where pip reaches the registry) that downloads :data:`WHEELS` for
    the device's CPython 3.12 on x86-64, each pinned as ``requirements.txt`` pins it."""
    pins = {}
    for line in (project_root() / "requirements.txt").read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if version:
            pins[name.lower().replace("_", "-")] = version
    names = [f"{w}=={pins[w.lower().replace('_', '-')]}" if w.lower().replace("_", "-") in pins else w for w in WHEELS]
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
            "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
            "--platform", "manylinux2014_x86_64", "--platform", "any", "-d", str(to), *names]


def _install_wheels(pack_dir: Path) -> None:
    wheels = sorted((pack_dir / "wheels").glob("*.whl"))
    if not wheels:
        return
    site = Path("/tmp/site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--no-cache-dir", "--upgrade", "--target", str(site), *map(str, wheels)], check=True)
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))


def _declared_minutes(notebooks_dir: Path, profile: str) -> dict[str, float]:
    spec = yaml.safe_load((notebooks_dir / "profiles" / f"{profile}.yaml").read_text()) or {}
    return {paper: float(sum(minutes)) for paper, minutes in (spec.get("budget") or {}).items()}


def run(out: str | Path, *, budget_s: float = 540.0, pack_dir: str | Path = ".device_pack", profile: str = "gpu",
        papers: tuple[str, ...] | None = None, groups: dict[str, tuple[str, ...]] | None = None,
        notebooks_dir: str | Path | None = None, root: str | Path | None = None, device: str | None = None,
        dry_run: bool = False, scratch: str | Path | None = None) -> list[dict]:
    """Run ``papers`` (their notebook ``groups``) under ``profile`` while ``budget_s`` lasts and write
    ``<out>/device_results.tar.gz[.partNN]`` and ``<out>/device_summary.csv``; returns the summary rows
    (``paper, notebook, status, seconds, note``). Never raises for a notebook: its failure is a row.

    ``dry_run``: the same on the CPU at the profile's ``dry_run`` sizes, written into ``scratch``
    (default :func:`fusionlib.study.reproduce.dry_run_root`, made anew) instead of the tree; the archive
    holds the scratch folder's results under the same names."""
    root = Path(root or project_root())
    pack_dir = (root / pack_dir) if not Path(pack_dir).is_absolute() else Path(pack_dir)
    notebooks_dir = Path(notebooks_dir or root / "notebooks")
    groups = groups or globals()["papers"](notebooks_dir, profile)
    papers = papers or tuple(groups)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = {}
    if pack_dir.is_dir():
        _install_wheels(pack_dir)  # puts /tmp/site on this process's path and PYTHONPATH, before any heavy import
        env["FUSIONLIB_DATA"] = os.environ.get("FUSIONLIB_DATA", str(pack_dir / "data"))
        env["FUSIONLIB_WEIGHTS"] = os.environ.get("FUSIONLIB_WEIGHTS", str(pack_dir / "weights"))
        if (pack_dir / "pack.json").is_file():
            env["FUSIONLIB_COMMIT"] = json.loads((pack_dir / "pack.json").read_text())["commit"]
    # the notebooks' kernels start in notebooks/ and import fusionlib from the tree (it is not installed there)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    from fusionlib.study import reproduce
    scratch = Path(scratch or reproduce.dry_run_root(profile)).resolve() if dry_run else None
    with reproduce.environment(env):
        rows = _run_papers(papers, groups, budget_s, _declared_minutes(notebooks_dir, profile), profile, device,
                           notebooks_dir, root, scratch)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, ["paper", "notebook", "status", "seconds", "note"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (out / "device_summary.csv").write_text(buf.getvalue())
    reports = scratch if scratch is not None else root / "reports"
    _archive({f"reports/{profile}": reports / profile, f"reports/executed/{profile}": reports / "executed" / profile,
              "checkpoints": reports / "checkpoints" if scratch is not None else root / "checkpoints"}, out)
    return rows


def _run_papers(papers, groups, budget_s, minutes, profile, device, notebooks_dir, root, scratch=None) -> list[dict]:
    """``scratch``: a dry run's reports folder (made anew by its first notebook), else None."""
    from fusionlib.study import reproduce
    start, rows, first = time.perf_counter(), [], True
    for paper in papers:
        left = budget_s - (time.perf_counter() - start)
        need = minutes.get(paper, 0.0) * 60
        if need > left:
            rows.append({"paper": paper, "notebook": "", "status": "skipped", "seconds": 0.0,
                         "note": f"its {need / 60:g} declared minutes do not fit in the {left / 60:.1f} left"})
            continue
        for prefix in groups[paper]:
            t0 = time.perf_counter()
            try:
                done = reproduce.run(profile, only=prefix, device=device, notebooks_dir=notebooks_dir,
                                     reports_dir=scratch or root / "reports", progress=False,
                                     dry_run=scratch is not None, fresh=first)
                first = False
                rows.append({"paper": paper, "notebook": ", ".join(r["notebook"] for r in done), "status": "done",
                             "seconds": round(time.perf_counter() - t0, 1), "note": ""})
            except (reproduce.NotebookFailed, ValueError, FileNotFoundError) as exc:
                rows.append({"paper": paper, "notebook": prefix, "status": "failed",
                             "seconds": round(time.perf_counter() - t0, 1), "note": str(exc).splitlines()[0][:300]})
                break  # the paper's later notebooks depend on this one
    return rows


def _archive(sources: dict[str, Path], out: Path) -> list[Path]:
    """``{name in the archive (one of KEEP): folder}`` as one gzipped tar under ``out``, split into parts
    of at most :data:`PART_BYTES`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, folder in sources.items():
            if folder.exists():
                tar.add(folder, arcname=rel)
    data = buf.getvalue()
    for old in out.glob(RESULTS + "*"):
        old.unlink()
    if len(data) <= PART_BYTES:
        (out / RESULTS).write_bytes(data)
        return [out / RESULTS]
    parts = []
    for i in range(0, len(data), PART_BYTES):
        parts.append(out / f"{RESULTS}.part{i // PART_BYTES:02d}")
        parts[-1].write_bytes(data[i:i + PART_BYTES])
    if len(parts) > 7:  # 8 files come back, one of them the summary
        raise ValueError(f"the results are {len(data) / 2 ** 20:.0f} MiB: more than 7 parts of 15 MiB come back")
    return parts


def unpack(files: list[str | Path], root: str | Path | None = None) -> list[str]:
    """Extract a :func:`run` archive (its parts in order) into ``root``; only paths under :data:`KEEP`
    are accepted. Returns the extracted paths."""
    root = Path(root or project_root()).resolve()
    data = b"".join(Path(f).read_bytes() for f in sorted(map(str, files)))
    names = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            target = (root / member.name).resolve()
            if not any(target.is_relative_to(root / k) for k in KEEP) or member.issym() or member.islnk():
                raise ValueError(f"unpack: {member.name} is outside {', '.join(KEEP)}: refused")
            names.append(member.name)
        tar.extractall(root, filter="data")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusionlib.study.device", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="copy the gpu run's data, weights and wheels into one folder to carry")
    p.add_argument("--out", default=".device_pack")
    p.add_argument("--wheels", help="a folder of .whl files to carry (see the 'wheels' command)")
    w = sub.add_parser("wheels", help="download the wheels the device lacks (needs the package registry)")
    w.add_argument("--to", default=".device_wheels")
    r = sub.add_parser("run", help="on the device: the papers' gpu notebooks in priority order, one archive out")
    r.add_argument("--out", required=True)
    r.add_argument("--budget", type=float, default=540.0, help="seconds for all notebooks (default 540: 9 of 10 minutes)")
    r.add_argument("--pack", default=".device_pack")
    r.add_argument("--papers", help="comma-separated, in the order to run (default: the gpu profile's priority)")
    r.add_argument("--device", choices=("cpu", "cuda"), help="override the profile's device")
    r.add_argument("--dry-run", action="store_true",
                   help="here, before the call: the same papers on the CPU at the profile's dry_run sizes, into a scratch folder")
    u = sub.add_parser("unpack", help="here: put a run's archive back into the tree")
    u.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            sizes = pack(args.out, wheels=args.wheels)
            print(f"packed {args.out}: " + ", ".join(f"{k} {v:.1f} MiB" for k, v in sizes.items()))
        elif args.command == "wheels":
            return subprocess.run(wheel_command(args.to)).returncode
        elif args.command == "run":
            known = papers()
            chosen = tuple(p.strip() for p in (args.papers or ",".join(known)).split(",") if p.strip())
            unknown = [p for p in chosen if p not in known]
            if unknown:
                raise ValueError(f"unknown paper(s) {unknown}: use {', '.join(known)}")
            rows = run(args.out, budget_s=args.budget, pack_dir=args.pack, papers=chosen, device=args.device,
                       dry_run=args.dry_run)
            for r_ in rows:
                print(f"{r_['paper']:9s} {r_['status']:7s} {r_['seconds']:7.1f} s  {r_['notebook']} {r_['note']}")
        else:
            print("\n".join(unpack(args.files)))
    except (ValueError, FileNotFoundError) as exc:
        print(f"device: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
