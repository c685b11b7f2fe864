"""The reproduction runner: execute the numbered notebooks with papermill under a profile.

    python -m fusionlib.study.reproduce [--profile smoke|cpu|gpu|full] [--only SUBSTRING] [--device cpu|cuda] [--set NAME=VALUE] [--dry-run]

- Notebooks are ``notebooks/NN_*.ipynb``, run in name order.
- A profile is ``notebooks/profiles/<profile>.yaml``: ``defaults`` (parameters for every
  notebook) and ``notebooks: {<stem>: {...}}``. Every parameter must be declared in the
  notebook's ``parameters`` cell (a typo is an error, not a silently ignored knob); ``profile``
  and ``--device`` are passed to every notebook.
- Executed copies go to ``reports/executed/<profile>/<stem>.ipynb`` (never over the source);
  wall times to ``reports/executed/<profile>/runs.csv``. Their figures are replaced by a line
  pointing to the PNG files the notebook saved (:func:`strip_images`): a figure lives once, in
  ``reports/<profile>/<paper>/``, and the committed copies stay small. Notebooks write their own artefacts
  through :class:`fusionlib.study.reports.Reporter` (atomic files, index updated per artefact).
- A failing notebook stops the run with a message naming the notebook and the cell; its
  executed copy is kept as ``<stem>.failed.ipynb`` beside the last successful copy (never deleted),
  and earlier artefacts and the index are intact.
  A dead kernel (out of memory, killed) and Ctrl-C end the same way, with one line saying which.

- ``--dry-run`` runs a profile's code paths on the CPU at tiny sizes before scarce GPU minutes are spent
  on it: the profile's parameters, then its ``dry_run: {<stem>: {...}}`` section on top, which may only
  make sizes and counts smaller (never change a flag, a name or a mode: :func:`check_dry_run`). It
  writes into a scratch reports root (``<cache>/dry-run/<profile>``, made anew, with copies of the
  committed ``cpu`` folder the notebooks read) and a scratch copy of
  ``checkpoints/`` (``$FUSIONLIB_CHECKPOINTS``), so nothing committed changes and ``runs.csv`` is not written.

``make reproduce`` runs the smoke profile.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import difflib
import io
import os
import sys
import time
from pathlib import Path

import yaml

from fusionlib.paths import project_root, reports_root
from fusionlib.io import atomic_write

__all__ = ["PROFILES", "NotebookFailed", "discover", "load_profile", "notebook_parameters", "check_dry_run", "dry_run_root",
           "run", "strip_images", "main"]

PROFILES = ("smoke", "cpu", "gpu", "full")


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names it and the failing cell."""


