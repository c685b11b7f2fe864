"""Shared by the papers: what more than one paper's code or tables need.

- :mod:`.perceptual`  VGG feature trunks for perceptual losses (and their input conventions), Gram matrices,
  Sobel gradients
- :mod:`.baselines`   classical fusion baselines, and dark-channel dehazing before a fuser
- :mod:`.rgb`         the one RGB-by-Y wrapper (fuse on Y, put the visible chroma back)
- :mod:`.lrrnet`      the released LRRNet (every paper's learned baseline; LRCFuse extends it)
- :mod:`.complexity`  parameter and FLOP counts
- :mod:`.inputs`      the input contract every network checks (float images in its dtype, non-empty)
- :mod:`.offline`     fail fast without a network before a download

Paper packages import from here, never from each other.
"""
