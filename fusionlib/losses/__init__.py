"""Losses shared by the papers: :mod:`.perceptual` (VGG-16 taps, Gram matrices, Sobel gradients)."""
