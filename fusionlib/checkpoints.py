"""Trained checkpoints of this project: one manifest, weights-only files, checked on every load.

``checkpoints/MANIFEST.csv`` (committed) has one row per checkpoint: what it is (name, paper,
variant), the file and its sha256/bytes/dtype, how it was made (steps, epochs, wall seconds,
device, profile, commit, data checksum, loss network), the ``command`` that regenerates it, and
notes. Files are plain state dicts of tensors (no optimiser, no pickled objects), fp16 by default.

Where a file lives (:data:`COMMIT_LIMIT_BYTES`): a checkpoint of at most 2 MB is committed beside
the manifest in ``checkpoints/``; a larger one is written to ``checkpoints/large/`` (git-ignored)
and only its manifest row is committed. :func:`load` looks in ``checkpoints/``, then
``checkpoints/large/``, then ``$FUSIONLIB_WEIGHTS/trained/`` (where verified copies of the large
files are provided), and refuses a file whose sha256 differs from its row. Training is seeded and
repeats bit for bit on one machine with one thread count; elsewhere floating-point summation order
differs and a regenerated file gets another sha256 (README "Trained checkpoints"; DCMIF, whose
dictionary solve amplifies it: docs/dcmif.md#why-a-regenerated-dcmif-checkpoint-differs), so it
is recorded as a new row rather than passed off as the old one.

Every error is one line naming the checkpoint, the file and what is wrong
(:class:`CheckpointError`): not in the manifest, file missing, checksum mismatch, not a state dict,
missing / unexpected / mis-shaped keys.

Explained in ``README.md`` section "Trained checkpoints". The paper notebooks look up their
paper's checkpoint with :func:`trained_model` and add its row to their tables; the training issues
record new checkpoints with :func:`save`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch

from fusionlib.data import file_checksum
from fusionlib.io import atomic_write
from fusionlib.paths import git_commit, project_root, weights_root

__all__ = ["COMMIT_LIMIT_BYTES", "MANIFEST_COLUMNS", "CheckpointError", "Entry", "checkpoints_dir", "manifest",
           "rename_key", "key_mismatch", "save", "find", "load", "load_into", "available", "describe", "trained_model", "row_note"]

COMMIT_LIMIT_BYTES = 2_000_000  # the tracked tree travels to a GPU machine (≤ 64 MiB with data): ≤ 2 MB per file


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a one-line reason."""


@dataclass
class Entry:
    """One manifest row (all strings in the CSV; numbers are written as measured)."""
    name: str
    paper: str
    variant: str
    file: str
    sha256: str
    bytes: int
    dtype: str
    steps: int
    epochs: int
    wall_seconds: float
    device: str
    profile: str
    commit: str
    data_checksum: str
    loss_network: str
    command: str
    model: str
    notes: str

    def model_kwargs(self) -> dict:
        """The keyword arguments that rebuild the architecture (the ``model`` column, JSON)."""
        return json.loads(self.model or "{}")

    @property
    def notebook(self) -> str:
        """The notebook prefix its ``command`` runs (``make reproduce … ONLY=42_`` → ``"42_"``), or ""."""
        found = re.search(r"ONLY=(\S+)", self.command or "")
        return found.group(1) if found else ""


MANIFEST_COLUMNS = [f.name for f in fields(Entry)]


def checkpoints_dir(root: str | Path | None = None) -> Path:
    """``<root>/checkpoints``, else ``$FUSIONLIB_CHECKPOINTS`` when set (a dry run's private copy:
    :func:`fusionlib.study.reproduce.run`), else ``<project>/checkpoints``: the manifest and the committed files."""
    if root is not None:
        return Path(root) / "checkpoints"
    env = os.environ.get("FUSIONLIB_CHECKPOINTS")
    return Path(env).expanduser().resolve() if env else project_root() / "checkpoints"


def _coerce(row: dict[str, str]) -> Entry:
    kinds = {f.name: f.type for f in fields(Entry)}
    out = {}
    for k in MANIFEST_COLUMNS:
        v = row.get(k, "")
        out[k] = int(v or 0) if kinds[k] == "int" else float(v or 0) if kinds[k] == "float" else v
    return Entry(**out)


def manifest(root: str | Path | None = None) -> dict[str, Entry]:
    """The manifest's rows by name (empty when there is no manifest yet)."""
    path = checkpoints_dir(root) / "MANIFEST.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != MANIFEST_COLUMNS:
            raise CheckpointError(f"{path}: columns {reader.fieldnames} differ from {MANIFEST_COLUMNS}")
        return {row["name"]: _coerce(row) for row in reader}


def _write_manifest(entries: dict[str, Entry], root: str | Path | None) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for name in sorted(entries):
        writer.writerow(asdict(entries[name]))
    atomic_write(checkpoints_dir(root) / "MANIFEST.csv", buf.getvalue())


