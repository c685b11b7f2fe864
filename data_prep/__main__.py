"""Fetch, import and verify the public IR–VIS datasets in fusionlib's layout.

    python -m data_prep list
    python -m data_prep download NAME [--root DIR] [--from LOCAL] [--force]
    python -m data_prep verify [NAME ...] [--root DIR]

``download`` fetches the declared archive (``data_prep/sources.py``) into ``<root>/.downloads/``,
or imports from ``--from`` (an extracted folder or a ``.zip``), then copies the files byte for byte
into a staging folder beside the target, records their sha256 in ``CHECKSUMS.sha256``, decodes
every image, and only then swaps the staging folder in for ``<root>/<name>/``: a failure at any
point leaves an existing copy untouched. A cached archive that is not a readable zip is deleted
and fetched again. ``verify`` checks layout, pairing, sizes, counts against the full release, the
checksums of ``<name>/CHECKSUMS.sha256`` or of a root ``MANIFEST.sha256`` (the sample data keeps
them there), and decodes every image, naming each bad file. The root defaults to
``$FUSIONLIB_DATA`` or ``./data``.
"""

from __future__ import annotations

import argparse
import os
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
        problem = zip_problem(target)
        if problem is None:
            return target
        print(f"data_prep: the cached {target} is unusable ({problem}); deleting it and downloading again",
              file=sys.stderr)
        target.unlink()
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
            problem = zip_problem(part)
            if problem:
                raise OSError(f"the download is not a readable zip ({problem})")
            part.replace(target)
            return target
        except OSError as exc:
            errors.append(f"{url}: {exc}")
            part.unlink(missing_ok=True)
    raise PrepError(f"could not download {source.name} ({'; '.join(errors)}). By hand: {source.manual}")


def zip_problem(path: Path) -> str | None:
    """Why ``path`` is not a complete, readable zip (every member's CRC is checked), or None."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if bad is None else f"member {bad} fails its CRC check"


def _archive_root(folder: Path) -> Path:
    """GitHub archives wrap everything in one top folder; step into it."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def _swap_in(stage: Path, dest: Path) -> None:
    """Replace ``dest`` by ``stage`` with two renames on one file system; the old copy is deleted
    only once the new one is in place (a kill between the renames leaves it as ``.<name>.old-*``,
    which :func:`recover` puts back)."""
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    if dest.exists():
        os.rename(dest, old)
    os.rename(stage, dest)
    shutil.rmtree(old, ignore_errors=True)


def recover(root: Path, name: str) -> None:
    """Undo an interrupted import: drop stale staging folders, and restore a previous copy that a
    kill left renamed aside (``.<name>.old-*``) when ``<root>/<name>`` is missing."""
    for stale in root.glob(f".{name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
    olds = sorted(root.glob(f".{name}.old-*"))
    if olds and not (root / name).exists():
        os.rename(olds[0], root / name)
        olds = olds[1:]
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)


def refuse_existing(dest: Path, force: bool) -> None:
    """A non-empty ``dest`` is replaced only with ``--force``."""
    if dest.exists() and any(dest.iterdir()) and not force:
        raise PrepError(f"{dest} already exists; pass --force to replace it")


def import_source(source: Source, local: Path, root: Path, force: bool = False) -> dict[str, int]:
    """Copy a source's files from an extracted folder or a zip into ``<root>/<name>/``; returns pairs per split.

    Everything is written into ``<root>/.<name>.staging-*`` and checked (every split has pairs, every
    image decodes) before it replaces ``<root>/<name>``; on any error the staging folder is removed and
    an existing copy stays as it was.
    """
    root.mkdir(parents=True, exist_ok=True)
    recover(root, source.name)
    dest = root / source.name
    refuse_existing(dest, force)
    if local.is_file() and local.suffix == ".zip":
        problem = zip_problem(local)
        if problem:
            cached = local.parent.name == ".downloads"
            raise PrepError(f"{local} is not a readable zip ({problem}); "
                            + ("run the download again, it fetches a fresh copy" if cached else "delete it and fetch it again"))
    elif not local.is_dir():
        raise PrepError(f"--from {local}: not a folder or a .zip file")
    stage = Path(tempfile.mkdtemp(prefix=f".{source.name}.staging-", dir=root))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if local.is_file():
                with zipfile.ZipFile(local) as zf:
                    zf.extractall(tmp)
                base = _archive_root(Path(tmp))
            else:
                base = _archive_root(local)
            counts = _copy_layout(source, local, base, stage)
        _swap_in(stage, dest)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return counts


