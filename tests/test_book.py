"""The book (fusionlib.study.book): built from a tiny set of executed notebooks, opened in headless
Chromium: figures load, the maths rendered (no raw $$ left), internal links resolve and no request
leaves the machine. Skipped, with the reason, where Sphinx/MyST-NB, playwright or Chromium is missing."""

import base64
import json
import shutil
from pathlib import Path

import pytest

from fusionlib.study import book
from fusionlib.study.reports import register

ROOT = Path(__file__).resolve().parents[1]
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==")


def _nb(cells, **meta):
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}, **meta},
            "nbformat": 4, "nbformat_minor": 5}


def _md(i, text):
    return {"cell_type": "markdown", "id": f"m{i}", "metadata": {}, "source": [text]}


def _code(i, src, outputs=()):
    return {"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": 1 if outputs else None,
            "outputs": list(outputs), "source": [src]}


@pytest.fixture
def tiny(tmp_path):
    """A project root with two notebooks, one executed copy that saved a figure, one docs page."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "book").mkdir()
    shutil.copy(ROOT / "book" / "conf.py", tmp_path / "book" / "conf.py")
    (tmp_path / "book" / "intro.md").write_text("# Tiny book\n\nSee [the metrics](docs/metrics.md).\n\n{{reading_path}}\n")
    (tmp_path / "docs" / "metrics.md").write_text("# Metrics\n\nEntropy $EN = -\\sum_l p_l \\log_2 p_l$.\n")
    source = _nb([_md(0, "# 00 · Haze\n\nThe model $$I = J\\,t + A\\,(1 - t)$$ and inline $t \\in [0, 1]$. See [docs](../docs/metrics.md)."),
                  _code(1, 'rep.figure(fig, "haze", "new: haze")\nprint("done")'),
                  _md(2, "## 2 · Exercises"), _code(3, "answer = None")])
    (tmp_path / "notebooks" / "00_haze.ipynb").write_text(json.dumps(source))
    (tmp_path / "notebooks" / "01_other.ipynb").write_text(json.dumps(_nb([_md(0, "# 01 · Not run yet\n\n$$x^2$$")])))
    executed = _nb([source["cells"][0],
                    _code(1, source["cells"][1]["source"][0],
                          [{"output_type": "display_data", "metadata": {},
                            "data": {"text/plain": "[figure: the PNG saved under reports/smoke/<paper>/ (images are not kept in executed copies)]"}},
                           {"output_type": "stream", "name": "stdout", "text": ["done\n"]}])],
                   papermill={"end_time": "2026-12-03T00:00:00", "duration": 12.0})
    (tmp_path / "reports" / "executed" / "smoke").mkdir(parents=True)
    (tmp_path / "reports" / "executed" / "smoke" / "00_haze.ipynb").write_text(json.dumps(executed))
    (tmp_path / "reports" / "smoke" / "foundation").mkdir(parents=True)
    (tmp_path / "reports" / "smoke" / "foundation" / "haze.png").write_bytes(PNG)
    (tmp_path / "reports" / "smoke" / "foundation" / "haze.provenance.json").write_text(
        json.dumps({"commit": "abc123def4567890", "device": "cpu"}))
    register([{"artefact": "smoke/foundation/haze.png", "notebook": "00_haze", "paper": "foundation", "item": "x",
               "profile": "smoke"}], tmp_path / "reports")
    return tmp_path


def test_pages_put_back_figures_provenance_and_late_cells(tiny):
    nb, prov = book.prepare_notebook(tiny / "notebooks" / "00_haze.ipynb", tiny / "reports", tiny / "reports" / "executed")
    assert prov["profile"] == "smoke" and prov["commit"] == "abc123def456" and prov["wall"] == "0.2 min"
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert base64.b64decode(outputs[0]["data"]["image/png"]) == PNG  # the saved figure, back in place
    text = json.dumps(nb, ensure_ascii=False)
    assert "profile **smoke**" in text and "make reproduce ONLY=00_" in text
    assert "added to the notebook after this run" in text and "## 2 · Exercises" in text
    assert "](docs/metrics.md)" in text  # links to docs/ rewritten for the book's layout
    added = [c["id"] for c in nb["cells"] if c.get("id", "").startswith("book-")]  # nbformat 4.5 wants ids
    assert len(added) >= 2 and len(set(added)) == len(added)
    again, _ = book.prepare_notebook(tiny / "notebooks" / "00_haze.ipynb", tiny / "reports", tiny / "reports" / "executed")
    assert [c.get("id") for c in again["cells"]] == [c.get("id") for c in nb["cells"]]  # a rebuild gives the same page


def test_reading_path_times_from_runs_csv(tiny):
    (tiny / "reports" / "executed" / "smoke" / "runs.csv").write_text("notebook,wall_s\n00_haze.ipynb,90\n")
    table = book._reading_path(sorted((tiny / "notebooks").glob("*.ipynb")), tiny / "reports" / "executed", "notebooks/")
    rows = table.splitlines()[2:]
    assert len(rows) == 2 and rows[0].startswith("| [00_haze](notebooks/00_haze.ipynb) | Python and NumPy")
    assert "| 1.5 / — / — |" in rows[0] and "| — / — / — |" in rows[1]  # measured minutes; "—" where not run


def test_book_in_a_real_browser(tiny):
    pytest.importorskip("myst_nb", reason="the book needs Sphinx and MyST-NB (requirements.txt)")
    pytest.importorskip("playwright", reason="the browser test needs playwright (requirements.txt)")
    chromium = book.chromium_path()
    if chromium is None:
        pytest.skip("no Chromium on this machine (apt install chromium, or `playwright install chromium`)")
    from playwright.sync_api import sync_playwright
    html = book.build(tiny)
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()  # vendored, not a CDN
    external, broken = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        page = browser.new_page()

        def route(r):
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                external.append(r.request.url)
                r.abort()
        page.route("**/*", route)
        pages = sorted(p.relative_to(html).with_suffix("").as_posix() for p in html.rglob("*.html")
                       if not p.relative_to(html).parts[0].startswith(("_", "genindex", "search")))
        assert {"index", "00_haze", "01_other", "docs/metrics"} <= set(pages)
        for name in pages:  # every page: none may load anything from the network
            target = html / f"{name}.html"
            page.goto(target.as_uri())
            page.wait_for_load_state("networkidle")
            page.wait_for_function("() => !window.MathJax || (window.MathJax.startup && window.MathJax.startup.promise)")
            page.evaluate("() => window.MathJax && window.MathJax.startup ? window.MathJax.startup.promise : null")
            body = page.inner_text("article")
            assert "$$" not in body and "\\sum" not in body, f"{name}: raw TeX left on the page"
            if name in ("00_haze", "01_other", "docs/metrics"):
                assert page.locator("mjx-container").count() > 0, f"{name}: no rendered maths"
            sizes = page.eval_on_selector_all("article img", "els => els.map(e => e.naturalWidth)")
            assert all(w > 0 for w in sizes), f"{name}: an image did not load"
            if name == "00_haze":
                assert len(sizes) >= 1
            for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
                if href.startswith(("http:", "https:", "mailto:", "#", "javascript:")):
                    continue
                path = (target.parent / href.split("#")[0]).resolve()
                if not path.exists():
                    broken.append(f"{name}: {href}")
        browser.close()
    assert not broken, broken
    assert not external, f"requests left the machine: {external[:5]}"
