"""The student's book: the executed notebooks as a browsable offline site (``make book``).

``python -m fusionlib.study.book`` assembles a Sphinx source tree in ``book/_src/`` and builds it with
Sphinx + MyST-NB + the Sphinx Book Theme into ``book/_build/html/``; ``--screenshots DIR`` then
photographs the landing page and one chapter in headless Chromium. Why these tools: MyST-NB renders
Jupyter notebooks *with their stored outputs* (``nb_execution_mode = "off"``: the book never runs a
notebook), Sphinx gives cross-references into the package's API (autodoc + viewcode: every page links
to the source of the functions it uses), and MathJax 3 comes from PyPI (``sphinx-mathjax-offline``),
so equations render with no network.

For each notebook the book shows the best executed copy (``reports/executed/<profile>/``: full, gpu,
cpu, then smoke) and says on the page which profile, commit and device produced it. Executed copies
keep no images (issue 8: the tracked tree stays small); the builder puts back, in its build copy only,
the PNGs the notebook saved under ``reports/<profile>/`` (matched to the cell that saved them). Cells
added to a notebook after its run (e.g. exercises) are appended unexecuted, and labelled.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from fusionlib.paths import project_root
from fusionlib.study import registry
from fusionlib.study.reports import read_index

__all__ = ["PROFILES", "chapters", "assumes", "best_executed", "page_provenance", "prepare_notebook", "assemble", "build", "screenshots", "main"]

PROFILES = ("full", "gpu", "cpu", "smoke")  # best first
STUDY_ASSUMES = {"00": "Python and NumPy; nothing else", "01": "00", "90": "the paper notebooks' artefacts (any profile)",
                 "91": "01 and the trained checkpoints", "92": "90, 91", "93": "00, 01; a paired test"}  # and each paper's, from its door


def chapters() -> dict[str, tuple[str, ...]]:
    """Chapter title -> notebook number prefixes, in reading order: the start, one chapter per paper (its door's
    ``chapter`` and ``book`` notebooks), the reviewer's view."""
    return {"Start here: data, conventions and metrics": ("00", "01"),
            **{door.chapter: door.book_notebooks for door in registry.papers().values()},
            "The reviewer's view": ("90", "91", "92", "93")}


def assumes() -> dict[str, str]:
    """Notebook number -> what it assumes a reader knows."""
    return {**STUDY_ASSUMES, **{nb: text for door in registry.papers().values() for nb, text in door.assumes.items()}}


_FIGURE_TEXT = "[figure: the PNG saved under"
_FIGURE_CALL = re.compile(r"\.figure\(\s*[^,()]+(?:\([^()]*\))?\s*,\s*(f?)([\"'])(.+?)\2")


def best_executed(stem: str, executed: Path, profiles=PROFILES) -> tuple[Path, str] | None:
    """The best profile's executed copy of notebook ``stem`` and that profile, or ``None``."""
    for profile in profiles:
        path = executed / profile / f"{stem}.ipynb"
        if path.is_file():
            return path, profile
    return None


def page_provenance(stem: str, profile: str, reports: Path, nb: dict) -> dict[str, str]:
    """Profile, commit(s), device, date and run time of an executed copy: commits from the
    provenance sidecars of the artefacts it wrote, the rest from papermill's metadata and ``runs.csv``."""
    commits: Counter = Counter()
    devices: Counter = Counter()
    for row in read_index(reports, profile):
        if row["notebook"] == stem:
            side = (reports / row["artefact"]).with_name(Path(row["artefact"]).stem + ".provenance.json")
            if side.is_file():
                info = json.loads(side.read_text())
                commits[info.get("commit", "unknown")] += 1
                devices[info.get("device", "unknown")] += 1
    runs = reports / "executed" / profile / "runs.csv"
    wall = device = ""
    if runs.is_file():
        for r in csv.DictReader(open(runs, newline="")):
            if r["notebook"] == f"{stem}.ipynb":
                wall, device = f"{float(r['wall_s']) / 60:.1f} min", r["device"]
    pm = nb.get("metadata", {}).get("papermill", {})
    return {"profile": profile, "commit": ", ".join(c[:12] + ("+local-changes" if "local" in c else "") for c in commits) or "not recorded (no artefacts)",
            "device": device or (", ".join(devices) if devices else "not recorded"),
            "date": (pm.get("end_time") or "")[:16].replace("T", " ") or "not recorded",
            "wall": wall or (f"{pm['duration'] / 60:.1f} min" if pm.get("duration") else "not recorded")}


