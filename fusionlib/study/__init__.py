"""The study layer: the machinery that reproduces the papers, over the library (``fusionlib`` minus this
package). No module here names a paper; each paper comes in through its door, ``fusionlib/<paper>/study.py``,
which :mod:`fusionlib.study.registry` finds.

- :mod:`~fusionlib.study.reports`: tables with paper / ours / Δ, figures, provenance sidecars, the index
- :mod:`~fusionlib.study.reproduce`: the papermill runner behind ``make reproduce`` (profiles, dry runs)
- :mod:`~fusionlib.study.verdicts`: a paper's numeric claims judged from our tables
- :mod:`~fusionlib.study.health`: is each trained model alive (not black, constant or a copy of a source)
- :mod:`~fusionlib.study.ledger`: every claim with its verdict, the papers' internal consistency, the report
- :mod:`~fusionlib.study.benchmark`: one benchmark of every method that runs here, with statistics
- :mod:`~fusionlib.study.timing`: metric timings and seconds per training step (``python -m fusionlib.study.timing``)
- :mod:`~fusionlib.study.exercises`, :mod:`~fusionlib.study.book`: the notebooks' exercises; the offline book
- :mod:`~fusionlib.study.device`: the one-call run of the ``gpu`` profile on a lent GPU
- :mod:`~fusionlib.study.registry`: the doors
"""
