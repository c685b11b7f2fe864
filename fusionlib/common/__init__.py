"""Shared by the papers: what more than one paper's code or tables need.

- :mod:`.perceptual`  VGG feature trunks for perceptual losses, Gram matrices, Sobel gradients
- :mod:`.baselines`   classical fusion baselines and the RGB-by-Y wrapper
- :mod:`.lrrnet`      the released LRRNet (every paper's learned baseline; LRCFuse extends it)
- :mod:`.complexity`  parameter counting

Paper packages import from here, never from each other.
"""