def _copy_layout(source: Source, local: Path, base: Path, stage: Path) -> dict[str, int]:
    """Copy ``base``'s files into ``stage`` in our layout, write ``CHECKSUMS.sha256``, check every split."""
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
            if not files:
                raise PrepError(f"{local}: no images in {src} for {source.name}/{split}/{modality}")
            out = stage / split / modality
            out.mkdir(parents=True, exist_ok=True)
            for p in tqdm(files, desc=f"{source.name}/{split}/{modality}", leave=False):
                shutil.copyfile(p, out / p.name)
                lines.append(f"{file_checksum(out / p.name)}  {split}/{modality}/{p.name}")
        try:
            counts[split] = len(find_pairs(stage / split, tuple(folders), deep=True))
        except PairingError as exc:
            raise PrepError(f"{local}: {source.name}/{split} is not usable, nothing was replaced.\n{exc}") from None
    (stage / "CHECKSUMS.sha256").write_text("\n".join(sorted(lines, key=lambda s: s[66:])) + "\n")
    return counts


def _manifest(root: Path, dataset: str) -> tuple[Path, dict[str, str]] | None:
    """(manifest file, {path relative to the dataset: sha256}) from ``<dataset>/CHECKSUMS.sha256``,
    else from the root's ``MANIFEST.sha256`` (its lines under ``<dataset>/``), else None."""
    own, shared = root / dataset / "CHECKSUMS.sha256", root / "MANIFEST.sha256"
    if own.is_file():
        lines, prefix, path = own.read_text().splitlines(), "", own
    elif shared.is_file():
        lines, prefix, path = shared.read_text().splitlines(), f"{dataset}/", shared
    else:
        return None
    sums = {}
    for line in lines:
        digest, _, rel = line.partition("  ")
        if rel.startswith(prefix):
            sums[rel[len(prefix):]] = digest
    return (path, sums) if sums or path == own else None  # an empty own file is reported as empty, not as absent


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
            n = len(find_pairs(folder, deep=True))
        except (PairingError, FileNotFoundError) as exc:
            problems.append(f"{dataset}/{split}: {exc}")
            continue
        expected = SOURCES[dataset].expected.get(split) if dataset in SOURCES else None
        note = "" if expected is None else (
            "full release" if n == expected else f"subset: {n} of the {expected} pairs of the full release")
        print(f"ok  {dataset}/{split}: {n} pairs, every image decodes" + (f" ({note})" if note else ""))
    for dataset in sorted({d for d, _ in present}):
        found = _manifest(root, dataset)
        if found is None:
            print(f"note {dataset}: no checksums recorded (no {dataset}/CHECKSUMS.sha256 nor a root MANIFEST.sha256 "
                  "entry); content checked by decoding only")
            continue
        sums_file, sums = found
        if not sums:
            problems.append(f"{dataset}: {sums_file} is empty: no checksum to verify against (rewrite it with "
                            f"`python -m data_prep download {dataset} --force`, or delete it to check by decoding only)")
            continue
        bad = [rel for rel, digest in tqdm(sorted(sums.items()), desc=f"sha256 {dataset}", leave=False)
               if not (root / dataset / rel).is_file() or file_checksum(root / dataset / rel) != digest]
        # every file of the dataset must be listed: an unlisted one (a changed image whose line was removed,
        # an extra pair) would otherwise pass unverified
        unlisted = sorted(p.relative_to(root / dataset).as_posix() for p in (root / dataset).rglob("*")
                          if p.is_file() and p.name != sums_file.name and not p.name.startswith(".")
                          and p.relative_to(root / dataset).as_posix() not in sums)
        if bad:
            problems.append(f"{dataset}: {len(bad)} file(s) missing or changed since {sums_file.name} was written: "
                            + ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else ""))
        if unlisted:
            problems.append(f"{dataset}: {len(unlisted)} file(s) not listed in {sums_file.name} (added, or their line "
                            "removed, since it was written): " + ", ".join(unlisted[:10])
                            + (f" and {len(unlisted) - 10} more" if len(unlisted) > 10 else ""))
        if not bad and not unlisted:
            print(f"ok  {dataset}: {len(sums)} checksums match {sums_file.relative_to(root)}, and every file is listed")
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
            refuse_existing(root / args.name, args.force)  # before a download, not after it
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
