"""fusionlib: reproductions of four infrared-visible (IR-VIS) image fusion papers.

Two layers. The library, what a researcher imports (the notebook that derives each is named in its docstring):

- :mod:`fusionlib.io`, :mod:`fusionlib.paths`, :mod:`fusionlib.data`: image files <-> tensors, colour
  conventions, dataset layout, pairing, synthetic scenes, haze synthesis (notebook 00)
- :mod:`fusionlib.metrics`: the 20 fusion metrics and dataset scoring (notebook 01)
- :mod:`fusionlib.train`, :mod:`fusionlib.checkpoints`: the seeded, resumable trainer; the checkpoint manifest
- :mod:`fusionlib.common`, :mod:`fusionlib.control`: shared networks and baselines; the control-arm harness
- one package per paper: :mod:`fusionlib.lrcfuse`, :mod:`fusionlib.dcmif`, :mod:`fusionlib.iassf`,
  :mod:`fusionlib.ldfusion`

and :mod:`fusionlib.study`, the machinery that reproduces the papers (reports, the runner, verdicts, the
ledger, the benchmark, the book), which reaches each paper through the paper's ``study`` module only.

House vocabulary: ``ir``, ``vis``, ``fused``, ``y``, ``cb``, ``cr``; images are ``(B, C, H, W)``
float tensors in [0, 1] inside the package, uint8/uint16 arrays only at file boundaries.
"""

__version__ = "0.1.0"
