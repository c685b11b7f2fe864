"""LRCFuse: low-rank representation + convolutional sparse coding (notebooks 10-12)."""
