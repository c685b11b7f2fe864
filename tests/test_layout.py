"""The package's layering, read from the import statements of every module (no import is run).

Floors, bottom to top: ``io``/``paths``/``data`` → ``metrics``/``train``/``checkpoints`` →
``common``/``control`` → the paper packages → ``study`` (the reproduction machinery) → each paper's door
(``fusionlib/<paper>/study.py``, which the registry finds without an import statement). A module may
import its own floor or lower ones, a paper package never imports another paper's package, and no module
of the study layer imports a paper: it reaches them through :mod:`fusionlib.study.registry` only.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fusionlib"
PAPERS = tuple(sorted(p.name for p in PACKAGE.iterdir() if (p / "study.py").is_file()))  # packages with a door
FLOOR = {"io": 0, "paths": 0, "data": 0, "metrics": 1, "train": 1, "checkpoints": 1, "common": 2, "control": 2,
         **{p: 3 for p in PAPERS}, "study": 4, "door": 5}


def _unit(dotted: str) -> str:
    """``fusionlib.dcmif.model`` → ``dcmif``, ``fusionlib.dcmif.study`` → ``door``: the floor-bearing unit of a module."""
    parts = dotted.split(".")
    return "door" if len(parts) > 2 and parts[1] in PAPERS and parts[2] == "study" else parts[1]


def _module(path: Path) -> str:
    return "fusionlib." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def _imports(path: Path) -> set[str]:
    """Every ``fusionlib.*`` module named by an import statement anywhere in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fusionlib."):
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.module == "fusionlib":
            found.update(f"fusionlib.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("fusionlib."))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_unit_has_a_floor():
    units = {_unit(_module(p)) for p in MODULES}
    assert units <= set(FLOOR), f"modules without a floor in tests/test_layout.py: {units - set(FLOOR)}"
    assert len(PAPERS) >= 4, f"the paper doors found: {PAPERS}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_and_never_across_papers(path):
    me = _unit(_module(path))
    own = _module(path).split(".")[1]  # the paper a door belongs to
    for target in _imports(path):
        other = _unit(target)
        if other == me:
            continue
        assert FLOOR[other] < FLOOR[me] or (FLOOR[other] == FLOOR[me] and me not in PAPERS), \
            f"{path.relative_to(PACKAGE)} imports {target}: floor {FLOOR[other]} from floor {FLOOR[me]}"
        assert not (me in PAPERS and other in PAPERS), f"paper {me} imports paper {other} ({target})"
        assert not (me == "door" and other in PAPERS and other != own), f"{own}'s door imports paper {other} ({target})"


@pytest.mark.parametrize("path", sorted((PACKAGE / "study").glob("*.py")), ids=lambda p: p.name)
def test_no_study_module_imports_a_paper(path):
    """The study layer reaches the papers through the registry's doors, never by name."""
    named = [t for t in _imports(path) if t.split(".")[1] in PAPERS]
    assert not named, f"fusionlib/study/{path.name} imports {named}: go through fusionlib.study.registry"
    lines = [line for line in path.read_text().splitlines() if re.match(r"\s*(from|import)\s", line)]
    assert not [line for line in lines for p in PAPERS if re.search(rf"\b{p}\b", line)], f"{path.name} names a paper in an import"


@pytest.mark.parametrize("paper", PAPERS)
def test_each_paper_map_names_real_functions(paper):
    """Every ``module.name`` in a paper package's map (its ``__init__`` docstring) exists."""
    import importlib
    import importlib.util
    package = importlib.import_module(f"fusionlib.{paper}")
    names = re.findall(r"``([\w.]+\.\w+)``", package.__doc__)
    assert len(names) >= 8, f"fusionlib.{paper}'s map names too little: {names}"
    for dotted in names:
        module, attr = dotted.rsplit(".", 1)
        full = module if module.startswith("fusionlib.") else f"fusionlib.{paper}.{module}"
        exists = hasattr(importlib.import_module(full), attr) or importlib.util.find_spec(f"{full}.{attr}") is not None
        assert exists, f"fusionlib.{paper} map: {dotted} does not exist"  # a function, or a module named in the map


@pytest.mark.parametrize("paper", PAPERS)
def test_public_names_link_back_to_their_notebook(paper):
    """Every public function and class of a paper package ends its docstring with the notebook
    section that derives it (the other half of the notebooks' 'Package code' lines)."""
    import importlib
    import inspect
    import pkgutil
    package = importlib.import_module(f"fusionlib.{paper}")
    unlinked = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"fusionlib.{paper}.{info.name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__:
                doc = inspect.getdoc(obj) or ""
                match = re.search(r"notebooks/(\d\d_\w+)\.ipynb`` §", doc)
                if not match or not (PACKAGE.parent / "notebooks" / f"{match.group(1)}.ipynb").is_file():
                    unlinked.append(f"{info.name}.{name}")
    assert not unlinked, f"fusionlib.{paper}: no notebook section in the docstring of {unlinked}"


@pytest.mark.parametrize("notebook", sorted((PACKAGE.parent / "notebooks").glob("[1-4]?_*.ipynb")), ids=lambda p: p.stem)
def test_notebook_sections_name_what_they_produce(notebook):
    """Each paper notebook's sections say which package code they derive; every name exists."""
    import importlib
    import json
    text = "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "markdown")
    lines = [line for line in text.splitlines() if line.startswith("*Produces*")]
    assert lines, f"{notebook.name}: no section says what it produces"
    for dotted in re.findall(r"`(fusionlib\.[\w.]+)`", "\n".join(lines)):
        module, attr = dotted.rsplit(".", 1)
        assert hasattr(importlib.import_module(module), attr), f"{notebook.name} names {dotted}, which does not exist"


EXECUTED = sorted((PACKAGE.parent / "reports" / "executed").glob("*/*.ipynb"))


def _fusionlib_names(source: str) -> set[tuple[str, str | None]]:
    """(module, name or None) of every ``fusionlib`` import in a cell's source (IPython magics skipped)."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fusionlib":
            found.update((node.module, a.name) for a in node.names)
        elif isinstance(node, ast.Import):
            found.update((a.name, None) for a in node.names if a.name.split(".")[0] == "fusionlib")
    return found


@pytest.mark.parametrize("notebook", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_executed_notebooks_import_only_what_the_package_has(notebook):
    """An executed copy is shown in the book: its code must run against today's package."""
    import importlib
    import json

    cells = json.loads(notebook.read_text())["cells"]
    wanted = set().union(*(_fusionlib_names("".join(c["source"])) for c in cells if c["cell_type"] == "code"))
    missing = []
    for module, name in sorted(wanted, key=str):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            missing.append(module)
            continue
        if name is not None and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")  # a sub-module named in a from-import
            except ImportError:
                missing.append(f"{module}.{name}")
    assert not missing, f"{notebook.relative_to(PACKAGE.parent)} imports what fusionlib no longer has: {missing}"


def _mirror(path: Path) -> Path:
    """Where the tests of a module live: ``tests/<sub-package>/test_<module>.py``; the top level's and the study
    layer's directly under ``tests/``."""
    rel = path.relative_to(PACKAGE)
    folder = () if len(rel.parts) == 1 or rel.parts[0] == "study" else rel.parts[:-1]
    return PACKAGE.parent.joinpath("tests", *folder, f"test_{path.stem}.py")


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "__init__.py"], ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_has_its_test_module(path):
    assert _mirror(path).is_file(), f"fusionlib/{path.relative_to(PACKAGE)} has no {_mirror(path).relative_to(PACKAGE.parent)}"
