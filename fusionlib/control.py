"""The control arm: the authors' own training code, driven from outside, beside ours (docs/control-arm.md).

Their code is a test oracle and a control, never part of the library: it is read from
``$FUSIONLIB_REFERENCE_CODE/<paper>`` or ``<project>/../shared/reference_code/<paper>``, imported for the
length of a ``with`` block and removed from ``sys.modules`` afterwards (their module names —
``models``, ``config``, ``dataset``, ``vgg`` — are generic and differ between papers).

- :func:`reference_root`: where a paper's code is, or a ``FileNotFoundError`` that says how to get it;
- :func:`authors_code`: put a folder of theirs on ``sys.path`` with stand-in modules for what cannot
  be installed here (their ``clip`` package), a controlled ``sys.argv`` for scripts that parse it at import;
- :class:`Shim`: every change made to run their code here, with its reason (listed beside each
  twin run; docs/control-arm.md#rules says which kinds are allowed);
- :func:`relative_difference`: the largest relative difference between two tensors or state dicts;
- :func:`tensor_digest`: a content hash of weights, for the cache keys of twin runs;
- :func:`script_arguments`: the options a script's ``argparse`` parser gives for a command line, for
  scripts that build their parser under ``if __name__ == "__main__"`` and take ``main(args)``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import importlib.util
import io
import os
import sys
import types
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from fusionlib.io import atomic_write
from fusionlib.paths import project_root

__all__ = ["Shim", "reference_root", "authors_code", "relative_difference", "step_agreement", "tensor_digest", "write_shims",
           "script_arguments"]


def reference_root(paper: str) -> Path:
    """The authors' code of ``paper`` (``$FUSIONLIB_REFERENCE_CODE/<paper>``, else
    ``<project>/../shared/reference_code/<paper>``); ``FileNotFoundError`` when absent."""
    base = Path(os.environ.get("FUSIONLIB_REFERENCE_CODE", project_root().parent / "shared" / "reference_code"))
    root = base / paper
    if not root.is_dir():
        raise FileNotFoundError(f"the authors' {paper} code is not at {root} (set FUSIONLIB_REFERENCE_CODE to the "
                                "folder holding reference_code/<paper>, e.g. ../shared/reference_code)")
    return root


def tensor_digest(tensors: torch.Tensor | dict[str, torch.Tensor]) -> str:
    """A SHA-256 (16 hex digits) of a tensor or a state dict: names, dtypes, shapes and bytes. Twin runs key
    their cache folders on it; a sum of the values would take two different weights (a permutation, a
    sign pattern that cancels) for the same run."""
    import hashlib
    items = tensors.items() if isinstance(tensors, dict) else [("", tensors)]
    h = hashlib.sha256()
    for name, t in sorted(items, key=lambda kv: kv[0]):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Shim:
    """One change made so that the authors' code runs here: ``name`` (what is replaced or set),
    ``kind`` (cpu | data | stand-in | name | config | driver, docs/control-arm.md#rules), ``why``."""
    name: str
    kind: str
    why: str


def write_shims(path: str | Path, shims: list[Shim]) -> Path:
    """``path`` (CSV: name, kind, why), written atomically: the list that goes beside a twin run."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, ["name", "kind", "why"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(s) for s in shims)
    return atomic_write(Path(path), buf.getvalue())


@contextlib.contextmanager
def authors_code(folder: str | Path, stubs: dict[str, types.ModuleType] | None = None, argv: list[str] | None = None):
    """Import the authors' modules from ``folder`` inside the block: ``folder`` first on ``sys.path``,
    ``stubs`` (name → module) in ``sys.modules``, ``sys.argv`` set to ``argv`` (default: one program
    name, so a script that parses its arguments at import gets its published defaults). Afterwards
    their modules and the stubs are removed and ``sys.path`` / ``sys.argv`` restored.

    Folders named ``_stubs*`` beside ``folder`` (the staged code's own stubs for packages such as
    ``mmcv``: ``_stubs`` always, ``_stubs_<package>`` only where the package is not installed) join the path."""
    folder = Path(folder).resolve()
    extra = [p for p in sorted(folder.glob("_stubs*")) if p.name == "_stubs"
             or importlib.util.find_spec(p.name.removeprefix("_stubs_")) is None]
    paths = [str(folder)] + [str(p) for p in extra]
    before, saved_argv = set(sys.modules), sys.argv
    shadowed = {name: sys.modules[name] for name in (stubs or {}) if name in sys.modules}
    sys.path[:0] = paths
    sys.modules.update(stubs or {})
    sys.argv = list(argv or [str(folder / "main.py")])
    try:
        yield folder
    finally:
        sys.argv = saved_argv

        def theirs(module):  # namespace packages (no __init__.py) have no __file__, only a path
            where = getattr(module, "__file__", None) or getattr(getattr(module, "__spec__", None), "origin", None)
            search = getattr(getattr(module, "__spec__", None), "submodule_search_locations", None) or []
            return any(str(folder) in str(p) for p in [where or "", *list(search)])
        for name in [n for n in set(sys.modules) - before if theirs(sys.modules[n])]:
            del sys.modules[name]
        for name in stubs or {}:
            sys.modules.pop(name, None)
        sys.modules.update(shadowed)
        del sys.path[:len(paths)]
        # A backward pass through functorch.einops.rearrange (DCMIF's attention blocks, for one) imports its
        # submodule of the same name, which rebinds the package's `rearrange` to that module: the next
        # `from functorch.einops import rearrange` would get a module. Put the function back.
        einops = sys.modules.get("functorch.einops")
        if einops is not None and isinstance(getattr(einops, "rearrange", None), types.ModuleType):
            einops.rearrange = einops.rearrange.rearrange


def relative_difference(a, b) -> float:
    """max |a − b| / max(max |b|, 1e-12) over two tensors, or over every shared key of two state dicts
    (a key in one only raises ``KeyError``)."""
    if isinstance(a, dict):
        if set(a) != set(b):
            raise KeyError(f"the state dicts differ in keys: {sorted(set(a) ^ set(b))[:4]}")
        return max((relative_difference(a[k], b[k]) for k in a), default=0.0)
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12)) if a.numel() else 0.0


def step_agreement(initial: dict, ours: dict, theirs: dict) -> tuple[float, float]:
    """How equal two arms' parameters are after the same optimiser steps from ``initial``, over the keys
    of ``theirs``: ``(parameters, updates)`` = ‖θ_ours − θ_theirs‖ / ‖θ_theirs‖ over all parameters at
    once, and the same for the updates θ − θ_initial (what a wrong rate, optimiser, weight decay, frozen
    set or gradient changes by O(1)). Norm-wise because a few elements whose L1 sign or ReLU flips on a
    last-digit difference move by a whole optimiser step, which a per-element bound would call a mismatch."""
    def norm(pairs):
        num = sum(float((a.double() - b.double()).square().sum()) for a, b in pairs)
        return (num / max(sum(float(b.double().square().sum()) for _, b in pairs), 1e-300)) ** 0.5
    keys = sorted(theirs)
    return (norm([(ours[k], theirs[k]) for k in keys]),
            norm([(ours[k] - initial[k], theirs[k] - initial[k]) for k in keys]))


def script_arguments(script: str | Path, argv: list[str] | None = None) -> argparse.Namespace:
    """What ``python script argv…`` hands its ``main(args)``: the script's own ``parser.add_argument``
    calls, read from its source (literal arguments only; ``type`` among the builtins), rebuilt into a
    parser that parses ``argv``. For scripts whose parser lives under ``if __name__ == "__main__"``, so
    that their published defaults are used without being typed in anywhere else."""
    tree = ast.parse(Path(script).read_text())
    parser = argparse.ArgumentParser(prog=Path(script).name)
    builtins = {"int": int, "float": float, "str": str, "bool": bool}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"):
            continue
        kwargs = {}
        for kw in node.keywords:
            if kw.arg == "type" and isinstance(kw.value, ast.Name):
                kwargs["type"] = builtins[kw.value.id]
            else:
                kwargs[kw.arg] = ast.literal_eval(kw.value)
        parser.add_argument(*(ast.literal_eval(a) for a in node.args), **kwargs)
    return parser.parse_args(list(argv or []))