def _md(text: str) -> dict:
    """A Markdown cell the book adds (banner, how to run it); its id, required by nbformat 4.5, comes
    from its text, so rebuilding gives the same page."""
    lines = text.split("\n")
    return {"cell_type": "markdown", "id": "book-" + hashlib.sha1(text.encode()).hexdigest()[:12], "metadata": {},
            "source": [line + "\n" for line in lines[:-1]] + [lines[-1]]}


def _pngs(stem: str, profile: str, reports: Path) -> list[Path]:
    return [reports / r["artefact"] for r in read_index(reports, profile)
            if r["notebook"] == stem and r["artefact"].endswith(".png") and (reports / r["artefact"]).is_file()]


def _patterns(source: str) -> list[re.Pattern]:
    out = []
    for fstring, _, name in _FIGURE_CALL.findall(source):
        parts = re.split(r"\{[^}]*\}", name) if fstring else [name]
        out.append(re.compile("^" + ".+".join(map(re.escape, parts)) + r"\.png$"))
    return out


def _api_names(source: str) -> set[str]:
    names = set(re.findall(r"\bfusionlib(?:\.[A-Za-z_]\w*)+", source))
    for module, items in re.findall(r"from (fusionlib(?:\.\w+)*) import \(?([\w, \n]+)\)?", source):
        names.update(f"{module}.{n.strip()}" for n in items.replace("\n", " ").split(",") if n.strip() and n.strip() != "as")
    return {n for n in names if not n.endswith((".py", ".md"))}


