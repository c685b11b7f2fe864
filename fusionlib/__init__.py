"""fusionlib: reproductions of four infrared-visible (IR-VIS) image fusion papers.

Modules (the notebook that derives each is named in its docstring):

- :mod:`fusionlib.io`       image files <-> tensors, colour conventions (notebook 00)
- :mod:`fusionlib.data`     dataset layout, pairing, synthetic scenes, haze synthesis (notebook 00)
- :mod:`fusionlib.reports`  tables with paper / ours / delta, figures, provenance, the index
- :mod:`fusionlib.reproduce` the papermill runner behind ``make reproduce``

House vocabulary: ``ir``, ``vis``, ``fused``, ``y``, ``cb``, ``cr``; images are ``(B, C, H, W)``
float tensors in [0, 1] inside the package, uint8/uint16 arrays only at file boundaries.
"""

__version__ = "0.1.0"