def discover(notebooks_dir: Path, only: str | None = None) -> list[Path]:
    """``NN_*.ipynb`` in name order, optionally only those whose name contains ``only``."""
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if only is None or only in p.name]


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error, not "the last one wins"."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden, as intended
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} (the second would silently win)",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_profile(profile: str, notebooks_dir: Path) -> dict:
    """``{"defaults": {...}, "notebooks": {stem: {...}}}`` from ``<notebooks>/profiles/<profile>.yaml``."""
    path = notebooks_dir / "profiles" / f"{profile}.yaml"
    if not path.is_file():
        have = sorted(p.stem for p in (notebooks_dir / "profiles").glob("*.yaml"))
        raise FileNotFoundError(f"no profile {profile!r}: {path} does not exist (profiles: {', '.join(have) or 'none'})")
    try:
        spec = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{where}: YAML syntax error: {problem}") from None
    # shared: YAML anchors; budget: minutes per paper (docs); priority: the papers' order on a lent GPU
    # (fusionlib.study.device.papers); dry_run: the --dry-run scale-downs
    unknown = set(spec) - {"defaults", "notebooks", "shared", "budget", "priority", "dry_run"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {sorted(unknown)} "
                         "(use 'defaults', 'notebooks', 'shared', 'budget', 'priority' and 'dry_run')")
    notebooks, dry = spec.get("notebooks") or {}, spec.get("dry_run") or {}
    stems = {p.stem for p in discover(notebooks_dir)}
    unknown_nb = sorted((set(notebooks) | set(dry)) - stems)
    if unknown_nb:
        hints = [f"{u} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(u, stems, 1)) else u for u in unknown_nb]
        raise ValueError(f"{path}: no notebook named {', '.join(hints)} in {notebooks_dir}")
    return {"defaults": spec.get("defaults") or {}, "notebooks": notebooks, "dry_run": dry}


def _no_larger(small, big) -> bool:
    """Whether a dry-run value only scales ``big`` down: a number ≤ it (any positive one where ``big`` is
    0, the notebooks' "all" / "whole image"), a list of numbers element-wise so, or a non-empty subset of a list."""
    number = (int, float)
    if isinstance(small, bool) or isinstance(big, bool):
        return False
    if isinstance(small, number) and isinstance(big, number):
        return 0 < small if big == 0 else 0 <= small <= big
    if isinstance(small, list) and isinstance(big, list):
        if len(small) == len(big) and all(isinstance(v, (number, list)) for v in small):
            return all(_no_larger(a, b) for a, b in zip(small, big))
        return bool(small) and all(v in big for v in small)
    return False


def check_dry_run(spec: dict, profile: str = "") -> None:
    """Raise ``ValueError`` unless every ``dry_run`` value of ``spec`` scales down a value its profile
    sets for that notebook (:func:`_no_larger`): a dry run must take the profile's code paths."""
    for stem, values in spec["dry_run"].items():
        own = spec["notebooks"].get(stem) or {}
        for key, value in (values or {}).items():
            if key not in own:
                raise ValueError(f"profile {profile!r}: dry_run sets {stem}.{key}, which the profile does not set "
                                 "(a dry run only scales down the profile's own values)")
            if not _no_larger(value, own[key]):
                raise ValueError(f"profile {profile!r}: dry_run {stem}.{key} = {value!r} does not scale down the "
                                 f"profile's {own[key]!r} (only smaller numbers, or a subset of a list)")


def dry_run_root(profile: str) -> Path:
    """The scratch reports root of a ``--dry-run`` of ``profile``: ``<cache>/dry-run/<profile>``."""
    from fusionlib.paths import cache_root
    return cache_root() / "dry-run" / profile


def _prepare_dry_run(reports_dir: Path) -> dict[str, str]:
    """Make ``reports_dir`` anew with copies of the committed folders notebooks read and a copy of
    ``checkpoints/``; returns the environment that points the kernels at them."""
    import shutil
    shutil.rmtree(reports_dir, ignore_errors=True)
    reports_dir.mkdir(parents=True)
    for folder in ("cpu",):
        if (reports_root() / folder).is_dir():
            shutil.copytree(reports_root() / folder, reports_dir / folder)
    checkpoints = reports_dir / "checkpoints"
    source = project_root() / "checkpoints"
    if source.is_dir():
        shutil.copytree(source, checkpoints, ignore=shutil.ignore_patterns("large"))
    checkpoints.mkdir(exist_ok=True)
    return {"FUSIONLIB_CHECKPOINTS": str(checkpoints)}


def notebook_parameters(notebook: Path, profile: str, spec: dict, device: str | None, overrides: dict | None = None,
                        dry_run: bool = False) -> dict:
    """The parameters papermill injects into ``notebook`` (the profile's, its ``dry_run`` scale-downs
    when ``dry_run``, then ``overrides``), checked against its parameters cell."""
    import papermill

    params = {**spec["defaults"], **(spec["notebooks"].get(notebook.stem) or {}),
              **((spec.get("dry_run") or {}).get(notebook.stem) or {} if dry_run else {}), **(overrides or {}),
              "profile": profile}
    if device is not None:
        params["device"] = device
    declared = papermill.inspect_notebook(str(notebook))
    if not declared:
        raise ValueError(f"{notebook.name} has no cell tagged 'parameters'")
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ValueError(f"profile {profile!r} sets {unknown} but {notebook.name} declares only "
                         f"{sorted(declared)} in its parameters cell")
    return params


def run(profile: str = "smoke", *, only: str | None = None, device: str | None = None,
        notebooks_dir: str | Path | None = None, reports_dir: str | Path | None = None,
        progress: bool | None = None, overrides: dict | None = None, dry_run: bool = False,
        fresh: bool = True) -> list[dict]:
    """Run the notebooks; returns one ``{"notebook", "wall_s", "output"}`` per notebook run.
    ``overrides`` set parameters on top of the profile's (each must be declared by every notebook run).
    ``dry_run``: the profile's code paths at its ``dry_run`` sizes, on the CPU, into a scratch root
    (``reports_dir``, default :func:`dry_run_root`; made anew unless ``fresh=False``, which continues one).

    Raises :class:`NotebookFailed` at the first failing notebook.
    """
    notebooks_dir = Path(notebooks_dir or project_root() / "notebooks").resolve()
    notebooks = discover(notebooks_dir, only)
    if not notebooks:
        raise FileNotFoundError(f"no notebooks NN_*.ipynb in {notebooks_dir}"
                                + (f" whose name contains {only!r}" if only else ""))
    spec = load_profile(profile, notebooks_dir)
    if dry_run:
        check_dry_run(spec, profile)
        device = "cpu"
    reports_dir = Path(reports_dir or (dry_run_root(profile) if dry_run else reports_root())).resolve()
    # Notebook kernels write where this run writes, and find this interpreter as "python".
    env = {"FUSIONLIB_REPORTS": str(reports_dir),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    # kernels run in notebooks/, so relative roots given on the command line are made absolute here
    env.update({k: str(Path(os.environ[k]).resolve()) for k in ("FUSIONLIB_DATA", "FUSIONLIB_WEIGHTS", "FUSIONLIB_CACHE")
                if os.environ.get(k)})
    for nb in notebooks:  # every notebook's parameters are checked before the first one runs, not when its turn comes
        notebook_parameters(nb, profile, spec, device, overrides, dry_run)
    if dry_run:
        env.update(_prepare_dry_run(reports_dir) if fresh or not (reports_dir / "checkpoints").is_dir()
                   else {"FUSIONLIB_CHECKPOINTS": str(reports_dir / "checkpoints")})
    with environment(env):
        return _run_all(notebooks, profile, spec, device, reports_dir, progress, overrides, dry_run)


@contextlib.contextmanager
def environment(values: dict[str, str]):
    """Set environment variables for the code inside (the notebook kernels, the step timer), then restore the caller's."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_all(notebooks: list[Path], profile: str, spec: dict, device: str | None, reports_dir: Path,
             progress: bool | None, overrides: dict | None = None, dry_run: bool = False) -> list[dict]:
    import papermill
    from nbclient.exceptions import DeadKernelError

    if progress is None:
        progress = os.environ.get("TQDM_DISABLE", "") in ("", "0")
    executed = reports_dir / "executed" / profile
    executed.mkdir(parents=True, exist_ok=True)
    results = []
    for nb in notebooks:
        params = notebook_parameters(nb, profile, spec, device, overrides, dry_run)
        print(f"[{profile}{' dry run' if dry_run else ''}] {nb.name}  {params}", flush=True)
        out = executed / nb.name
        tmp = executed / f".{nb.stem}.running.ipynb"
        start = time.perf_counter()
        try:
            papermill.execute_notebook(str(nb), str(tmp), parameters=params, kernel_name="python3",
                                       cwd=str(nb.parent), progress_bar=progress, log_output=False,
                                       # the kernel's own log (its tracebacks on Ctrl-C, TCP warnings) is
                                       # noise here: cell errors reach the user through NotebookFailed
                                       extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
        except papermill.PapermillExecutionError as exc:
            first_line = next((ln for ln in exc.source.splitlines() if ln.strip()), "")
            failed = _keep_failed(tmp, executed, nb)
            raise NotebookFailed(
                f"{nb.name} failed in code cell [{exc.exec_count}] ({first_line.strip()[:80]!r}): "
                f"{exc.ename}: {exc.evalue}; executed copy: {failed}") from None
        except DeadKernelError:
            failed = _keep_failed(tmp, executed, nb)
            raise NotebookFailed(f"{nb.name}: the kernel died (killed from outside, or out of memory: try a smaller "
                                 f"profile or --device cuda); executed copy up to there: {failed}") from None
        except KeyboardInterrupt:
            failed = _keep_failed(tmp, executed, nb)
            raise NotebookFailed(f"{nb.name}: interrupted (Ctrl-C); executed copy up to there: {failed}") from None
        strip_images(tmp, f"reports/{profile}/")
        os.replace(tmp, out)
        (executed / f"{nb.stem}.failed.ipynb").unlink(missing_ok=True)  # an earlier failure is not current
        wall = time.perf_counter() - start
        results.append({"notebook": nb.name, "wall_s": round(wall, 1), "output": str(out)})
        print(f"[{profile}] {nb.name} done in {wall:.1f} s", flush=True)
        if not overrides and not dry_run:  # runs.csv holds the profile's own timings; --set and --dry-run are other runs
            _record_runs(executed / "runs.csv", results[-1], device or spec["defaults"].get("device", ""))
    return results


IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # an output that shows a widget by reference to the saved state


def strip_images(path: Path, where: str) -> int:
    """Drop the images from an executed notebook's outputs, each replaced by a text line saying where
    the saved figures are (``where``); returns how many were dropped. Figures a notebook shows
    without saving them are lost from the copy, so notebooks save every figure (Reporter.figure).
    The saved state of its widgets (the progress bars' last frames: about 1 MB for notebook 22's `cpu`
    run) goes too, and so do the outputs' references to those widgets: without their state they show
    nothing, and a page that holds one makes the book load the widget manager from a public CDN. Each
    bar's text line stays in its output."""
    import json
    nb = json.loads(Path(path).read_text())
    widgets = nb.get("metadata", {}).pop("widgets", None) is not None
    dropped = 0
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if data.pop(WIDGET_VIEW, None) is not None:
                widgets = True
            images = [k for k in IMAGE_TYPES if k in data]
            if images:
                dropped += len(images)
                for k in images:
                    del data[k]
                data["text/plain"] = f"[figure: the PNG saved under {where}<paper>/ (images are not kept in executed copies)]"
                out.get("metadata", {}).clear()
    if dropped or widgets:
        atomic_write(Path(path), (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode())
    return dropped


def _keep_failed(tmp: Path, executed: Path, nb: Path) -> str:
    """Keep the partly executed copy as ``<stem>.failed.ipynb`` beside the last successful copy, which
    is never deleted (it may be a committed ``reports/executed/cpu/`` copy that took an hour: a typo
    or a Ctrl-C must not cost it); the next success removes the failed copy. Returns what was kept."""
    failed = executed / f"{nb.stem}.failed.ipynb"
    failed.unlink(missing_ok=True)
    earlier = executed / nb.name
    kept = f"; the last successful copy {earlier} is kept (an earlier run's)" if earlier.is_file() else ""
    if not tmp.is_file():
        return "none (stopped before the first cell)" + kept
    os.replace(tmp, failed)
    return str(failed) + kept


def _record_runs(path: Path, result: dict, device: str) -> None:
    """Keep the latest wall time of each notebook in ``runs.csv``."""
    rows = {}
    if path.is_file():
        with open(path, newline="") as f:
            rows = {r["notebook"]: r for r in csv.DictReader(f)}
    rows[result["notebook"]] = {"notebook": result["notebook"], "wall_s": result["wall_s"], "device": device}
    out = io.StringIO()
    writer = csv.DictWriter(out, ["notebook", "wall_s", "device"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows[k] for k in sorted(rows))
    atomic_write(path, out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusionlib.study.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="smoke", choices=PROFILES)
    parser.add_argument("--only", help="run only notebooks whose file name contains this substring")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="override the profile's device")
    parser.add_argument("--notebooks", help="notebooks folder (default: <project>/notebooks)")
    parser.add_argument("--reports", help="reports folder (default: $FUSIONLIB_REPORTS or <project>/reports)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="set a notebook parameter on top of the profile's (VALUE is read as YAML); repeatable")
    parser.add_argument("--dry-run", action="store_true",
                        help="the profile's code paths on the CPU at its dry_run sizes, into a scratch folder (nothing committed changes)")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            print(f"reproduce: --set takes NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        overrides[name.strip()] = yaml.safe_load(value)
    try:
        results = run(args.profile, only=args.only, device=args.device,
                      notebooks_dir=args.notebooks, reports_dir=args.reports, overrides=overrides, dry_run=args.dry_run)
    except NotebookFailed as exc:
        print(f"reproduce: {exc}\nreproduce: stopped; artefacts of earlier notebooks and the index are intact.",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # between notebooks (inside one, NotebookFailed above says which)
        print("reproduce: interrupted (Ctrl-C) between notebooks; finished ones are intact.", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as exc:
        print(f"reproduce: {exc}", file=sys.stderr)
        return 2
    total = sum(r["wall_s"] for r in results)
    root = Path(args.reports or (dry_run_root(args.profile) if args.dry_run else reports_root()))
    print(f"reproduce: {len(results)} notebook(s) in {total:.1f} s{' (dry run)' if args.dry_run else ''}; "
          f"index: {root / args.profile / 'index.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