def prepare_notebook(source_nb: Path, reports: Path, executed: Path, profiles=PROFILES) -> tuple[dict, dict]:
    """The notebook as the book shows it, and its provenance (see the module docstring)."""
    stem = source_nb.stem
    source = json.loads(source_nb.read_text())
    found = best_executed(stem, executed, profiles)
    if found is None:
        nb, prov = source, {"profile": "none", "commit": "—", "device": "—", "date": "—", "wall": "—"}
        banner = ("```{note}\nThis notebook has not been executed in any profile yet: its code is shown without outputs. "
                  f"Run `make reproduce ONLY={stem[:3]}` and rebuild the book.\n```")
    else:
        path, profile = found
        nb = json.loads(path.read_text())
        prov = page_provenance(stem, profile, reports, nb)
        banner = (f"```{{admonition}} Outputs on this page\n:class: tip\nprofile **{prov['profile']}**, commit "
                  f"`{prov['commit']}`, device **{prov['device']}**, run {prov['date']} UTC ({prov['wall']}); "
                  f"from `reports/executed/{profile}/{stem}.ipynb`.\n```")
        pngs = _pngs(stem, profile, reports)
        used: set[Path] = set()
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            pats = _patterns("".join(cell["source"]))
            candidates = [p for p in sorted(pngs) if p not in used and any(pt.match(p.name) for pt in pats)]
            for out in cell.get("outputs", []):
                text = out.get("data", {}).get("text/plain", "")
                text = "".join(text) if isinstance(text, list) else text
                if text.startswith(_FIGURE_TEXT) and candidates:
                    png = candidates.pop(0)
                    used.add(png)
                    out["data"] = {"image/png": base64.b64encode(png.read_bytes()).decode(), "text/plain": f"<{png.name}>"}
            for png in candidates:  # saved by this cell but not shown by the run (closed figures): shown here
                used.add(png)
                cell.setdefault("outputs", []).append({"output_type": "display_data", "metadata": {}, "data": {
                    "image/png": base64.b64encode(png.read_bytes()).decode(), "text/plain": f"<{png.name}>"}})
        left = [p for p in sorted(pngs) if p not in used]
        if left:
            nb["cells"].append(_md("## Figures saved by this notebook\n\nFigures the run saved that no output above shows:\n\n"
                                   + "\n".join(f"![{p.name}](figures/{profile}/{p.relative_to(reports / profile).as_posix()})" for p in left)))
        seen = {c.get("id") for c in nb["cells"]}
        late = [c for c in source["cells"] if c.get("id") and c.get("id") not in seen]
        if late:
            nb["cells"].append(_md("```{note}\nThe cells below were added to the notebook after this run and are shown without "
                                   "outputs: run the notebook yourself to see them.\n```"))
            nb["cells"] += [dict(c, outputs=[], execution_count=None) if c["cell_type"] == "code" else c for c in late]
    for cell in nb["cells"]:  # the docs pages sit beside the notebooks in the book, not one folder up
        if cell["cell_type"] == "markdown":
            cell["source"] = [line.replace("](../docs/", "](docs/").replace("](../README.md", "](index.md") for line in cell["source"]]
    names = sorted(_api_names("\n".join("".join(c["source"]) for c in nb["cells"])))
    run = (f"**Run this yourself** (a fresh machine, Python 3.11 and `make`): `git clone` the repository, then "
           f"`make reproduce ONLY={stem[:3]}` (smoke profile, CPU; add `PROFILE=cpu` for the committed profile, "
           f"`FUSIONLIB_DATA=/path/to/data` for real data), or open `notebooks/{stem}.ipynb` in Jupyter after `make venv`.")
    api = ("**Package code used on this page:** " + ", ".join(f"{{py:obj}}`{n}`" for n in names)) if names else ""
    first = next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"), 0)
    nb["cells"][first + 1:first + 1] = [_md(banner + "\n\n" + run + ("\n\n" + api if api else ""))]
    nb.setdefault("metadata", {})["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb, prov


def _reading_path(notebooks: list[Path], executed: Path, link: str = "") -> str:
    """The reading-path table (order, assumptions, measured minutes per profile, interactive sections);
    ``link`` prefixes the notebook links (``notebooks/`` from the README, nothing from the book)."""
    times: dict[str, dict[str, str]] = {}
    for profile in PROFILES:
        runs = executed / profile / "runs.csv"
        if runs.is_file():
            for r in csv.DictReader(open(runs, newline="")):
                times.setdefault(r["notebook"], {})[profile] = f"{float(r['wall_s']) / 60:.1f}"
    lines = ["| notebook | assumes | minutes: smoke / cpu / gpu | interactive cells |", "|---|---|---|---|"]
    for nb in notebooks:
        source = json.loads(nb.read_text())
        interactive = [c for c in source["cells"] if c["cell_type"] == "code" and "if interactive" in "".join(c["source"])]
        sections = [m.group(1) for c in source["cells"] if c["cell_type"] == "markdown"
                    for m in re.finditer(r"^## (\d+) · .*interactive", "".join(c["source"]), re.M)]
        t = times.get(nb.name, {})
        lines.append(f"| [{nb.stem}]({link}{nb.stem}.ipynb) | {assumes().get(nb.stem[:2], '—')} | "
                     + " / ".join(t.get(p, "—") for p in ("smoke", "cpu", "gpu"))
                     + f" | {('§' + ', §'.join(sections) + ' (widgets; skipped in batch runs)') if interactive else '—'} |")
    return "\n".join(lines)


def assemble(root: Path | None = None, src: Path | None = None, *, profiles=PROFILES) -> Path:
    """Write the Sphinx source tree (``book/_src``) and return it."""
    root = Path(root or project_root())
    reports, executed = root / "reports", root / "reports" / "executed"
    src = Path(src or root / "book" / "_src")
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    toc = []
    for title, prefixes in chapters().items():
        members = [nb for nb in notebooks if nb.name[:2] in prefixes]
        if not members:
            continue
        for nb in members:
            page, _ = prepare_notebook(nb, reports, executed, profiles)
            (src / nb.name).write_text(json.dumps(page, indent=1, ensure_ascii=False))
        extra = []
        if title == "The reviewer's view":
            extra = _reviewer_pages(root, src)
        toc.append(f"```{{toctree}}\n:caption: {title}\n:maxdepth: 1\n\n" + "\n".join([nb.stem for nb in members] + extra) + "\n```")
    for folder in (reports / p for p in PROFILES):
        if folder.is_dir():  # figures linked from pages ("Figures saved by this notebook") and from the report
            for png in folder.rglob("*.png"):
                target = src / "figures" / png.relative_to(reports)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(png, target)
    docs = sorted(p for p in (root / "docs").glob("*.md"))
    for page in docs:  # the papers in our words, metrics, adding a paper (not the exercise solutions)
        (src / "docs").mkdir(exist_ok=True)
        text = re.sub(r"\]\(\.\./notebooks/(\w+)\.ipynb", r"](../\1.ipynb", page.read_text())
        (src / "docs" / page.name).write_text(text)
    if docs:
        toc.append("```{toctree}\n:caption: The papers and the metrics in our words\n:maxdepth: 1\n\n"
                   + "\n".join(f"docs/{p.stem}" for p in docs) + "\n```")
    (src / "api.md").write_text(_api_page(root))
    intro = (root / "book" / "intro.md").read_text()
    (src / "index.md").write_text(intro.replace("{{reading_path}}", _reading_path(notebooks, executed))
                                  + "\n\n" + "\n\n".join(toc)
                                  + "\n\n```{toctree}\n:caption: Reference\n:maxdepth: 1\n\napi\n```\n")
    return src


def _reviewer_pages(root: Path, src: Path) -> list[str]:
    """The reproduction report and the claims ledger as pages, their artefact links turned into downloads."""
    pages = []
    report = root / "reports" / "REPORT.md"
    if not report.is_file():
        smoke = root / "reports" / "smoke" / "REPORT.md"
        report = smoke if smoke.is_file() else None
    if report is not None:
        base = report.parent  # links in the report are relative to where it lies
        text = report.read_text()

        def relink(m):
            label, target = m.group(1), m.group(2)
            if target.startswith(("http", "#")):
                return m.group(0)
            path = (base / target).resolve()
            if not path.is_file():
                return label
            copy = src / "artefacts" / path.relative_to(root.resolve())
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
            return f"[{label}]({copy.relative_to(src).as_posix()})"
        (src / "report.md").write_text(re.sub(r"\[([^\]]*)\]\(([^)]+)\)", relink, text))
        pages.append("report")
    return pages


def _api_page(root: Path) -> str:
    modules = sorted({".".join(p.relative_to(root).with_suffix("").parts) for p in (root / "fusionlib").rglob("*.py")
                      if p.name != "__main__.py"})
    modules = [m.removesuffix(".__init__") for m in modules]
    body = "\n\n".join(f"## `{m}`\n\n```{{eval-rst}}\n.. automodule:: {m}\n   :members:\n```" for m in modules)
    return "# The package: `fusionlib`\n\nEvery public function and class, with a link to its source.\n\n" + body + "\n"


def build(root: Path | None = None, out: Path | None = None, *, profiles=PROFILES, quiet: bool = True) -> Path:
    """Assemble and build the HTML book; returns the output folder (``book/_build/html``)."""
    root = Path(root or project_root())
    src = assemble(root, profiles=profiles)
    out = Path(out or root / "book" / "_build" / "html")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(root / "book"), str(src), str(out)]
    if quiet:
        cmd.insert(3, "-q")
    subprocess.run(cmd, check=True)
    return out


