"""The one door between the study layer and the papers.

A paper is a sub-package of :mod:`fusionlib` with a module ``study.py`` that defines ``PAPER``, a
:class:`Paper`: everything the reproduction machinery needs from it (its notebooks, its
checkpoints as benchmark methods, its step-timing grid, its internal-consistency checks, its code
checks, its health evidence and its exercises). :func:`papers` finds every such module, so no module
of :mod:`fusionlib.study` names a paper, and a fifth paper is a new folder, not an edit of the study
layer (``docs/adding-a-paper.md``). :func:`register` adds a paper from outside the package (a plug-in,
or a test's toy paper) until :func:`unregister` removes it.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import fusionlib

__all__ = ["CheckpointSpec", "Released", "Recipe", "Paper", "papers", "paper", "register", "unregister", "DOOR"]

DOOR = "study"  # the module every paper package exposes to the study layer: fusionlib.<paper>.study


@dataclass(frozen=True)
class CheckpointSpec:
    """How the benchmark builds and runs one manifest variant of a paper's checkpoints.

    ``build(**model_kwargs)`` returns the network the checkpoint loads into; ``fuser(model, device)``
    returns ``(ir, vis RGB) -> fused RGB``. ``sets``: ``"clear"`` (the clear sets only) or ``"both"``
    (also the hazy set). ``label``: the row name when the variant is not the paper's method itself
    (an ablation). ``clear_input_control``: also run it on the hazy set's clear VIS (what haze costs a
    method that reads the visible image only). ``dehaze_first``: also run it after dark-channel dehazing
    on the hazy set (a two-stage baseline for a method trained on clear images)."""
    family: str
    build: Callable[..., Any]
    fuser: Callable[..., Callable]
    inputs: str
    sets: str = "clear"
    label: str | None = None
    clear_input_control: bool = False
    dehaze_first: bool = False


@dataclass(frozen=True)
class Released:
    """Fused images a paper's authors published, scored by the benchmark as they are: ``folder`` (under the
    data root, one image per test pair, named like its pair), the evaluation ``sets`` they belong to, and
    what produced them (``weights``, ``note``)."""
    name: str
    folder: str
    sets: str
    inputs: str = "IR + VIS"
    weights: str = "the authors' model"
    note: str = ""


@dataclass(frozen=True)
class Recipe:
    """The paper's training recipe, for the ledger's "how small our runs are": ``images`` (crops seen:
    epochs × pairs or patches, summed over stages), ``crop`` (side) and ``text``."""
    images: int
    crop: int
    text: str


@dataclass(frozen=True)
class Paper:
    """What one paper gives the study layer. Only ``key``, ``title``, ``chapter`` and ``notebooks`` are
    required; every other field defaults to "nothing of that kind".

    key: the package and report folder name (``fusionlib.<key>``, ``reports/<profile>/<key>/``).
    title: one line for the ledger and the report. chapter: its chapter title in the book.
    notebooks: its notebooks' number prefixes in reading order (``"20_"``), all of them in its book chapter.
    writer: the notebook that writes its tables (default: the last one). (The papers' order on a lent GPU is
    ``priority`` in ``notebooks/profiles/gpu.yaml``: the GPU call reads it before it can import a door.)
    methods: manifest variant -> :class:`CheckpointSpec`. released_outputs: :class:`Released` fused images. step_grid: ``(crop, batch, what)`` configurations
    whose seconds per step size the profiles; ``train_seconds(crop, batch, steps, folder, seed, what)``
    times them and returns ``{row label: seconds}``.
    code_checks: name -> ``(check, evidence path)``, ``check() -> (holds, finding)``, for claims about
    the code (the claims' ``code:<name>``). consistency: ``consistency(wide, add)`` adds the paper's
    internal-consistency findings: ``wide(table)`` is a transcribed table (rows × metrics), ``add(id,
    check, finding, consistent)`` records one. training_artefact / scored_artefact: the artefacts
    (relative to ``reports/<profile>/``) whose provenance holds the main model's training parameters /
    the images its tables were scored on; notebook_artefacts: notebook prefix -> the training artefact
    of a checkpoint that notebook trained. recipe: ``recipe(values) -> Recipe`` from its transcribed
    values (default: the ``Recipe`` table's pairs × epochs); recipe_notes: variant -> a prefix for
    the recipe of a variant that is another paper's model.
    evidence: variant -> :class:`fusionlib.study.health.PaperEvidence`; notebook_evidence: notebook
    prefix -> evidence of a checkpoint that notebook trained and evaluated; required_health: the
    checks a model of this paper must pass to be alive.
    exercises: its notebooks' :class:`fusionlib.study.exercises.Exercise` s. assumes: notebook number ->
    what it assumes a reader knows (the book).
    values / claims: the hand-written inputs, transcribed from the paper: its numbers with their lines
    (``docs/paper-values.md``) and its claims with the checks that judge them (``docs/claims.md``); by default
    ``paper_values.csv`` and ``claims.csv`` beside the door, in the paper's package.
    """
    key: str
    title: str
    chapter: str
    notebooks: tuple[str, ...]
    writer: str = ""
    methods: Mapping[str, CheckpointSpec] = field(default_factory=dict)
    released_outputs: tuple[Released, ...] = ()
    step_grid: tuple[tuple[int, int, str], ...] = ()
    train_seconds: Callable[..., dict[str, float]] | None = None
    code_checks: Mapping[str, tuple[Callable[[], tuple[bool, str]], str]] = field(default_factory=dict)
    consistency: Callable[[Callable, Callable], None] | None = None
    training_artefact: str = ""
    scored_artefact: str = ""
    notebook_artefacts: Mapping[str, str] = field(default_factory=dict)
    recipe: Callable[[Any], Recipe] | None = None
    recipe_notes: Mapping[str, str] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    notebook_evidence: Mapping[str, Any] = field(default_factory=dict)
    required_health: tuple[str, ...] = ("H2",)
    exercises: tuple[Any, ...] = ()
    assumes: Mapping[str, str] = field(default_factory=dict)
    values: Path | None = None
    claims: Path | None = None

    @property
    def values_file(self) -> Path:
        """The paper's transcribed numbers (``table,row,metric,value,source``)."""
        return Path(self.values) if self.values else Path(fusionlib.__file__).parent / self.key / "paper_values.csv"

    @property
    def claims_file(self) -> Path:
        """The paper's claims, one row each (:data:`fusionlib.study.ledger.CLAIM_COLUMNS`)."""
        return Path(self.claims) if self.claims else Path(fusionlib.__file__).parent / self.key / "claims.csv"

    @property
    def book_notebooks(self) -> tuple[str, ...]:
        """The notebook number prefixes the book shows (``"20"``)."""
        return tuple(n.rstrip("_") for n in self.notebooks)

    @property
    def tables_notebook(self) -> str:
        """The notebook prefix that writes this paper's tables (``"22_"``)."""
        return self.writer or self.notebooks[-1]


_EXTRA: dict[str, Paper] = {}


def papers() -> dict[str, Paper]:
    """Every paper, key -> :class:`Paper`, in reading order (by first notebook): the sub-packages of
    :mod:`fusionlib` with a ``study`` module, then those :func:`register` added."""
    found = {}
    for info in pkgutil.iter_modules(fusionlib.__path__):
        if info.ispkg and importlib.util.find_spec(f"fusionlib.{info.name}.{DOOR}") is not None:
            module = importlib.import_module(f"fusionlib.{info.name}.{DOOR}")
            door = getattr(module, "PAPER", None)
            if not isinstance(door, Paper) or door.key != info.name:
                raise TypeError(f"fusionlib.{info.name}.{DOOR}.PAPER must be a Paper with key {info.name!r}")
            found[door.key] = door
    clash = set(found) & set(_EXTRA)
    if clash:
        raise ValueError(f"registered papers {sorted(clash)} shadow packages of the same name")
    found.update(_EXTRA)
    return dict(sorted(found.items(), key=lambda kv: kv[1].notebooks[0]))


def paper(key: str) -> Paper:
    """One paper by key, with the known keys in the error."""
    known = papers()
    if key not in known:
        raise KeyError(f"unknown paper {key!r}: known papers are {', '.join(known)}")
    return known[key]


def register(door: Paper) -> None:
    """Add a paper that is not a sub-package of :mod:`fusionlib` (a plug-in, a test's toy paper)."""
    if not isinstance(door, Paper):
        raise TypeError(f"register() takes a Paper, not {type(door).__name__}")
    _EXTRA[door.key] = door


def unregister(key: str) -> None:
    """Remove a paper :func:`register` added."""
    _EXTRA.pop(key, None)