def rename_key(key: str, renames, inner=()) -> str | None:
    """An authors' state-dict key in our module names: the first ``(pattern, replacement)`` of
    ``renames`` that matches (``re.subn``) wins, then every ``inner`` pair renames the blocks inside;
    ``<i+j>`` / ``<i-j>`` in a replacement is evaluated (index shifts between their lists and ours).
    ``None`` when no pattern matches (an unexpected key). Used by the per-paper ``official`` loaders."""
    import re
    for pattern, repl in renames:
        new, n = re.subn(pattern, repl, key)
        if n:
            new = re.sub(r"<(\d+)([+-])(\d+)>", lambda m: str(int(m[1]) + (1 if m[2] == "+" else -1) * int(m[3])), new)
            for inner_pattern, inner_repl in inner:
                new = re.sub(inner_pattern, inner_repl, new)
            return new
    return None


def key_mismatch(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str:
    """``""`` when ``state`` has exactly ``expected``'s keys and shapes, else one phrase listing the
    missing, unexpected and mis-shaped keys (the first three of each): what strict loading reports."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k} {tuple(state[k].shape)}≠{tuple(expected[k].shape)}" for k in sorted(set(expected) & set(state))
              if state[k].shape != expected[k].shape]
    return "; ".join(f"{label} {len(keys)} ({', '.join(keys[:3])}{', …' if len(keys) > 3 else ''})"
                     for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)) if keys)


def save(model: torch.nn.Module | dict[str, torch.Tensor], name: str, *, paper: str, variant: str, steps: int,
         epochs: int, wall_seconds: float, device: str, profile: str, data_checksum: str, loss_network: str,
         command: str, model_kwargs: dict | None = None, notes: str = "", dtype: torch.dtype = torch.float16,
         root: str | Path | None = None) -> Entry:
    """Write ``model``'s weights (floating tensors cast to ``dtype``; buffers included) as
    ``<name>.pt``, atomically, and record its manifest row (replacing a row of the same name).
    ``model_kwargs`` (JSON-serialisable) are what rebuilds the architecture before :func:`load_into`.

    Files of at most :data:`COMMIT_LIMIT_BYTES` go to ``checkpoints/`` (commit them); larger ones
    to ``checkpoints/large/`` (git-ignored; publish a verified copy in ``$FUSIONLIB_WEIGHTS/trained/``).
    The bytes are a function of the tensors alone, so equal weights give an equal sha256.
    """
    if not name or any(c in name for c in "/\\ ,") or name.startswith("."):
        raise CheckpointError(f"checkpoint name {name!r}: use letters, digits, '-', '_' and '.' only")
    state = model.state_dict() if isinstance(model, torch.nn.Module) else model
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"checkpoint {name}: entries {bad[:3]} are not tensors; save a state dict of tensors")
    nonfinite = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if nonfinite:
        raise CheckpointError(f"checkpoint {name}: non-finite values in {nonfinite[:3]}; refusing to save a broken model")
    weights = {k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).contiguous().clone()
               for k, v in sorted(state.items())}
    overflow = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if overflow:
        raise CheckpointError(f"checkpoint {name}: {overflow[:3]} overflow {dtype}; save with dtype=torch.float32")
    buf = io.BytesIO()
    torch.save(weights, buf)
    raw = buf.getvalue()
    small = len(raw) <= COMMIT_LIMIT_BYTES
    folder, other = (checkpoints_dir(root), checkpoints_dir(root) / "large")[:: 1 if small else -1]
    path = atomic_write(folder / f"{name}.pt", raw)
    (other / f"{name}.pt").unlink(missing_ok=True)  # a re-save that changed size class leaves no stale copy
    entry = Entry(name=name, paper=paper, variant=variant, file=path.name, sha256=hashlib.sha256(raw).hexdigest(),
                  bytes=len(raw), dtype=str(dtype).removeprefix("torch."), steps=int(steps), epochs=int(epochs),
                  wall_seconds=round(float(wall_seconds), 1), device=device, profile=profile,
                  commit=git_commit(project_root() if root is None else Path(root)), data_checksum=data_checksum,
                  loss_network=loss_network, command=command,
                  model=json.dumps(model_kwargs or {}, sort_keys=True), notes=notes)
    entries = manifest(root)
    entries[name] = entry
    _write_manifest(entries, root)
    return entry


def find(name: str, root: str | Path | None = None) -> tuple[Entry, Path]:
    """The manifest row of ``name`` and the first place its file exists (see the module docstring)."""
    entries = manifest(root)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none yet"
        raise CheckpointError(f"checkpoint {name!r} is not in {checkpoints_dir(root) / 'MANIFEST.csv'} (known: {known})")
    entry = entries[name]
    places = [checkpoints_dir(root), checkpoints_dir(root) / "large", weights_root() / "trained"]
    for folder in places:
        if (folder / entry.file).is_file():
            return entry, folder / entry.file
    raise CheckpointError(f"checkpoint {name}: {entry.file} not found in {', '.join(map(str, places))}; "
                          f"regenerate it with `{entry.command}` or place a verified copy in {places[-1]}")


def load(name: str, root: str | Path | None = None) -> tuple[dict[str, torch.Tensor], Entry]:
    """The state dict of checkpoint ``name``, after checking its sha256 against the manifest,
    read with ``weights_only=True``; and its manifest row."""
    entry, path = find(name, root)
    digest = file_checksum(path)
    if digest != entry.sha256:
        raise CheckpointError(f"checkpoint {name}: {path} has sha256 {digest[:12]}…, the manifest says "
                              f"{entry.sha256[:12]}… (corrupted or from another run); regenerate it with `{entry.command}`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure becomes the one-line error
        raise CheckpointError(f"checkpoint {name}: {path} cannot be read as weights ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {name}: {path} is not a state dict of tensors")
    return state, entry


def load_into(model: torch.nn.Module, name: str, root: str | Path | None = None) -> Entry:
    """Load checkpoint ``name`` into ``model`` strictly (every key present, none extra, equal
    shapes; values are cast to the model's dtypes) and return its manifest row."""
    state, entry = load(name, root)
    problems = key_mismatch(model.state_dict(), state)
    if problems:
        raise CheckpointError(f"checkpoint {name} does not fit {type(model).__name__}: {problems}")
    model.load_state_dict(state)
    return entry



def available(paper: str, variant: str = "main", root: str | Path | None = None) -> Entry | None:
    """The first manifest row of ``paper``'s ``variant`` whose file is present (committed, in
    ``checkpoints/large/`` or in ``$FUSIONLIB_WEIGHTS/trained/``), or ``None``: how the smoke tables
    decide to add a row for a trained model. Rows whose file is absent are skipped, so a ``-regen``
    copy is found when only it is present. The checksum is checked when it is loaded."""
    for entry in manifest(root).values():
        if entry.paper == paper and entry.variant == variant:
            try:
                find(entry.name, root)
            except CheckpointError:
                continue
            return entry
    return None


def describe(entry: Entry) -> str:
    """How a table names the checkpoint a row used: name, steps, profile, device, loss network."""
    return f"{entry.name}: {entry.steps} steps, {entry.profile} profile on {entry.device}, loss network {entry.loss_network}"


def trained_model(paper: str, build: Callable[..., torch.nn.Module], variant: str = "main",
                  root: str | Path | None = None) -> tuple[Entry | None, torch.nn.Module | None]:
    """``(row, model)`` for :func:`available`'s checkpoint, the model built by ``build(**row's model
    kwargs)``, loaded strictly (:func:`load_into`) and in eval mode; ``(None, None)`` when there is none."""
    entry = available(paper, variant, root)
    if entry is None:
        return None, None
    model = build(**entry.model_kwargs())
    load_into(model, entry.name, root)
    return entry, model.eval()


def row_note(entry: Entry | None) -> str:
    """The phrase a table title adds for a trained checkpoint's row ("" when there is none)."""
    return f"; row {entry.name!r}: {describe(entry)}" if entry is not None else ""


def main(argv: list[str] | None = None) -> int:
    """``python -m fusionlib.checkpoints [list | verify [NAME ...]]``: the manifest, or a checksum check
    of each checkpoint file that is present (exit 1 if any present file is wrong)."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m fusionlib.checkpoints", description=main.__doc__.split(":")[0])
    parser.add_argument("command", choices=["list", "verify"], nargs="?", default="list")
    parser.add_argument("names", nargs="*", help="checkpoints to verify (default: all)")
    args = parser.parse_args(argv)
    entries = manifest()
    if not entries:
        print(f"no checkpoints recorded in {checkpoints_dir() / 'MANIFEST.csv'}")
        return 0
    bad = 0
    for name in args.names or sorted(entries):
        e = entries.get(name)
        if e is None:
            print(f"{name}: not in the manifest")
            bad += 1
            continue
        if args.command == "list":
            print(f"{name}: {e.paper}/{e.variant}, {e.steps} steps, {e.profile} on {e.device}, {e.bytes:,} bytes, "
                  f"loss network: {e.loss_network}\n    regenerate: {e.command}")
            continue
        try:
            _, path = find(name)
        except CheckpointError as err:
            print(f"{name}: absent ({err})")
            continue
        ok = file_checksum(path) == e.sha256
        bad += not ok
        print(f"{name}: {'ok' if ok else 'CHECKSUM MISMATCH'} ({path})")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