def screenshots(html: Path, folder: Path, chapter: str = "30_iassf_haze_physics") -> list[Path]:
    """JPEG screenshots (quality 80: a picture of a page, not data; a third of a PNG's bytes, the tree's size
    limit) of the landing page and one chapter, from headless Chromium (playwright)."""
    from playwright.sync_api import sync_playwright
    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path())
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
        for name in ("index", chapter):
            page.goto((html / f"{name}.html").resolve().as_uri())
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(1500)  # MathJax typesets after load
            if name != "index":  # the chapter: its first figure, with the text (and maths) above it
                page.evaluate("""() => { const img = document.querySelector('article img');
                                         if (img) window.scrollTo(0, img.getBoundingClientRect().top + window.scrollY - 420); }""")
                page.wait_for_timeout(300)
            shot = folder / f"{'landing' if name == 'index' else 'chapter'}.jpg"
            page.screenshot(path=str(shot), full_page=False, type="jpeg", quality=80)
            shots.append(shot)
        browser.close()
    return shots


def chromium_path() -> str | None:
    """A Chromium executable on this machine (the system's, or playwright's own), or ``None``."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    try:
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            path = Path(p.chromium.executable_path)
        return str(path) if path.is_file() else None
    except Exception:  # noqa: BLE001 - no playwright, or no browser downloaded for it
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusionlib.study.book", description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshots", type=Path, help="also photograph the landing page and one chapter into this folder")
    parser.add_argument("--reading-path", action="store_true",
                        help="print the reading-path table for the README (minutes from reports/executed/*/runs.csv) and exit")
    args = parser.parse_args(argv)
    if args.reading_path:
        root = project_root()
        print(_reading_path(sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")), root / "reports" / "executed", "notebooks/"))
        return 0
    out = build()
    print(f"book: {out / 'index.html'}")
    if args.screenshots:
        if chromium_path() is None:
            print("screenshots: no Chromium found (apt install chromium, or `playwright install chromium`)", file=sys.stderr)
            return 1
        for shot in screenshots(out, args.screenshots):
            print(f"screenshot: {shot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
