"""Fetch, import and verify the public IR–VIS datasets in fusionlib's layout.

    python -m data_prep list
    python -m data_prep download NAME [--root DIR] [--from LOCAL] [--force]
    python -m data_prep verify [NAME ...] [--root DIR]

``download`` fetches the declared archive (``data_prep/sources.py``) into ``<root>/.downloads/``,
or imports from ``--from`` (an extracted folder or a ``.zip``), then copies the files byte for byte
into ``<root>/<name>/<split>/<modality>/`` and records their sha256 in
``<root>/<name>/CHECKSUMS.sha256``. ``verify`` checks layout, pairing, sizes, counts against the
full release, and the recorded checksums. The root defaults to ``$FUSIONLIB_DATA`` or ``./data``.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from data_prep.sources import SOURCES, Source
from fusionlib.data import PairingError, file_checksum, find_pairs, list_datasets
from fusionlib.io import SUPPORTED_SUFFIXES
from fusionlib.paths import data_root


class PrepError(RuntimeError):
    """A download, import or verification problem, stated for the user."""


def fetch(source: Source, cache: Path) -> Path:
    """Download the source's archive into ``cache`` (resumable by re-running) and return its path."""
    if not source.urls:
        raise PrepError(f"{source.name} has no automatic download: {source.manual}")
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{source.name}.zip"
    if target.is_file():
        return target
    errors = []
    for url in source.urls:
        part = target.with_suffix(".zip.part")
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as out, \
                    tqdm(total=int(resp.headers.get("Content-Length") or 0) or None, unit="B",
                         unit_scale=True, desc=f"download {source.name}") as bar:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
            part.replace(target)
            return target
        except OSError as exc:
            errors.append(f"{url}: {exc}")
            part.unlink(missing_ok=True)
    raise PrepError(f"could not download {source.name} ({'; '.join(errors)}). By hand: {source.manual}")


def _archive_root(folder: Path) -> Path:
    """GitHub archives wrap everything in one top folder; step into it."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def import_source(source: Source, local: Path, root: Path, force: bool = False) -> dict[str, int]:
    """Copy a source's files from an extracted folder or a zip into ``<root>/<name>/``; returns pairs per split."""
    dest = root / source.name
    if dest.exists() and any(dest.iterdir()) and not force:
        raise PrepError(f"{dest} already exists; pass --force to replace it")
    with tempfile.TemporaryDirectory() as tmp:
        if local.is_file() and local.suffix == ".zip":
            with zipfile.ZipFile(local) as zf:
                zf.extractall(tmp)
            base = _archive_root(Path(tmp))
        elif local.is_dir():
            base = _archive_root(local)
        else:
            raise PrepError(f"--from {local}: not a folder or a .zip file")
        if dest.exists():
            shutil.rmtree(dest)
        counts = {}
        lines = []
        for split, folders in source.splits.items():
            keep = set(source.split_names.get(split, ()))
            others = set().union(*(source.split_names[s] for s in source.split_names if s != split)) \
                if source.split_names else set()
            for modality, candidates in folders.items():
                src = next((base / c for c in candidates if (base / c).is_dir()), None)
                if src is None:
                    raise PrepError(f"{local}: none of {', '.join(candidates)} found for {source.name}/{split}/"
                                    f"{modality} (under {base})")
                files = [p for p in sorted(src.iterdir()) if p.suffix.lower() in SUPPORTED_SUFFIXES]
                if keep:
                    files = [p for p in files if p.stem in keep]
                elif others:
                    files = [p for p in files if p.stem not in others]
                out = dest / split / modality
                out.mkdir(parents=True, exist_ok=True)
                for p in tqdm(files, desc=f"{source.name}/{split}/{modality}", leave=False):
                    shutil.copyfile(p, out / p.name)
                    lines.append(f"{file_checksum(out / p.name)}  {split}/{modality}/{p.name}")
            counts[split] = len(find_pairs(dest / split, tuple(folders)))
    (dest / "CHECKSUMS.sha256").write_text("\n".join(sorted(lines, key=lambda s: s[66:])) + "\n")
    return counts


def verify(root: Path, names: list[str] | None = None) -> list[str]:
    """Problems found (empty list = all good); prints one line per split checked."""
    problems = []
    present = list_datasets(root)
    if names:
        missing = [n for n in names if n not in {d for d, _ in present}]
        problems += [f"{n}: not found under {root} (python -m data_prep download {n})" for n in missing]
        present = [(d, s) for d, s in present if d in names]
    if not present and not problems:
        problems.append(f"no dataset in {root} (expected <root>/<dataset>/<split>/ir ...)")
    for dataset, split in present:
        folder = root / dataset / split
        try:
            n = len(find_pairs(folder))
        except (PairingError, FileNotFoundError) as exc:
            problems.append(f"{dataset}/{split}: {exc}")
            continue
        expected = SOURCES[dataset].expected.get(split) if dataset in SOURCES else None
        note = "" if expected is None else (
            "full release" if n == expected else f"subset: {n} of the {expected} pairs of the full release")
        print(f"ok  {dataset}/{split}: {n} pairs" + (f" ({note})" if note else ""))
    for dataset in sorted({d for d, _ in present}):
        sums = root / dataset / "CHECKSUMS.sha256"
        if not sums.is_file():
            continue
        bad = []
        for line in sums.read_text().splitlines():
            digest, rel = line.split("  ", 1)
            path = root / dataset / rel
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                bad.append(rel)
        if bad:
            problems.append(f"{dataset}: {len(bad)} file(s) missing or changed since import, e.g. {bad[:3]}")
        else:
            print(f"ok  {dataset}: checksums match {sums.name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the declared datasets")
    dl = sub.add_parser("download", help="download (or import with --from) one dataset")
    dl.add_argument("name", choices=sorted(SOURCES))
    dl.add_argument("--from", dest="local", type=Path, help="import from a local folder or .zip instead")
    dl.add_argument("--force", action="store_true", help="replace an existing <root>/<name>")
    ve = sub.add_parser("verify", help="check layout, pairing, counts and checksums")
    ve.add_argument("names", nargs="*")
    for p in (dl, ve):
        p.add_argument("--root", type=Path, default=None, help="data root (default: $FUSIONLIB_DATA or ./data)")
    args = parser.parse_args(argv)
    root = (args.root or data_root()) if args.command != "list" else None
    try:
        if args.command == "list":
            for s in SOURCES.values():
                how = "download" if s.urls else "manual"
                print(f"{s.name:10s} {how:8s} {s.cite}")
            return 0
        if args.command == "download":
            source = SOURCES[args.name]
            local = args.local or fetch(source, root / ".downloads")
            counts = import_source(source, local, root, force=args.force)
            print(f"{args.name}: " + ", ".join(f"{k} {v} pairs" for k, v in counts.items()) + f" in {root / args.name}")
            return 0
        problems = verify(root, args.names)
    except PrepError as exc:
        print(f"data_prep: {exc}", file=sys.stderr)
        return 1
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
